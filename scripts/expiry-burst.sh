#!/usr/bin/env bash
# 1M pending partials falling due in about a minute, on one smppd: claim lateness at
# the receipt, the server's and smppd's CPU every 2 s (cpu.txt), and the server's
# time per script during the deadlines (slowlog.txt: SLOWLOG of everything from
# RESET_AT seconds on, after the submits). AOF on, automatic AOF rewrite off.
#
#   scripts/expiry-burst.sh [redis|valkey]       # COUNT=1000000 VALIDITY=60s..120s RESET_AT=45
#   SMPPD_BIN=/tmp/smppd-a scripts/expiry-burst.sh
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
NODE_PORT[m]="$(free_port)"
NODE_CFG[m]="$work/smppd-m.toml"
metrics_port="$(free_port)"
bench_config "${NODE_CFG[m]}" m "${NODE_PORT[m]}" "$KV_PORT" "$metrics_port" "$MONGO_URI"
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
echo "# unix-time smppd $kind (cores)" >"$out/cpu.txt"
cpu "${NODE_PID[m]}" "$KV_PID" >>"$out/cpu.txt" &
LIB_PIDS+=($!)
(
  sleep "${RESET_AT:-45}"
  kv_cli CONFIG SET slowlog-log-slower-than 0 >/dev/null
  kv_cli CONFIG SET slowlog-max-len 2000000 >/dev/null
  kv_cli SLOWLOG RESET >/dev/null
) &
"$bench_bin" run --addr "127.0.0.1:${NODE_PORT[m]}" --system-id bench --password bench \
  --trx 4 --window 64 --count "${COUNT:-1000000}" --mix udh8x2 --partial 1 \
  --validity "${VALIDITY:-60s..120s}" --registered-delivery 1 --receipt-wait 600s \
  --redis-info "127.0.0.1:$KV_PORT" --watch "smppd=${NODE_PID[m]}" --watch "$kind=$KV_PID" \
  >"$out/run.txt" 2>&1 || true
curl -s "http://127.0.0.1:$metrics_port/metrics" >"$out/metrics.txt" || true
slowlog_totals >"$out/slowlog.txt"
grep -E "^(sent|expiry lateness|cpu)" "$out/run.txt" || tail "$out/run.txt"
head -8 "$out/slowlog.txt"
