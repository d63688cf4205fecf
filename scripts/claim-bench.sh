#!/usr/bin/env bash
# The server's CPU-µs per group claimed by CLAIM_DUE, with nothing else running: the
# cost that bounds expiry lateness under a burst (scripts/expiry-burst.sh), measured
# in seconds instead of minutes. Loads COUNT pending partials (2-part, one segment in)
# through smppd, stops it, makes every deadline due, then per run restores the same
# data and calls the script until none is due. To compare a variant of the script:
#
#   scripts/claim-bench.sh [redis|valkey]                 # COUNT=100000 RUNS=3 LIMIT=256
#   CLAIM_LUA=a.lua:b.lua scripts/claim-bench.sh   # claim_due.lua variants (same lib.lua),
#                                                  # alternated within each run
#   PERF=1 scripts/claim-bench.sh      # and perf-record the server (runN.perf.data)
#   SMPPD_BIN=/tmp/smppd-old LUA_DIR=/tmp/old/src/store/lua scripts/claim-bench.sh  # another build
#
# Results: target/claim-bench/<UTC stamp>/result.txt.
set -eu
kind="${1:-redis}"
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"
# shellcheck source=scripts/bench-config.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-config.sh"
lib_init claim-bench
count="${COUNT:-100000}"
# No AOF rewrite (a fork) in the middle of a measurement.
export KV_ARGS="${KV_ARGS:---auto-aof-rewrite-percentage 0}"
smppd_bin="${SMPPD_BIN:-$smppd_bin}"
kv_start "$kind"
mongo_start
NODE_PORT[m]="$(free_port)"
NODE_CFG[m]="$work/smppd-m.toml"
bench_config "${NODE_CFG[m]}" m "${NODE_PORT[m]}" "$KV_PORT" "$(free_port)" "$MONGO_URI"
smppd_start m
# The bench would wait for the receipts (at the deadlines): stopped once all are pending.
"$bench_bin" run --addr "127.0.0.1:${NODE_PORT[m]}" --system-id bench --password bench \
  --trx 4 --window 64 --count "$count" --mix udh8x2 --partial 1 --validity 3600s \
  --registered-delivery 1 >"$out/load.txt" 2>&1 &
bench_pid=$!
pending() {
  kv_cli --scan --pattern '*usage' | while read -r k; do kv_cli HGET "$k" g; done |
    awk '{ n += $1 } END { print n + 0 }'
}
until [ "$(pending)" -ge "$count" ]; do sleep 1; done
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
smppd_kill m TERM
kv_stop
cp -a "$KV_DIR" "$work/loaded"
lua="${LUA_DIR:-$root/src/store/redis/lua}"
{
  echo "# $kind, $count pending partials"
  IFS=: read -r -a variants <<<"${CLAIM_LUA:-$lua/claim_due.lua}"
  for run in $(seq "${RUNS:-3}"); do
   for variant in "${variants[@]}"; do
    rm -rf "$KV_DIR"
    cp -a "$work/loaded" "$KV_DIR"
    kv_spawn
    until [ "$(kv_cli PING 2>/dev/null)" = PONG ]; do sleep 0.2; done # AOF loaded
    perf_pid=""
    if [ -n "${PERF:-}" ]; then
      perf record -F 999 --call-graph dwarf,16384 -p "$KV_PID" -o "$out/run$run.perf.data" >/dev/null 2>&1 &
      perf_pid=$!
      sleep 1
    fi
    "$venv_python" - "$KV_PORT" "$KV_PID" "$lua/lib.lua" "$variant" \
      "${LIMIT:-256}" "$run" <<'PY'
import os, socket, sys
port, pid, lib, body, limit, run = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
src = open(lib, "rb").read() + open(body, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def cmd(*args):
    args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    return read()
got = 0
def read():
    global got
    l = f.readline(); t, r = l[:1], l[1:-2]
    got += len(l)
    if t == b"*":
        n = int(r)
        return None if n < 0 else [read() for _ in range(n)]
    if t == b"$":
        n = int(r)
        got += max(n, 0) + 2
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"-":
        raise SystemExit("claim-bench: " + r.decode())
    return r
body_src = open(body, "rb").read()
def all_past(k):
    """Every member of ZSET k at score 1: its deadline passed."""
    members = cmd("ZRANGE", k, 0, -1)
    for i in range(0, len(members), 1000):
        args = []
        for m in members[i:i + 1000]:
            args += [1, m]
        cmd("ZADD", k, *args)
if b"ixb" in body_src:
    # Layout 4: every index second and every value's deadline (octets 2-7) in the
    # past, as if the validity had passed.
    keys = [k[:-len(b"ixb")] + b"deadlines" for k in cmd("KEYS", "*ixb")]
    for k in cmd("KEYS", "*ixb"):
        all_past(k)
    for g in cmd("KEYS", "*:g:*"):
        cmd("SETRANGE", g, 1, (1000).to_bytes(6, "big"))
else:
    keys = cmd("KEYS", "*deadlines")
    for k in keys:
        all_past(k)
sha = cmd("SCRIPT", "LOAD", src).decode()
hfe = "1" if cmd("HELLO")[cmd("HELLO").index(b"version") + 1] >= b"7.4" else "0"
def ticks():
    v = open(f"/proc/{pid}/stat").read().split()
    return int(v[13]) + int(v[14])
t0, groups, calls, got = ticks(), 0, 0, 0
for k in keys:
    p = k[:-len(b"deadlines")]
    # The script's arguments: one partition as a list of one (`parts_header`), or, for
    # a build before multi-partition claims, the partition's prefix alone.
    many = b"parts_header()" in body_src
    given = [0] if b"given" in body_src else []
    while True:
        if many:
            r = cmd("EVALSHA", sha, 1, k, p, "bench-node", 1, p, limit, hfe, 0, *given)
            listed = int(r[0][0][1])
        else:
            r = cmd("EVALSHA", sha, 1, k, p, "bench-node", limit, hfe, 0)
            listed = int(r[0])
        calls += 1
        groups += (len(r) - (3 if given else 2)) // 2
        if listed < int(limit):
            break
us = (ticks() - t0) / os.sysconf("SC_CLK_TCK") * 1e6
print(f"run {run} {os.path.basename(body)}: {groups} groups claimed in {calls} calls, server {us / groups:.1f} CPU-us per group, "
      f"reply {got / groups:.0f} B per group")
PY
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    kv_stop
   done
  done
} | tee "$out/result.txt"
