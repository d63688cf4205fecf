#!/usr/bin/env bash
# Side-by-side A/B of two smppd binaries: each run gets its own fresh Redis 7.0 or
# Valkey 9 (AOF on, appendfsync everysec), Mongo-protocol server and smppd, then one
# `smppd-bench run` with the given arguments; A and B alternate PAIRS times, so machine
# drift hits both alike. Prints each run and the ratio of B's mean to A's.
#
#   scripts/ab.sh [--kv redis|valkey] [--pairs N] A_BINARY B_BINARY -- <smppd-bench run args>
#   e.g. git stash; cargo build --release -p smppd; cp target/release/smppd /tmp/smppd-a
#        git stash pop; cargo build --release -p smppd
#        scripts/ab.sh /tmp/smppd-a target/release/smppd -- --trx 4 --window 64 \
#          --duration 10s --warmup 2s --mix single --registered-delivery 1
#
# Env: AB_SLOWLOG=1 also logs every Redis command (slowlog-log-slower-than 0) and saves
# per-script totals (<run>.slowlog), to see which script holds Redis how long.
# Results: target/ab/<UTC stamp>/ (<A|B>-<i>.txt/.json, .cmdstats).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kv=redis
pairs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --kv) kv="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$3" = "--" ] || { sed -n 2,14p "$0" >&2; exit 2; }
bin_a="$(realpath "$1")"; bin_b="$(realpath "$2")"; shift 3
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "ab: $b is not an executable" >&2; exit 2; }; done

# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
case "$kv" in
  redis) kv_bin="$SMPPD_REDIS_SERVER" ;;
  valkey) kv_bin="$SMPPD_VALKEY_SERVER" ;;
  *) echo "ab: --kv redis or valkey" >&2; exit 2 ;;
esac
[ -x "$kv_bin" ] && [ -x "$SMPPD_SECANTUSD" ] || { echo "ab: run scripts/deps.sh first" >&2; exit 1; }
py="$(dirname "$SMPPD_SECANTUSD")/python3"
cargo build --release --locked -q -p smppd-bench --manifest-path "$root/Cargo.toml"
bench="$root/target/release/smppd-bench"
out="$root/target/ab/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  local i
  for i in $(seq 1 300); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ab: port $1 ($2) did not open" >&2
  exit 1
}
# resp PORT ARGS...: one command in RESP, the raw reply on stdout.
resp() {
  "$py" - "$@" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
f = s.makefile("rb")
def read():
    l = f.readline(); t, r = l[:1], l[1:-2]
    if t == b"*":
        return [read() for _ in range(int(r))]
    if t == b"$":
        n = int(r)
        return None if n < 0 else f.read(n + 2)[:-2]
    return r
v = read()
if isinstance(v, bytes):
    sys.stdout.write(v.decode())
elif isinstance(v, list) and args[0].upper() == "SLOWLOG":
    tot = {}
    for e in v:
        a = e[3]
        k = a[0].decode().lower() + (" " + a[1].decode()[:8] if a[0].lower() == b"evalsha" else "")
        n, us = tot.get(k, (0, 0))
        tot[k] = (n + 1, us + int(e[2]))
    for k, (n, us) in sorted(tot.items(), key=lambda x: -x[1][1]):
        print(f"{k:20s} calls={n:8d} usec={us:10d} per={us / n:9.1f}")
PY
}

