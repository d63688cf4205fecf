#!/usr/bin/env bash
# Soak (issue 6): SOAK_DURATION (600 s) at SOAK_RATE (5000) submit_sm/s with a realistic
# mix and some partial messages against one release smppd on Redis 7.0 (AOF on,
# appendfsync everysec) and the Mongo-protocol server. Every SOAK_SAMPLE (10) seconds:
# smppd RSS, Redis used_memory, pending messages and outbox length. Afterwards
# `smppd-bench verify` (acked segments vs outcome documents vs receipts, as in
# scripts/chaos.sh), then SOAK_CONNECTIONS (10000) TCP connections that never bind, held
# while a normal client binds and submits, with smppd's RSS per connection.
#
# Results: target/soak/<UTC stamp>/summary.md (+ series.tsv, bench and verify output).
# Exit 1 when verify finds a mismatch or the probe client is not served.
# Knobs (env): SOAK_DURATION SOAK_RATE SOAK_SAMPLE SOAK_CONNECTIONS SOAK_KV=redis|valkey
#   SOAK_MIX=single=70,udh8x3=10,udh16x2=10,sarx3=10 SOAK_PARTIAL=0.05
#   SOAK_VALIDITY=30s..90s SOAK_DRAIN=1800 (s to wait for receipts / the drain)
#   SOAK_SKIP_CONNECTIONS=1 SOAK_SKIP_LOAD=1
set -euo pipefail
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"

DURATION="${SOAK_DURATION:-600}"
RATE="${SOAK_RATE:-5000}"
SAMPLE="${SOAK_SAMPLE:-10}"
CONNECTIONS="${SOAK_CONNECTIONS:-10000}"
KV="${SOAK_KV:-redis}"
MIX="${SOAK_MIX:-single=70,udh8x3=10,udh16x2=10,sarx3=10}"
PARTIAL="${SOAK_PARTIAL:-0.05}"
VALIDITY="${SOAK_VALIDITY:-30s..90s}"
# How long the bench waits for receipts after the load, and verify for Redis to drain:
# when the outcome writer falls behind, the backlog drains after the load.
DRAIN="${SOAK_DRAIN:-1800}"

lib_init soak
mongo_start
kv_start "$KV"
# Room for the never-binding connections on top of the load's sessions, all of them
# unbound; they must stay open for the whole hold, so the bind timeout is longer than
# the ramp + hold. They come from 200 addresses (max_connections_per_ip stays 64).
SMPPD_MAX_CONNECTIONS=$((CONNECTIONS + 1000)) SMPPD_MAX_UNBOUND_CONNECTIONS=$((CONNECTIONS + 1)) \
  SMPPD_BIND_TIMEOUT=120s smppd_config soak "soak:" soak
smppd_start soak
pid="${NODE_PID[soak]}"
echo "soak: results in $out; smppd pid $pid on :${NODE_PORT[soak]}, $KV on :$KV_PORT"
echo "soak: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
if [ "${SOAK_SKIP_LOAD:-0}" != "1" ]; then
  series="$out/series.tsv"
  printf 't_s\tsmppd_rss_kib\tredis_used_memory\tpending\toutbox\tload1\n' >"$series"
  # A ZSET's size summed over the store's partitions (`soak:{tag}:<name>`).
  zcard_all() {
    local n=0 k
    for k in $(kv_cli --scan --pattern "soak:{*}:$1" 2>/dev/null); do
      n=$((n + $(kv_cli ZCARD "$k" 2>/dev/null || echo 0)))
    done
    echo "$n"
  }
  # Pending multi-part messages: the partitions' usage field g (they are in no ZSET),
  # plus the deadline entries of scheduled and forwarded ones.
  pending_all() {
    local n=0 k g
    for k in $(kv_cli --scan --pattern "soak:{*}:usage" 2>/dev/null); do
      g="$(kv_cli HGET "$k" g 2>/dev/null)"
      n=$((n + ${g:-0}))
    done
    echo $((n + $(zcard_all deadlines)))
  }
  sampler() {
    local t0=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$((SECONDS - t0))" \
        "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)" \
        "$(kv_cli INFO memory 2>/dev/null | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')" \
        "$(pending_all)" \
        "$(zcard_all outbox)" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$series"
      sleep "$SAMPLE"
    done
  }
  sampler &
  sampler_pid=$!
  LIB_PIDS+=("$sampler_pid")

  echo "soak: ${DURATION} s at $RATE submit_sm/s, mix $MIX, partial $PARTIAL, validity $VALIDITY"
  "$bench_bin" run --addr "127.0.0.1:${NODE_PORT[soak]}" --system-id chaos --password chaos \
    --label soak --json "$out/soak.json" --record "$out/soak.rec" --trx 4 --window 64 \
    --rate "$RATE" --duration "${DURATION}s" --mix "$MIX" --partial "$PARTIAL" \
    --validity "$VALIDITY" --registered-delivery 1 --reconnect --retry 5 \
    --response-timeout 60s --receipt-wait "${DRAIN}s" \
    --watch "smppd=$pid" --watch "$KV=$KV_PID" --watch "mongo=$MONGO_PID" | tee "$out/soak.txt"
  "$bench_bin" verify --record "$out/soak.rec" --uri "$MONGO_URI" --database soak \
    --account chaos --redis "127.0.0.1:$KV_PORT" --prefix soak: --drain-timeout "${DRAIN}s" \
    --label soak --json "$out/soak.verify.json" | tee "$out/soak.verify.txt" || status=1
  # Two more samples after the drain: what stays behind.
  sleep "$SAMPLE"
  kill "$sampler_pid" 2>/dev/null || true
  wait_gone "$sampler_pid"
