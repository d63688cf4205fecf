#!/usr/bin/env bash
# Interop matrix (docs/interop-matrix.md): smppd driven by independent ESME implementations
# from the package registries — python-smpplib (PyPI), node `smpp` (npm) and the
# `smpp34` crate (crates.io) — each running the same scenario (scripts/interop/*).
# Starts its own Valkey (AOF on), Mongo-protocol server and release smppd on free
# ports, runs every client, checks their messages against the MongoDB outcome
# documents and prints a Markdown matrix (also written to target/interop/matrix.md).
# Exits non-zero if any expected feature of any client fails.
#
#   INTEROP_PROFILE   release (default: builds smppd and the smpp34 client in release)
#                     | debug (the binaries of scripts/test.sh's `cargo build`)
#   SMPPD_BIN=path    use this smppd binary instead of the profile's
#   INTEROP_CLIENTS   space-separated subset of: smpplib node-smpp smpp34 (default all)
#   INTEROP_KV        valkey (default) | redis
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
t0=$(date +%s)

if ! { [ -x "${SMPPD_REDIS_SERVER:-}" ] && [ -x "${SMPPD_VALKEY_SERVER:-}" ] && [ -x "${SMPPD_SECANTUSD:-}" ]; }; then
  bash scripts/deps.sh
fi
# shellcheck source=scripts/env.sh
source scripts/env.sh
for v in SMPPD_REDIS_SERVER SMPPD_VALKEY_SERVER SMPPD_SECANTUSD; do
  [ -x "${!v:-}" ] || { echo "interop: $v=${!v:-} is not an executable; run scripts/deps.sh" >&2; exit 1; }
done

# --- the clients, installed under .local/ (idempotent) -----------------------------------
bash scripts/interop/install.sh
py="$root/.local/interop-venv/bin/python"

clients="${INTEROP_CLIENTS:-smpplib node-smpp smpp34}"
# One cargo invocation for smppd and the smpp34 client, so both share one feature set
# (the example's dev-dependencies) and nothing is compiled twice. The debug profile
# runs exactly scripts/test.sh's build command: a no-op right after it.
profile="${INTEROP_PROFILE:-release}"
bin_dir="${CARGO_TARGET_DIR:-$root/target}/$profile"
case "$profile" in
  release) build=(cargo build --release --locked -q --bin smppd --example interop_smpp34) ;;
  debug) build=(cargo build --workspace --all-targets --locked -q) ;;
  *) echo "interop: INTEROP_PROFILE must be release or debug" >&2; exit 2 ;;
esac
if [ -z "${SMPPD_BIN:-}" ] || [[ " $clients " == *" smpp34 "* ]]; then
  echo "interop: ${build[*]}" >&2
  "${build[@]}"
fi
SMPPD_BIN="${SMPPD_BIN:-$bin_dir/smppd}"
smpp34_bin="$bin_dir/examples/interop_smpp34"

