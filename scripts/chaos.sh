#!/usr/bin/env bash
# Fault injection under real load (issue 6). For each fault: a fresh key prefix and
# MongoDB database, smppd-bench load (TRX sessions that bind again and resend like an
# ESME: --reconnect --retry, every acknowledged segment and receipt written with
# --record), the fault injected while the load runs, then `smppd-bench verify`: wait
# until smppd has nothing left in Redis (deadlines, outbox, receipts), then every
# acknowledged segment must be in exactly one outcome document, no segment stored
# twice, every requested receipt received. One table at the end; exit 1 on any mismatch.
#
# Faults (CHAOS_FAULTS, space-separated, default all, in this order):
#   smppd-kill       smppd SIGKILLed twice under load, restarted with the same node_id
#   two-nodes        two nodes share the load; one SIGKILLed and left dead (the other
#                    takes its outbox leases after outbox_lease, 30 s)
#   redis-restart    Redis SIGKILLed under load (AOF, appendfsync everysec), restarted 3 s
#                    later: submits meanwhile get a temporary error, binds survive;
#                    deadlines of 4-12 s, so some pass during the outage
#   pubsub-kill      half the messages left partial with 2–8 s deadlines; the
#                    subscriber's connection killed every second (CLIENT KILL ID of
#                    each subscriber); one account delivers partials, one expires them whole
#   mongo-stop       the Mongo-protocol server SIGSTOPped for 30 s under load
#   silent-receiver  receipts go to a receiver bind that leaves deliver_sm unanswered
#                    for 30 s; smppd RSS sampled every second
#   forward-kill     the load is routed to a second account's receivers (A->B); smppd
#                    SIGKILLed twice mid-delivery: every message delivered at least once,
#                    the deliver_sm sent again counted
#
# Knobs (env): CHAOS_KV=redis (or valkey, or "redis valkey"), CHAOS_RATE=1500 offered
# submit_sm/s, CHAOS_DURATION=24 seconds of load per fault, CHAOS_MIX, CHAOS_FAULTS.
# Results: target/chaos/<UTC stamp>/ (summary.md, per-fault bench/verify output).
set -euo pipefail
# shellcheck source=scripts/chaos-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos-lib.sh"

RATE="${CHAOS_RATE:-1500}"
D="${CHAOS_DURATION:-24}"
MIX="${CHAOS_MIX:-single=60,udh8x3=15,udh16x2=15,sarx3=10}"
KVS="${CHAOS_KV:-redis}"
FAULTS="${CHAOS_FAULTS:-smppd-kill two-nodes redis-restart pubsub-kill mongo-stop silent-receiver forward-kill}"

lib_init chaos
mongo_start
echo "chaos: results in $out; faults: $FAULTS; key-value: $KVS; load $RATE submit_sm/s for ${D}s each"

# load LABEL ACCOUNT ADDRS SESSIONS PARTIAL VALIDITY FIRST_DEST [more run args]: the
# bench in the background (LOAD_PID).
load() {
  local label="$1" account="$2" addrs="$3" sessions="$4" partial="$5" validity="$6" first="$7"
  shift 7
  # shellcheck disable=SC2086
  "$bench_bin" run --addr "$addrs" --system-id "$account" --password chaos --label "$label" \
    --json "$out/$label.json" --record "$out/$label.rec" $sessions --window 64 \
    --rate "$RATE" --duration "${D}s" --mix "$MIX" --partial "$partial" --validity "$validity" \
    --first-dest "$first" --registered-delivery 1 --reconnect --retry 50 --retry-pause 250ms \
    --response-timeout 60s --receipt-wait 150s "$@" >"$out/$label.txt" 2>&1 &
  LOAD_PID=$!
}

# check LABEL PREFIX DB ACCOUNT ADDRS [verify args]: waits for the drain, compares.
# During the drain a receiver of ACCOUNT (and of each further `--drain-bind
# ID:PASSWORD`: every account of the prefix that may have queued receipts or
# deliveries) is bound on ADDRS, the live nodes: the load unbinds once it has every
# receipt, and a receipt already delivered by a node SIGKILLed before it recorded the
# delivery becomes due again only when that node's lease ends (up to ~37 s after the
# kill); smppd keeps it until a receiver binds (or its 1 h lifetime ends), so without
# one it held the drain.
check() {
  local label="$1" prefix="$2" db="$3" account="$4" addrs="$5"
  shift 5
  "$bench_bin" verify --record "$out/$label.rec" --uri "$MONGO_URI" --database "$db" \
    --account "$account" --redis "127.0.0.1:$KV_PORT" --prefix "$prefix" --drain-timeout 180s \
    --smpp "$addrs" --drain-bind "$account:chaos" \
    --label "$label" --json "$out/$label.verify.json" "$@" >"$out/$label.verify.txt" 2>&1 || true
  sed 's/^/    /' "$out/$label.verify.txt"
  if grep -q '"drained": *false' "$out/$label.verify.json" 2>/dev/null; then
    left_in_redis "$prefix" | tee "$out/$label.left.txt" | sed 's/^/    left: /'
  fi
}

