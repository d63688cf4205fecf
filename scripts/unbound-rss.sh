#!/usr/bin/env bash
# Issue 23: smppd's RSS while UNBOUND_CONNECTIONS (5000) connections that never bind
# each hold a partial frame — all but the last octet of an UNBOUND_FRAME-octet frame
# (512: the largest smppd reads before a bind) — and a normal client binds and submits
# meanwhile. Default limits (max_connections 10000, half of it unbound); the
# connections come from UNBOUND_SOURCES (100) loopback addresses, under
# max_connections_per_ip (64). Goal: RSS under 64 MiB.
#
# Results: target/unbound-rss/<UTC stamp>/unbound.{txt,json}. Exit 1 when RSS is over
# UNBOUND_RSS_GOAL_MIB (64) or the normal client is not served.
set -euo pipefail
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"

CONNECTIONS="${UNBOUND_CONNECTIONS:-5000}"
FRAME="${UNBOUND_FRAME:-512}"
SOURCES="${UNBOUND_SOURCES:-100}"
GOAL_MIB="${UNBOUND_RSS_GOAL_MIB:-64}"

lib_init unbound-rss
mongo_start
kv_start redis
# Held longer than the ramp + hold.
SMPPD_MAX_CONNECTIONS=10000 SMPPD_BIND_TIMEOUT=120s smppd_config rss "rss:" rss
smppd_start rss
pid="${NODE_PID[rss]}"
"$bench_bin" idle --addr "127.0.0.1:${NODE_PORT[rss]}" --system-id chaos --password chaos \
  --no-bind --partial-frame "$FRAME" --sources "$SOURCES" --sessions "$CONNECTIONS" \
  --concurrency 500 --hold 10s --probe --server-pid "$pid" \
  --label "unbound-$CONNECTIONS-partial-$FRAME" --json "$out/unbound.json" | tee "$out/unbound.txt"
smppd_kill rss TERM

"$venv_python" - "$out/unbound.json" "$GOAL_MIB" <<'PY'
import json, sys
r, goal = json.load(open(sys.argv[1])), float(sys.argv[2])
p = r.get("probe") or {}
mib = r["server_rss_bound_kib"] / 1024
served = not p.get("error") and p.get("submit_status") == "ESME_ROK"
print(f"smppd RSS {r['server_rss_before_kib'] / 1024:.1f} -> {mib:.1f} MiB with "
      f"{r['sessions_bound']:,} unbound connections ({r['closed_by_server']} closed by smppd); "
      f"goal < {goal:.0f} MiB: {'met' if mib < goal else 'MISSED'}; normal client "
      f"{'served' if served else 'NOT served'}")
sys.exit(0 if mib < goal and served else 1)
PY
