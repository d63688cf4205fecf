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
# AB_REDIS_INFO=1 passes the server's address as --redis-info (memory per pending
# segment, in the run's .txt). AB_B_THROUGHPUT=N gives B's bench account
# `throughput = burst = N`: with the same binary as A and B, the cost of the shared
# rate limit (docs/design/account-limits.md).
# Results: target/ab/<UTC stamp>/ (<A|B>-<i>.txt/.json, .cmdstats). The servers are
# started by scripts/chaos-lib.sh, as for chaos.sh and soak.sh.
set -euo pipefail
kv=redis
pairs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --kv) kv="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$3" = "--" ] || { sed -n 2,16p "$0" >&2; exit 2; }
bin_a="$(realpath "$1")"; bin_b="$(realpath "$2")"; shift 3
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "ab: $b is not an executable" >&2; exit 2; }; done
case "$kv" in redis | valkey) ;; *) echo "ab: --kv redis or valkey" >&2; exit 2 ;; esac

# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"
# shellcheck source=scripts/bench-config.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-config.sh"
lib_init ab

# one_run LABEL BINARY BENCH_ARGS...: fresh servers, one smppd-bench run -> $out/LABEL.*
one_run() {
  local label="$1" rc=0
  smppd_bin="$2"
  shift 2
  kv_start "$kv"
  if [ "${AB_SLOWLOG:-0}" = 1 ]; then slowlog_start "$out/$label.slowlog"; fi
  rm -rf "$work/mongo"
  mongo_start
  NODE_PORT[ab]="$(free_port)"
  NODE_CFG[ab]="$work/smppd-ab.toml"
  metrics_port="$(free_port)"
  local throughput=""
  case "$label" in B-*) throughput="${AB_B_THROUGHPUT:-}" ;; esac
  BENCH_THROUGHPUT="$throughput" bench_config "${NODE_CFG[ab]}" ab "${NODE_PORT[ab]}" "$KV_PORT" "$metrics_port" "$MONGO_URI"
  if ! "$smppd_bin" check-config --config "${NODE_CFG[ab]}" >/dev/null 2>&1; then
    # A binary from before the account limits: the same config without them.
    BENCH_LIMITS=0 bench_config "${NODE_CFG[ab]}" ab "${NODE_PORT[ab]}" "$KV_PORT" "$metrics_port" "$MONGO_URI"
  fi
  RUST_LOG=warn,smppd::scripts=debug smppd_start ab
  "$bench_bin" run --addr "127.0.0.1:${NODE_PORT[ab]}" --system-id bench --password bench \
    --label "$label" --json "$out/$label.json" --watch "smppd=${NODE_PID[ab]}" \
    --watch "$kv=$KV_PID" --watch "mongo=$MONGO_PID" ${AB_REDIS_INFO:+--redis-info "127.0.0.1:$KV_PORT"} \
    "$@" >"$out/$label.txt" 2>&1 || rc=$?
  kv_cli INFO commandstats >"$out/$label.cmdstats"
  # smppd's counters and histograms (claim lateness: smppd_expiry_lateness_seconds).
  "$venv_python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$metrics_port/metrics" >"$out/$label.metrics" || echo "ab: could not scrape /metrics of $label" >&2
  if [ "${AB_SLOWLOG:-0}" = 1 ]; then slowlog_stop; fi
  smppd_kill ab TERM
  kill "$MONGO_PID" 2>/dev/null || true
  wait_gone "$MONGO_PID"
  kv_stop
  if [ "$rc" != 0 ]; then
    tail -n 5 "$out/$label.txt" "$work/smppd-ab.log" >&2
    lib_die "$label failed (exit $rc)"
  fi
}

# quantiles NAME SERIES: p50/p99 bucket bounds of one of smppd's histograms in the
# run's /metrics, SERIES = the bucket lines' prefix up to their labels, e.g.
# 'smppd_expiry_lateness_seconds_bucket{' (the claim) or
# 'smppd_receipt_wait_seconds_bucket{stage="taken",'.
quantiles() {
  "$venv_python" - "$out/$1.metrics" "$2" <<'PY'
import sys
b = []
try:
    for line in open(sys.argv[1]):
        if line.startswith(sys.argv[2]):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            b.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
except OSError:
    pass
b.sort()
if not b or b[-1][1] == 0:
    print("-")
else:
    q = lambda f: next(le for le, n in b if n >= f * b[-1][1]) * 1000
    print(f"p50 <= {q(0.5):g} / p99 <= {q(0.99):g} ms")
PY
}

summary() {
  local f="$out/$1.txt"
  printf '%-4s %s | %s | %s | claim %s | receipt queued %s, taken %s | %s\n' "$1" \
    "$(grep -oP 'submit_sm_resp OK\s+\d+ \(\K[0-9]+ submit_sm/s' "$f" || echo '-')" \
    "resp $(grep -oP 'submit latency\s+\K.*?(?= \(n=)' "$f" || echo '-')" \
    "expiry $(grep -oP 'expiry lateness\s+\K.*?(?= \(n=)' "$f" || echo '-')" \
    "$(quantiles "$1" 'smppd_expiry_lateness_seconds_bucket{')" \
    "$(quantiles "$1" 'smppd_receipt_wait_seconds_bucket{stage="queued",')" \
    "$(quantiles "$1" 'smppd_receipt_wait_seconds_bucket{stage="taken",')" \
    "$(grep -E '^cpu ' "$f" | awk '{printf "%s %s  ", $2, $3}')"
}

echo "ab: A=$bin_a"
echo "ab: B=$bin_b"
echo "ab: $kv, $pairs pairs, smppd-bench run $*; results in $out"
for i in $(seq 1 "$pairs"); do
  one_run "A-$i" "$bin_a" "$@"; summary "A-$i"
  one_run "B-$i" "$bin_b" "$@"; summary "B-$i"
done
"$venv_python" - "$out" "$pairs" <<'PY'
import sys, statistics
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
# Runs with partial messages also report expiry lateness (receipt time - deadline).
def late_p99(label):
    with open(f"{out}/{label}.txt") as f:
        for line in f:
            if line.startswith("expiry lateness") and "p99 " in line:
                v, unit = line.split("p99 ")[1].split()[:2]
                return float(v) * {"ms": 1.0, "s": 1000.0, "us": 0.001}.get(unit, 1.0)
    return None
la = [late_p99(f"A-{i}") for i in range(1, pairs + 1)]
lb = [late_p99(f"B-{i}") for i in range(1, pairs + 1)]
if None not in la + lb:
    print(f"expiry p99 ms  A {' / '.join(f'{x:,.1f}' for x in la)}   B {' / '.join(f'{x:,.1f}' for x in lb)}"
          f"   B/A = {statistics.mean(lb) / statistics.mean(la):.2f} x")
PY