# left_in_redis PREFIX: what a store that did not drain still holds: the accounts its
# partitions' racc sets name, with their receipt queues (id, score, payload present?).
left_in_redis() {
  local cli=("$SMPPD_REDIS_CLI" -p "$KV_PORT") key acct id
  for key in $("${cli[@]}" --scan --pattern "$1*:racc"); do
    for acct in $("${cli[@]}" SMEMBERS "$key"); do
      echo "$key $acct: r $("${cli[@]}" ZRANGE "${key%racc}r:$acct" 0 9 WITHSCORES | tr '\n' ' ')"
      for id in $("${cli[@]}" ZRANGE "${key%racc}r:$acct" 0 9); do
        echo "  $id payload: $("${cli[@]}" HEXISTS "${key%racc}rd:$acct" "$id")"
      done
    done
  done
  echo "deadlines: $("${cli[@]}" --scan --pattern "$1*:deadlines" | head -3 | tr '\n' ' ')"
  for key in $("${cli[@]}" --scan --pattern "$1*:usage"); do
    echo "$key: $("${cli[@]}" HGETALL "$key" | tr '\n' ' ')"
  done
}

# meta LABEL KEY VALUE: facts about the fault for the table and its checks.
meta() { echo "$2=$3" >>"$out/$1.meta"; }

wait_load() {
  if ! wait "$LOAD_PID"; then
    echo "chaos: the load of $1 failed:" >&2
    tail -n 20 "$out/$1.txt" >&2
    meta "$1" load_failed 1
  fi
}

fault_smppd_kill() {
  local l="smppd-kill-$KV_KIND" p="ck-$KV_KIND:" db="chaos_kill_$KV_KIND" n="kill-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  load "$l" chaos "127.0.0.1:${NODE_PORT[$n]}" "--trx 4" 0.05 20s..40s 4917100000000
  sleep $((D / 3))
  smppd_kill "$n" KILL
  sleep 1
  smppd_start "$n"
  sleep $((D / 3))
  smppd_kill "$n" KILL
  smppd_start "$n"
  meta "$l" fault "smppd SIGKILL x2, restarted (same node_id)"
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$n]}"
  smppd_kill "$n" TERM
}

fault_forward_kill() {
  local l="forward-kill-$KV_KIND" p="cf-$KV_KIND:" db="chaos_fwd_$KV_KIND" n="fwd-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  # Validity longer than a dead node's delivery lease (~40 s here): a delivery the
  # killed node had in flight is sent again before the message expires. With a
  # shorter one it truthfully ends EXPIRED (its receiver's OK never reached Redis).
  load "$l" chaos "127.0.0.1:${NODE_PORT[$n]}" "--trx 4" 0 120s 9310000000000 \
    --forward-rx 2 --forward-to chaos2:chaos
  sleep $((D / 3))
  smppd_kill "$n" KILL
  sleep 1
  smppd_start "$n"
  sleep $((D / 3))
  smppd_kill "$n" KILL
  smppd_start "$n"
  meta "$l" fault "A->B, smppd SIGKILL x2 mid-delivery, restarted"
  meta "$l" forwarded 1
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$n]}" --drain-bind chaos2:chaos
  smppd_kill "$n" TERM
}

fault_two_nodes() {
  local l="two-nodes-$KV_KIND" p="c2-$KV_KIND:" db="chaos_two_$KV_KIND"
  local a="a-$KV_KIND" b="b-$KV_KIND"
  smppd_config "$a" "$p" "$db"
  smppd_config "$b" "$p" "$db"
  smppd_start "$a"
  smppd_start "$b"
  load "$l" chaos "127.0.0.1:${NODE_PORT[$a]},127.0.0.1:${NODE_PORT[$b]}" "--trx 4" 0.05 20s..40s 4917200000000
  sleep $((D / 3))
  smppd_kill "$a" KILL
  meta "$l" fault "2 nodes, one SIGKILLed, not restarted"
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$b]}"
  smppd_kill "$b" TERM
}