out="$root/target/interop"
mkdir -p "$out"
rm -f "$out"/*.out "$out"/*.log
work="$(mktemp -d "${TMPDIR:-/tmp}/smppd-interop.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cp "$work"/*.log "$out/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT PID NAME LOG
  local i
  for i in $(seq 1 600); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; echo "interop: $3 exited at start" >&2; exit 1; }
    sleep 0.1
  done
  echo "interop: $3 did not open port $1 within 60 s (log: $4)" >&2
  exit 1
}

# --- servers ------------------------------------------------------------------------------
case "${INTEROP_KV:-valkey}" in
  valkey) kv_bin="$SMPPD_VALKEY_SERVER" ;;
  redis) kv_bin="$SMPPD_REDIS_SERVER" ;;
  *) echo "interop: INTEROP_KV must be valkey or redis" >&2; exit 2 ;;
esac
kv_port="$(free_port)"
mkdir -p "$work/kv" "$work/mongo"
"$kv_bin" --port "$kv_port" --bind 127.0.0.1 --dir "$work/kv" \
  --appendonly yes --appendfsync everysec --save "" >"$work/kv.log" 2>&1 &
pids+=($!)
wait_port "$kv_port" "${pids[-1]}" "key-value server" "$work/kv.log"
mongo_port="$(free_port)"
"$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$mongo_port" --storage-path "$work/mongo" >"$work/mongo.log" 2>&1 &
pids+=($!)
wait_port "$mongo_port" "${pids[-1]}" "Mongo-protocol server" "$work/mongo.log"
mongo_uri="mongodb://127.0.0.1:$mongo_port"

smpp_port="$(free_port)"
db="interop"
cfg="$work/smppd.toml"
{
  cat <<EOF
[server]
system_id = "smppd"
node_id = "interop"
listen = "127.0.0.1:$smpp_port"
bind_timeout = "10s"
# smppd's enquire_link after 1 s of silence, answered within 2 s or the bind closes:
# each client idles 3.5 s on its transceiver to show it answers.
enquire_link_interval = "1s"
response_timeout = "2s"
outbound_window = 10
log_format = "human"

[server.bind_failures]
delay = "0"
max_failures = 1000

[redis]
url = "redis://127.0.0.1:$kv_port"
key_prefix = "interop:"
configure_keyspace_events = true

[mongodb]
uri = "$mongo_uri"
database = "$db"

[receipts]
lifetime = "1h"
EOF
  # One account per client, so no client takes another's receipts; and per client a
  # second account, "<client>mo", which a route hands what the first sends to 999…
  # (routed/MO deliver_sm: the client binds a receiver of it).
  for c in $clients; do
    for id in "${c//-/}" "${c//-/}mo"; do
      cat <<EOF

[[esme]]
system_id = "$id"
password = "interop"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 10
window = 10
default_validity = "5m"
max_validity = "1h"
EOF
    done
  done
  for c in $clients; do
    cat <<EOF

[[route]]
destination = "^999"
from = ["${c//-/}"]
target = "esme:${c//-/}mo"
EOF
  done
} >"$cfg"
chmod 600 "$cfg"
"$SMPPD_BIN" check-config --config "$cfg" >"$work/check-config.log" 2>&1 \
  || { cat "$work/check-config.log" >&2; exit 1; }
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$SMPPD_BIN" serve --config "$cfg" >"$work/smppd.log" 2>&1 &
pids+=($!)
smppd_pid=${pids[-1]}
wait_port "$smpp_port" "$smppd_pid" "smppd" "$work/smppd.log"
echo "interop: smppd on 127.0.0.1:$smpp_port (valkey/redis :$kv_port, mongo :$mongo_port)" >&2

# --- clients ------------------------------------------------------------------------------
specs=()
for c in $clients; do
  export SMPP_HOST=127.0.0.1 SMPP_PORT="$smpp_port" SMPP_SYSTEM_ID="${c//-/}" SMPP_PASSWORD=interop \
    SMPP_MO_SYSTEM_ID="${c//-/}mo" SMPP_MO_DST=999700900001
  case "$c" in
    smpplib) cmd=("$py" scripts/interop/smpplib_client.py) ;;
    node-smpp) cmd=(env NODE_PATH="$root/.local/node/node_modules" node scripts/interop/node_smpp_client.js) ;;
    smpp34) cmd=("$smpp34_bin") ;;
    *) echo "interop: unknown client $c" >&2; exit 2 ;;
  esac
  c0=$(date +%s)
  code=0
  timeout 180 "${cmd[@]}" >"$out/$c.out" 2>"$out/$c.log" || code=$?
  echo "interop: $c done in $(($(date +%s) - c0)) s (exit $code)" >&2
  specs+=("$c=$out/$c.out:$code")
done
kill -0 "$smppd_pid" 2>/dev/null || echo "interop: smppd died during the run (see $out/smppd.log)" >&2

info="Run: $(date -u +%Y-%m-%dT%H:%MZ), smppd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ${INTEROP_KV:-valkey}; clients: smpplib $("$py" -c 'import importlib.metadata as m; print(m.version("smpplib"))'), node smpp $(node -p 'require(process.argv[1]).version' "$root/.local/node/node_modules/smpp/package.json"), smpp34 $(grep -A1 '^name = "smpp34"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'); $(($(date +%s) - t0)) s so far."
code=0
"$py" scripts/interop/matrix.py --mongo "$mongo_uri" --db "$db" --run-info "$info" \
  --summary "$work/summary" --known-failures scripts/interop/known-failures "${specs[@]}" >"$out/matrix.md" || code=$?
cat "$out/matrix.md"
echo "interop: $(($(date +%s) - t0)) s in all; matrix in target/interop/matrix.md; logs in target/interop/" >&2
# The closing line: client × feature cells (n/a counted as skipped).
echo "interop: $(cat "$work/summary" 2>/dev/null || echo "0 passed, 1 failed")"
exit "$code"