fi

if [ "${SOAK_SKIP_CONNECTIONS:-0}" != "1" ]; then
  echo
  echo "soak: $CONNECTIONS connections that never bind, and one normal client meanwhile"
  "$bench_bin" idle --addr "127.0.0.1:${NODE_PORT[soak]}" --system-id chaos --password chaos \
    --no-bind --sources 200 --sessions "$CONNECTIONS" --concurrency 500 --hold 20s --probe \
    --server-pid "$pid" --label "never-bind-$CONNECTIONS" --json "$out/never-bind.json" \
    | tee "$out/never-bind.txt" || status=1
fi
smppd_kill soak TERM

"$venv_python" - "$out" "$DURATION" <<'PY' | tee "$out/summary.md" || status=1
import json, os, sys
out, duration = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
ok = True
r, v = load("soak.json"), load("soak.verify.json")
if r and v:
    print("| run | acked segments | in outcomes | missing | duplicates | receipts expected | received | verdict |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print(f"| soak {duration} s, {r['offered_rate']}/s offered ({r['submit_per_s']:,.0f}/s achieved) | "
          f"{v['acked_segments']:,} | {v['in_outcomes']:,} | {v['missing']} | {v['duplicates']} | "
          f"{v['receipts_expected']:,} | {v['receipts_received']:,} | {'OK' if v['ok'] else 'MISMATCH'} |")
    ok &= v["ok"]
    lat = r["submit_latency"]
    rc = r.get("receipts") or {}
    print()
    print(f"submit_sm_resp p50 {lat['p50_ms']:.2f} / p99 {lat['p99_ms']:.2f} / max {lat['max_ms']:.1f} ms; "
          f"errors {r['errors'] or 'none'}; resent {r.get('resent', 0)}, rebinds {r.get('reconnects', 0)}; "
          f"receipt latency p50 {rc.get('latency', {}).get('p50_ms', 0):.0f} / p99 {rc.get('latency', {}).get('p99_ms', 0):.0f} ms; "
          f"stored-not-acked {v['stored_not_acked']}, receipts twice {v['receipts_twice']}; "
          "CPU cores: " + ", ".join(f"{p['name']} {p['cores']:.2f}" for p in r.get("processes", [])))
    series = os.path.join(out, "series.tsv")
    if os.path.exists(series):
        rows = [l.rstrip("\n").split("\t") for l in open(series)][1:]
        rows = [x for x in rows if len(x) == 6 and all(x[:5])]
        print()
        print("| t (s) | smppd RSS (MiB) | Redis used_memory (MiB) | pending | outbox | load avg |")
        print("|---:|---:|---:|---:|---:|---:|")
        for t, rss, mem, dl, ob, la in rows:
            print(f"| {t} | {int(rss) / 1024:.1f} | {int(mem) / 2**20:.1f} | {dl} | {ob} | {la} |")
        warm = [x for x in rows if duration // 5 <= int(x[0]) <= duration]
        if warm:
            rss = [int(x[1]) / 1024 for x in warm]
            mem = [int(x[2]) / 2**20 for x in warm]
            print()
            print(f"after warm-up ({duration // 5}..{duration} s): smppd RSS {min(rss):.1f}..{max(rss):.1f} MiB "
                  f"(first {rss[0]:.1f}, last {rss[-1]:.1f}); Redis used_memory {min(mem):.1f}..{max(mem):.1f} MiB "
                  f"(first {mem[0]:.1f}, last {mem[-1]:.1f})")
i = load("never-bind.json")
if i:
    p = i.get("probe") or {}
    served = p and not p.get("error") and p.get("submit_status") == "ESME_ROK"
    ok &= bool(served) and i["sessions_bound"] == i["sessions_requested"]
    print()
    print("| connections that never bind | open | closed by smppd during the hold | smppd RSS before -> held | per connection | normal client meanwhile |")
    print("|---:|---:|---:|---|---:|---|")
    probe = (f"bound in {p['bind_ms']:.1f} ms, submit_sm_resp {p['submit_status']} in {p['submit_ms']:.1f} ms"
             if served else f"NOT SERVED: {p.get('error') or p.get('submit_status')}")
    print(f"| {i['sessions_requested']:,} | {i['sessions_bound']:,} | {i['closed_by_server']} | "
          f"{i['server_rss_before_kib'] / 1024:.1f} -> {i['server_rss_bound_kib'] / 1024:.1f} MiB | "
          f"{i['server_rss_per_session_kib']:.1f} KiB | {probe} |")
sys.exit(0 if ok else 1)
PY
exit "$status"
