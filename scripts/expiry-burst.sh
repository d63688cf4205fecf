#!/usr/bin/env bash
# 1M pending partials falling due in about a minute, on one smppd: claim lateness at
# the receipt, the server's and smppd's CPU every 2 s (cpu.txt), and the server's
# CPU-µs per expired message from RESET_AT seconds on (after the submits). AOF on,
# automatic AOF rewrite off.
#
#   scripts/expiry-burst.sh [redis|valkey]       # COUNT=1000000 VALIDITY=60s..120s RESET_AT=45
#   SMPPD_BIN=/tmp/smppd-a scripts/expiry-burst.sh
#   PERF_SECS=60 scripts/expiry-burst.sh         # also perf-record the server from RESET_AT on
#   SLOWLOG=1 scripts/expiry-burst.sh            # and its time per command / script (slows it)
#   MONGO_NICE=19 scripts/expiry-burst.sh        # the MongoDB stand-in niced (see below)
#
# Results: target/expiry-burst/<UTC stamp>/ (run.txt, metrics.txt, cpu.txt, slowlog.txt).
set -eu
kind="${1:-redis}"
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"
# shellcheck source=scripts/bench-config.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-config.sh"
lib_init expiry-burst
smppd_bin="${SMPPD_BIN:-$smppd_bin}"
export KV_ARGS="--auto-aof-rewrite-percentage 0"
kv_start "$kind"
mongo_start
if [ -n "${MONGO_NICE:-}" ]; then
  # The MongoDB stand-in (Python) burns up to a core writing the outcomes of the
  # deadlines, on the same 2 vCPUs: MONGO_NICE=19 lets smppd and the server go first,
  # as a MongoDB on its own machine would. Every thread of it (nice is per thread).
  for t in /proc/"$MONGO_PID"/task/*; do renice -n "$MONGO_NICE" -p "${t##*/}" >/dev/null 2>&1 || true; done
fi
NODE_PORT[m]="$(free_port)"
NODE_CFG[m]="$work/smppd-m.toml"
metrics_port="$(free_port)"
bench_config "${NODE_CFG[m]}" m "${NODE_PORT[m]}" "$KV_PORT" "$metrics_port" "$MONGO_URI"
if ! "$smppd_bin" check-config --config "${NODE_CFG[m]}" >/dev/null 2>&1; then
  # A binary from before routes (layout 1): the same config without them.
  BENCH_ROUTES=0 bench_config "${NODE_CFG[m]}" m "${NODE_PORT[m]}" "$KV_PORT" "$metrics_port" "$MONGO_URI"
fi
smppd_start m

# cpu PID...: cores each used over the last 2 s, one line per 2 s.
cpu() {
  local tck last=() t i line
  tck="$(getconf CLK_TCK)"
  while :; do
    line="$(date +%s)"
    for i in "$@"; do
      [ -r "/proc/$i/stat" ] || return 0
      t="$(awk '{print $14 + $15}' "/proc/$i/stat")"
      [ -n "${last[$i]:-}" ] && line="$line $(awk -v a="$t" -v b="${last[$i]}" -v k="$tck" 'BEGIN { printf "%.2f", (a - b) / k / 2 }')"
      last[$i]="$t"
    done
    echo "$line"
    sleep 2
  done
}
echo "# unix-time smppd $kind mongo (cores)" >"$out/cpu.txt"
cpu "${NODE_PID[m]}" "$KV_PID" "$MONGO_PID" >>"$out/cpu.txt" &
LIB_PIDS+=($!)
# CPU ticks of smppd and the server when the deadlines begin (after the submits).
ticks() { awk '{print $14 + $15}' "/proc/${NODE_PID[m]}/stat" "/proc/$KV_PID/stat" | paste -sd' '; }
( sleep "${RESET_AT:-45}"; ticks >"$work/ticks-at-reset" ) &
LIB_PIDS+=($!)
if [ "${SLOWLOG:-0}" = 1 ]; then slowlog_start "$out/slowlog.txt" "${RESET_AT:-45}"; fi
if [ -n "${PERF_SECS:-}" ]; then
  (
    sleep "${RESET_AT:-45}"
    perf record -F 499 --call-graph "${PERF_CALLGRAPH:-fp}" -p "$KV_PID" -o "$out/server.perf.data" -- sleep "$PERF_SECS" \
      >"$out/perf-record.log" 2>&1 || true
    perf report -i "$out/server.perf.data" --no-children --sort sym -g none --percent-limit 0.3 \
      --stdio >"$out/server-profile.txt" 2>/dev/null || true
  ) &
  LIB_PIDS+=($!)
fi
"$bench_bin" run --addr "127.0.0.1:${NODE_PORT[m]}" --system-id bench --password bench \
  --trx 4 --window 64 --count "${COUNT:-1000000}" --mix udh8x2 --partial 1 \
  --validity "${VALIDITY:-60s..120s}" --registered-delivery 1 --receipt-wait 600s \
  --redis-info "127.0.0.1:$KV_PORT" --watch "smppd=${NODE_PID[m]}" --watch "$kind=$KV_PID" --watch "mongo=$MONGO_PID" \
  >"$out/run.txt" 2>&1 || true
curl -s "http://127.0.0.1:$metrics_port/metrics" >"$out/metrics.txt" || true
# CPU-µs per expired message from RESET_AT on: the claims, releases, outcomes and
# receipts of the deadlines (the submits were done by then).
read -r s0 k0 <"$work/ticks-at-reset"
read -r s1 k1 <<<"$(ticks)"
awk -v s="$((s1 - s0))" -v k="$((k1 - k0))" -v t="$(getconf CLK_TCK)" -v n="${COUNT:-1000000}" \
  'BEGIN { printf "cpu-us per expired message: smppd %.1f, server %.1f\n", s / t * 1e6 / n, k / t * 1e6 / n }' \
  | tee -a "$out/run.txt"
grep -E "^(sent|expiry lateness|cpu)" "$out/run.txt" || tail "$out/run.txt"
if [ "${SLOWLOG:-0}" = 1 ]; then
  slowlog_stop
  head -8 "$out/slowlog.txt"
  tail -1 "$out/slowlog.txt"
fi