fault_redis_restart() {
  local l="redis-restart-$KV_KIND" p="cr-$KV_KIND:" db="chaos_redis_$KV_KIND" n="r-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  # Short deadlines: some fall into the outage, for the recovery pass after resubscribing.
  load "$l" chaos "127.0.0.1:${NODE_PORT[$n]}" "--trx 4" 0.05 4s..12s 4917300000000
  sleep $((D / 3))
  kv_kill KILL
  sleep 3
  kv_spawn
  meta "$l" fault "$KV_KIND SIGKILL, down 3 s, restarted from its AOF"
  meta "$l" expect_temporary_errors 1
  meta "$l" expect_no_rebind 1
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$n]}"
  smppd_kill "$n" TERM
}

fault_pubsub_kill() {
  local l="pubsub-kill-$KV_KIND" lw="pubsub-kill-whole-$KV_KIND" p="cp-$KV_KIND:" db="chaos_pubsub_$KV_KIND" n="p-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  local addr="127.0.0.1:${NODE_PORT[$n]}"
  load "$l" chaos "$addr" "--trx 2" 0.5 2s..8s 4917400000000
  local pid1=$LOAD_PID
  load "$lw" whole "$addr" "--trx 2" 0.5 2s..8s 4917500000000
  local pid2=$LOAD_PID
  local kills=0 i k
  for i in $(seq 1 "$D"); do
    sleep 1
    # By id: smppd's subscriber speaks RESP3 (sharded channels), which CLIENT KILL
    # TYPE pubsub does not count as a pubsub client.
    k=0
    for id in $(kv_cli CLIENT LIST 2>/dev/null | awk '/ (s?sub)=[1-9]/ { for (i = 1; i <= NF; i++) if ($i ~ /^id=/) print substr($i, 4) }'); do
      k=$((k + $(kv_cli CLIENT KILL ID "$id" 2>/dev/null || echo 0)))
    done
    kills=$((kills + ${k:-0}))
  done
  meta "$l" fault "subscriber connection killed every 1 s ($kills kills), partials 2-8 s (deliver_partial)"
  meta "$lw" fault "same run, account with expiry_mode expire_whole"
  meta "$l" pubsub_kills "$kills"
  LOAD_PID=$pid1 wait_load "$l"
  LOAD_PID=$pid2 wait_load "$lw"
  # One prefix for both accounts: each drain waits for the other's receipts too.
  check "$l" "$p" "$db" chaos "$addr" --drain-bind whole:chaos
  check "$lw" "$p" "$db" whole "$addr" --drain-bind chaos:chaos --expire-whole
  smppd_kill "$n" TERM
}

fault_mongo_stop() {
  local l="mongo-stop-$KV_KIND" p="cm-$KV_KIND:" db="chaos_mongo_$KV_KIND" n="m-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  load "$l" chaos "127.0.0.1:${NODE_PORT[$n]}" "--trx 4" 0.05 20s..40s 4917600000000
  sleep $((D / 4))
  kill -STOP "$MONGO_PID"
  sleep 30
  kill -CONT "$MONGO_PID"
  meta "$l" fault "Mongo-protocol server SIGSTOPped 30 s"
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$n]}"
  smppd_kill "$n" TERM
}

fault_silent_receiver() {
  local l="silent-receiver-$KV_KIND" p="cs-$KV_KIND:" db="chaos_silent_$KV_KIND" n="s-$KV_KIND"
  smppd_config "$n" "$p" "$db"
  smppd_start "$n"
  local rss="$out/$l.rss"
  rss_sampler "${NODE_PID[$n]}" "$rss" 1 &
  local sampler=$!
  LIB_PIDS+=("$sampler")
  load "$l" chaos "127.0.0.1:${NODE_PORT[$n]}" "--tx 2 --rx 1 --trx 0" 0.05 20s..40s 4917700000000 --silent-rx 30s
  meta "$l" fault "receiver leaves deliver_sm unanswered for 30 s"
  meta "$l" expect_ignored 1
  wait_load "$l"
  check "$l" "$p" "$db" chaos "127.0.0.1:${NODE_PORT[$n]}"
  kill "$sampler" 2>/dev/null || true
  wait_gone "$sampler"
  meta "$l" rss "$(awk 'NR==1 {first=$2} $2>max {max=$2} {last=$2} END {printf "smppd RSS %d -> max %d -> %d KiB", first, max, last}' "$rss")"
  smppd_kill "$n" TERM
}

