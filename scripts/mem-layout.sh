#!/usr/bin/env bash
# Redis memory of pending messages, per key kind: starts a fresh Redis 7.0 or Valkey 9
# (AOF on), the Mongo-protocol server and one smppd, submits COUNT 2-part messages
# with their first segment only (they stay pending: validity 600 s), and prints the
# used_memory growth per pending segment and MEMORY USAGE of one key of each kind
# (group hash, segment record) and of the deadline index.
#
#   scripts/mem-layout.sh [redis|valkey]            # COUNT=20000 by default
#   SMPPD_BIN=/tmp/smppd-a scripts/mem-layout.sh    # another smppd binary (A/B)
#
# Results: target/mem-layout/<UTC stamp>/ (run.txt, layout.txt).
set -eu
kind="${1:-redis}"
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"
# shellcheck source=scripts/bench-config.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-config.sh"
lib_init mem-layout
smppd_bin="${SMPPD_BIN:-$smppd_bin}"
count="${COUNT:-20000}"
kv_start "$kind"
mongo_start
NODE_PORT[m]="$(free_port)"
NODE_CFG[m]="$work/smppd-m.toml"
bench_config "${NODE_CFG[m]}" m "${NODE_PORT[m]}" "$KV_PORT" "$(free_port)" "$MONGO_URI"
smppd_start m
used() { kv_cli INFO memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
before="$(used)"
"$bench_bin" run --addr "127.0.0.1:${NODE_PORT[m]}" --system-id bench --password bench \
  --trx 4 --window 64 --count "$count" --mix udh8x2 --partial 1 --validity 600s \
  --registered-delivery 1 --no-receipts >"$out/run.txt" 2>&1 || { tail "$out/run.txt"; lib_die "the run failed"; }
after="$(used)"
{
  echo "smppd: $smppd_bin"
  echo "$kind: $("$KV_BIN" --version)"
  echo "pending segments: $count (payload 159 B each)"
  echo "used_memory per pending segment: $(((after - before) / count)) B"
  # One key of each kind (SCAN's first match; the pipe may end early).
  set +o pipefail
  for pat in 'bench:{*}:g:*' 'bench:{*}:m:*'; do
    k="$(kv_cli --scan --pattern "$pat" | head -1)"
    echo "$pat: MEMORY USAGE $(kv_cli MEMORY USAGE "$k") B, encoding $(kv_cli OBJECT ENCODING "$k")"
  done
  # The partitions' deadline indexes, summed.
  n=0 m=0
  for k in $(kv_cli --scan --pattern 'bench:{*}:deadlines'); do
    n=$((n + $(kv_cli ZCARD "$k"))) m=$((m + $(kv_cli MEMORY USAGE "$k" SAMPLES 0)))
  done
  echo "bench:{*}:deadlines: $n members, MEMORY USAGE $m B"
} | tee "$out/layout.txt"
