#!/usr/bin/env bash
# Redis memory of pending messages, per key kind: starts a fresh Redis 7.0 or Valkey 9
# (AOF on), the Mongo-protocol server and one smppd, submits COUNT 2-part messages
# with their first segment only (they stay pending: validity 600 s), and prints the
# used_memory growth per pending segment, MEMORY USAGE and length of one pending
# value, and the deadline index (its id sets and their ZSET of seconds).
#
#   scripts/mem-layout.sh [redis|valkey]            # COUNT=20000 by default
#   SMPPD_BIN=/tmp/smppd-a scripts/mem-layout.sh    # another smppd binary (A/B)
#
# Budgets (the layout's implementation details, checked here rather than pinned by
# tests): bytes per pending segment (MEM_BUDGET_B, default 409: the payload + 250 B
# goal), the index sets intsets, and SUBMIT batching: script calls (EVALSHA) per
# stored segment under 4 x 64 concurrent submits (CALLS_BUDGET, default 0.25). Exit 1
# when one is over.
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
evalsha() { kv_cli INFO commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p' | tr -d '\r'; }
before="$(used)"
calls_before="$(evalsha)"
"$bench_bin" run --addr "127.0.0.1:${NODE_PORT[m]}" --system-id bench --password bench \
  --trx 4 --window 64 --count "$count" --mix udh8x2 --partial 1 --validity 600s \
  --registered-delivery 1 --no-receipts >"$out/run.txt" 2>&1 || { tail "$out/run.txt"; lib_die "the run failed"; }
after="$(used)"
calls_after="$(evalsha)"
{
  echo "smppd: $smppd_bin"
  echo "$kind: $("$KV_BIN" --version)"
  echo "pending segments: $count (payload 159 B each)"
  echo "used_memory per pending segment: $(((after - before) / count)) B"
  # One key of each kind (SCAN's first match; the pipe may end early).
  set +o pipefail
  k="$(kv_cli --scan --pattern 'bench:{*}:g:*' | head -1)"
  echo "bench:{*}:g:*: MEMORY USAGE $(kv_cli MEMORY USAGE "$k") B, $(kv_cli STRLEN "$k") octets"
  echo "bench:{*}:m:* keys: $(kv_cli --scan --pattern 'bench:{*}:m:*' | wc -l)"
  # The partitions' deadline indexes, summed.
  n=0 m=0 s=0
  for k in $(kv_cli --scan --pattern 'bench:{*}:ix:*'); do
    n=$((n + $(kv_cli SCARD "$k"))) m=$((m + $(kv_cli MEMORY USAGE "$k" SAMPLES 0))) s=$((s + 1))
  done
  for k in $(kv_cli --scan --pattern 'bench:{*}:ixb'); do
    m=$((m + $(kv_cli MEMORY USAGE "$k" SAMPLES 0)))
  done
  echo "bench:{*}:ix:* + ixb: $n ids in $s sets, MEMORY USAGE $m B"
} | tee "$out/layout.txt"

# Budgets.
per_segment=$(((after - before) / count))
mem_budget="${MEM_BUDGET_B:-409}"
calls_budget="${CALLS_BUDGET:-0.25}"
calls="$(awk -v a="${calls_after:-0}" -v b="${calls_before:-0}" -v n="$count" 'BEGIN { printf "%.3f", (a - b) / n }')"
set +o pipefail
# Every index set an intset (the first one that is not, if any).
encoding=intset
for ix in $(kv_cli --scan --pattern 'bench:{*}:ix:*'); do
  e="$(kv_cli OBJECT ENCODING "$ix")"
  if [ "$e" != intset ]; then encoding="$e ($ix)"; break; fi
done
over=0
budget() { # name value limit verdict
  echo "budget: $1 $2 (limit $3): $4" | tee -a "$out/layout.txt"
  [ "$4" = ok ] || over=1
}
budget "B per pending segment" "$per_segment" "$mem_budget" "$([ "$per_segment" -le "$mem_budget" ] && echo ok || echo OVER)"
budget "index set encoding" "$encoding" "intset" "$([ "$encoding" = intset ] && echo ok || echo OVER)"
budget "script calls per segment" "$calls" "$calls_budget" "$(awk -v c="$calls" -v l="$calls_budget" 'BEGIN { print (c <= l) ? "ok" : "OVER" }')"
exit "$over"