order=()
for kv in $KVS; do
  kv_start "$kv"
  for f in $FAULTS; do
    echo
    echo "== $f on $kv ($(date -u +%H:%M:%S))"
    fn="fault_${f//-/_}"
    declare -F "$fn" >/dev/null || lib_die "unknown fault $f"
    started=$SECONDS
    "$fn"
    echo "   ($((SECONDS - started)) s)"
    case "$f" in
      pubsub-kill) order+=("$f-$kv" "$f-whole-$kv") ;;
      *) order+=("$f-$kv") ;;
    esac
  done
  kv_stop
done

"$venv_python" - "$out" "${order[@]}" <<'PY' | tee "$out/summary.md"
import json, os, sys
out, labels = sys.argv[1], sys.argv[2:]
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
def meta(label):
    m = {}
    p = os.path.join(out, label + ".meta")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.rstrip("\n").partition("=")
            m[k] = v
    return m
rows, failed = [], []
for label in labels:
    v = load(os.path.join(out, label + ".verify.json"))
    r = load(os.path.join(out, label + ".json"))
    m = meta(label)
    problems = []
    if v is None:
        problems.append("no verify result")
        v = {}
    elif not v.get("ok"):
        problems.append("mismatch")
    if m.get("load_failed") or r is None:
        problems.append("load failed")
        r = r or {}
    errors = r.get("errors", {})
    temporary = sum(errors.get(k, 0) for k in ("ESME_RSYSERR", "ESME_RMSGQFUL", "ESME_RTHROTTLED"))
    if m.get("expect_temporary_errors") and temporary == 0:
        problems.append("no temporary error seen: fault missed the load")
    if m.get("expect_no_rebind") and r.get("reconnects", 0) > 0:
        problems.append(f"{r['reconnects']} rebinds: a bind did not survive")
    if m.get("expect_ignored") and r.get("deliver_ignored", 0) == 0:
        problems.append("no deliver_sm was left unanswered")
    notes = [m.get("fault", "")]
    rc = r.get("receipts") or {}
    el = rc.get("expiry_lateness") or {}
    notes.append(
        f"load {r.get('segments_ok', 0):,} ok at {r.get('submit_per_s', 0):,.0f}/s; "
        f"resent {r.get('resent', 0)}, rebinds {r.get('reconnects', 0)}"
        + (f", deliver_sm left unanswered {r['deliver_ignored']}" if r.get("deliver_ignored") else "")
        + (f", errors {', '.join(f'{k} {n}' for k, n in errors.items())}" if errors else "")
        + (f"; expiry lateness p99 {el['p99_ms']:.0f} ms" if el.get("count") else "")
        + (f"; forwarded {rc.get('forwarded', 0):,} deliver_sm, {rc.get('forwarded_twice', 0)} sent again"
           if m.get("forwarded") else "")
    )
    notes.append(
        f"stored-not-acked {v.get('stored_not_acked', 0)}, resent-stored-twice {v.get('resent_stored_twice', 0)}, "
        f"wrong state {v.get('wrong_state', 0)}, receipts twice {v.get('receipts_twice', 0)}"
        + (f", kept for an unbound ESME and delivered during the drain {v['drain_delivered']}"
           if v.get("drain_delivered") else "")
        + (f", drain receivers failed: {'; '.join(v['drain_bind_errors'])}"
           if v.get("drain_bind_errors") else "")
        + ("" if v.get("drained", True) else f", NOT DRAINED: {v.get('drain_left')}")
    )
    if m.get("rss"):
        notes.append(m["rss"])
    if problems:
        failed.append(label)
    rows.append([
        label,
        f"{v.get('acked_segments', 0):,}",
        f"{v.get('in_outcomes', 0):,}",
        str(v.get("missing", "-")),
        str(v.get("duplicates", "-")),
        f"{v.get('receipts_expected', 0):,}",
        f"{v.get('receipts_received', 0):,}",
        "OK" if not problems else "FAIL: " + "; ".join(problems),
        "; ".join(n for n in notes if n),
    ])
print("| fault | acked segments | in outcomes | missing | duplicates | receipts expected | received | verdict | notes |")
print("|---|---:|---:|---:|---:|---:|---:|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print("all faults OK" if not failed else "FAILED: " + ", ".join(failed))
sys.exit(1 if failed else 0)
PY
