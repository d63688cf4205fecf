#!/usr/bin/env bash
# Installs the interop clients under .local/, idempotently (scripts/interop.sh calls it):
#   .local/interop-venv  python-smpplib and pymongo (PyPI), for smpplib_client.py and matrix.py
#   .local/node          the node `smpp` package (npm), for node_smpp_client.js
# The smpp34 crate is a dev-dependency of smppd (Cargo.lock); its client is the
# example `interop_smpp34` (scripts/interop/smpp34_client.rs), built by interop.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.local/interop-venv"
SMPPLIB_VERSION=2.2.4
PYMONGO_VERSION=4.20.1
NODE_SMPP_VERSION=0.5.1

if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(not (m.version('smpplib') == '$SMPPLIB_VERSION' and m.version('pymongo') == '$PYMONGO_VERSION'))" 2>/dev/null; then
  echo "interop: installing smpplib $SMPPLIB_VERSION and pymongo into $venv (pip)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "smpplib==$SMPPLIB_VERSION" "pymongo==$PYMONGO_VERSION"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop: installing nodejs and npm (apt)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
have="$(node -p 'require(process.argv[1]).version' "$root/.local/node/node_modules/smpp/package.json" 2>/dev/null || true)"
if [ "$have" != "$NODE_SMPP_VERSION" ]; then
  echo "interop: installing node smpp $NODE_SMPP_VERSION into .local/node (npm)" >&2
  npm install -s --prefix "$root/.local/node" --no-audit --no-fund --no-save "smpp@$NODE_SMPP_VERSION" >/dev/null
fi