# one_run LABEL BINARY -> $out/LABEL.*
one_run() {
  local label="$1" bin="$2" work pids=() kp mp sp
  shift 2
  work="$(mktemp -d "${TMPDIR:-/tmp}/smppd-ab.XXXXXX")"
  kp="$(free_port)"; mkdir -p "$work/kv"
  "$kv_bin" --port "$kp" --bind 127.0.0.1 --dir "$work/kv" --appendonly yes \
    --appendfsync everysec --save "" --notify-keyspace-events Exh >"$work/kv.log" 2>&1 &
  local kpid=$!; pids+=("$kpid"); wait_port "$kp" "$kv"
  if [ "${AB_SLOWLOG:-0}" = 1 ]; then
    resp "$kp" CONFIG SET slowlog-log-slower-than 0 >/dev/null
    resp "$kp" CONFIG SET slowlog-max-len 2000000 >/dev/null
  fi
  mp="$(free_port)"; mkdir -p "$work/mongo"
  "$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$mp" --storage-path "$work/mongo" >"$work/mongo.log" 2>&1 &
  local mpid=$!; pids+=("$mpid"); wait_port "$mp" mongo
  sp="$(free_port)"
  cat >"$work/smppd.toml" <<EOF
[server]
system_id = "smppd"
node_id = "ab"
listen = "127.0.0.1:$sp"
max_connections = 30000
enquire_link_interval = "60s"
response_timeout = "30s"
outbound_window = 256
[server.bind_failures]
delay = "0"
[redis]
url = "redis://127.0.0.1:$kp"
key_prefix = "bench:"
[mongodb]
uri = "mongodb://127.0.0.1:$mp"
database = "smppd"
[[esme]]
system_id = "bench"
password = "bench"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 30000
window = 1024
default_validity = "48h"
max_validity = "7days"
EOF
  chmod 600 "$work/smppd.toml"
  RUST_LOG=warn "$bin" serve --config "$work/smppd.toml" >"$work/smppd.log" 2>&1 &
  local spid=$!; pids+=("$spid"); wait_port "$sp" smppd
  local rc=0
  "$bench" run --addr "127.0.0.1:$sp" --system-id bench --password bench --label "$label" \
    --json "$out/$label.json" --watch "smppd=$spid" --watch "$kv=$kpid" --watch "mongo=$mpid" \
    "$@" >"$out/$label.txt" 2>&1 || rc=$?
  resp "$kp" INFO commandstats >"$out/$label.cmdstats"
  [ "${AB_SLOWLOG:-0}" = 1 ] && resp "$kp" SLOWLOG GET 2000000 >"$out/$label.slowlog"
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    echo "ab: $label failed (exit $rc):" >&2
    tail -n 5 "$out/$label.txt" "$work/smppd.log" >&2
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$work"
}

summary() {
  local f="$out/$1.txt"
  printf '%-4s %s | %s | %s\n' "$1" \
    "$(grep -oP 'submit_sm_resp OK\s+\d+ \(\K[0-9]+ submit_sm/s' "$f" || echo '-')" \
    "resp $(grep -oP 'submit latency\s+\K.*?(?= \(n=)' "$f" || echo '-')" \
    "$(grep -E '^cpu ' "$f" | awk '{printf "%s %s  ", $2, $3}')"
}

echo "ab: A=$bin_a"
echo "ab: B=$bin_b"
echo "ab: $kv, $pairs pairs, smppd-bench run $*; results in $out"
for i in $(seq 1 "$pairs"); do
  one_run "A-$i" "$bin_a" "$@"; summary "A-$i"
  one_run "B-$i" "$bin_b" "$@"; summary "B-$i"
done
"$py" - "$out" "$pairs" <<'PY'
import json, sys, statistics
out, pairs = sys.argv[1], int(sys.argv[2])
def rate(label):
    with open(f"{out}/{label}.txt") as f:
        for line in f:
            if line.startswith("submit_sm_resp OK"):
                return float(line.split("(")[1].split()[0])
    return float("nan")
a = [rate(f"A-{i}") for i in range(1, pairs + 1)]
b = [rate(f"B-{i}") for i in range(1, pairs + 1)]
print(f"submit_sm/s  A {' / '.join(f'{x:,.0f}' for x in a)}   B {' / '.join(f'{x:,.0f}' for x in b)}"
      f"   B/A = {statistics.mean(b) / statistics.mean(a):.2f} x")
PY
