#!/usr/bin/env bash
# The one start command (README "Run it"): starts a local key-value server and the
# Mongo-protocol server with their data under .local/, then smppd in the foreground
# with config.toml (or the file given as $1). Ctrl-C stops all three.
#
#   SMPPD_LOCAL_KV=valkey (default: Valkey 9, hash-field expiration) | redis (Debian's 7.0)
#   SMPPD_LOCAL_REDIS_PORT (6379), SMPPD_LOCAL_MONGO_PORT (27017)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
config="${1:-config.toml}"
bash scripts/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

kv="${SMPPD_LOCAL_KV:-valkey}"
redis_port="${SMPPD_LOCAL_REDIS_PORT:-6379}"
mongo_port="${SMPPD_LOCAL_MONGO_PORT:-27017}"
case "$kv" in
  valkey) kv_bin="$SMPPD_VALKEY_SERVER" ;;
  redis) kv_bin="$SMPPD_REDIS_SERVER" ;;
  *) echo "run-local: SMPPD_LOCAL_KV must be valkey or redis, not '$kv'" >&2; exit 2 ;;
esac

port_busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$redis_port" "$mongo_port"; do
  if port_busy "$p"; then
    echo "run-local: port $p is already in use; stop that server or set SMPPD_LOCAL_REDIS_PORT / SMPPD_LOCAL_MONGO_PORT" >&2
    exit 1
  fi
done

mkdir -p .local/kv .local/mongo .local/log
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# AOF with fsync every second: an acknowledged segment survives a crash of smppd at
# once and a crash of the machine after at most ~1 s (see ARCHITECTURE.md).
"$kv_bin" --port "$redis_port" --bind 127.0.0.1 --dir "$root/.local/kv" \
  --appendonly yes --appendfsync everysec --save "" \
  --notify-keyspace-events "Exh" >.local/log/kv.log 2>&1 &
pids+=($!)
"$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$mongo_port" --storage-path "$root/.local/mongo" \
  >.local/log/mongo.log 2>&1 &
pids+=($!)

for p in "$redis_port" "$mongo_port"; do
  for _ in $(seq 1 100); do port_busy "$p" && break; sleep 0.1; done
  port_busy "$p" || { echo "run-local: server on port $p did not start; see .local/log/" >&2; exit 1; }
done
echo "run-local: $kv on 127.0.0.1:$redis_port, Mongo-protocol server on 127.0.0.1:$mongo_port (logs in .local/log/)"

export SMPPD_REDIS_URL="redis://127.0.0.1:$redis_port"
export SMPPD_MONGODB_URI="mongodb://127.0.0.1:$mongo_port"
cargo build --release --locked --bin smppd
./target/release/smppd serve --config "$config" &
pids+=($!)
wait "${pids[-1]}"
