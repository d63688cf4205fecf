#!/usr/bin/env bash
# Reproducible benchmark of smppd (issue 5), with smpp34's ack-only perf_smsc as the
# reference in the same run. Starts its own Redis 7.0 and Valkey 9 (AOF on, appendfsync
# everysec), the Mongo-protocol server and a release smppd, all on free ports under a
# temp dir, and stops them on exit. Prints one table and saves it (markdown + JSON) to
# target/bench/<UTC timestamp>/ (and target/bench/latest).
#
# Default scale finishes in a few minutes on 2 cores. Knobs (env):
#   BENCH_DURATION=10s        length of each as-fast-as-possible run (after BENCH_WARMUP=2s)
#   BENCH_SESSIONS=4          transceiver sessions per run; BENCH_WINDOW=64 per session
#   BENCH_MIXED_RATE=5000     offered submit_sm/s of the mixed run; BENCH_MIXED_DURATION=10s
#   BENCH_MIXED_MIX=single=70,udh8x3=10,udh16x2=10,sarx3=10
#   BENCH_PARTIALS=20000      pending partial messages per key-value server (full: 1000000)
#   BENCH_PARTIAL_VALIDITY=15s..35s   their deadlines (full: 60s..120s = spread over 60 s,
#                             after ~50 s of submitting)
#   BENCH_OUTCOMES=20000      backlog of finished messages for the outcome-writer run
#   BENCH_IDLE_BINDS=2000     idle binds for the RSS-per-session run (full: 10000)
#   BENCH_SKIP_VALKEY=1       only Redis 7.0
#   BENCH_ONLY=ab,single      only these runs (ref, single, udh3, ab, mixed, partial,
#                             writer, idle, nomongo, valkey); default all
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
SESSIONS="${BENCH_SESSIONS:-4}"
WINDOW="${BENCH_WINDOW:-64}"
MIXED_RATE="${BENCH_MIXED_RATE:-5000}"
MIXED_DURATION="${BENCH_MIXED_DURATION:-10s}"
MIXED_MIX="${BENCH_MIXED_MIX:-single=70,udh8x3=10,udh16x2=10,sarx3=10}"
PARTIALS="${BENCH_PARTIALS:-20000}"
PARTIAL_VALIDITY="${BENCH_PARTIAL_VALIDITY:-15s..35s}"
OUTCOMES="${BENCH_OUTCOMES:-20000}"
IDLE_BINDS="${BENCH_IDLE_BINDS:-2000}"

die() { echo "bench: $*" >&2; exit 1; }

# --- server binaries -------------------------------------------------------------
if ! { [ -x "${SMPPD_REDIS_SERVER:-}" ] && [ -x "${SMPPD_VALKEY_SERVER:-}" ] && [ -x "${SMPPD_SECANTUSD:-}" ]; }; then
  bash scripts/deps.sh
fi
# shellcheck source=scripts/env.sh
source scripts/env.sh
# shellcheck source=scripts/bench-config.sh
source scripts/bench-config.sh
for v in SMPPD_REDIS_SERVER SMPPD_VALKEY_SERVER SMPPD_SECANTUSD; do
  [ -x "${!v:-}" ] || die "$v=${!v:-} is not an executable; run scripts/deps.sh"
done
venv_python="$(dirname "$SMPPD_SECANTUSD")/python3"
[ -x "$venv_python" ] || die "no python3 next to $SMPPD_SECANTUSD (needed for pymongo)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- builds ----------------------------------------------------------------------
echo "bench: building release smppd and smppd-bench"
cargo build --release --locked -q -p smppd -p smppd-bench
bench_bin="$root/target/release/smppd-bench"
smppd_bin="$root/target/release/smppd"

# smpp34's perf_smsc example, built from the crate source in the cargo registry as a
# tiny throw-away crate under target/ (smpp34's code is never committed here).
perf_dir="$root/target/bench/perf-smsc"
example="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/smpp34-1.5.1/examples/perf_smsc.rs 2>/dev/null | head -n1 || true)"
if [ -z "$example" ]; then
  cargo fetch --locked -q
  example="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/smpp34-1.5.1/examples/perf_smsc.rs 2>/dev/null | head -n1 || true)"
fi
[ -n "$example" ] || die "smpp34-1.5.1/examples/perf_smsc.rs not found in the cargo registry"
mkdir -p "$perf_dir/src"
cat >"$perf_dir/Cargo.toml" <<'EOF'
[package]
name = "perf-smsc"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
smpp34 = "=1.5.1"
tokio = { version = "1", features = ["full"] }
async-trait = "0.1"

[profile.release]
codegen-units = 4

[workspace]
EOF
cp "$example" "$perf_dir/src/main.rs"
[ -f "$perf_dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$perf_dir/Cargo.lock"
echo "bench: building smpp34 perf_smsc"
(cd "$perf_dir" && cargo build --release -q) || die "building perf_smsc failed"
perf_bin="$perf_dir/target/release/perf-smsc"

# --- run directory, servers, cleanup -----------------------------------------------
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$root/target/bench/$stamp"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/smppd-bench.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$venv_python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# outbox_size KV_PORT: finished messages in smppd's outboxes (one per partition,
# bench:{tag}:outbox), summed.
outbox_size() {
  local n=0 k
  for k in $(redis-cli -p "$1" --scan --pattern 'bench:{*}:outbox'); do
    n=$((n + $(redis-cli -p "$1" zcard "$k")))
  done
  echo "$n"
}
# wait_outbox_empty KV_PORT WHY: until smppd wrote every finished message of the
# earlier runs to MongoDB (this box's Mongo-protocol server is slower than smppd).
wait_outbox_empty() {
  local t0=$SECONDS
  until [ "$(outbox_size "$1")" = 0 ]; do
    [ $((SECONDS - t0)) -lt 900 ] || die "the outbox of the earlier runs did not drain within 900 s"
    sleep 1
  done
  echo "(the earlier runs' outbox drained in $((SECONDS - t0)) s: $2)"
}
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT PID NAME LOG
wait_port() {
  local i
  for i in $(seq 1 300); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; die "$3 exited at start (log: $4)"; }
    sleep 0.1
  done
  tail -n 20 "$4" >&2
  die "$3 did not open port $1 within 30 s (log: $4)"
}

# start_kv NAME BINARY -> sets kv_port, kv_pid
start_kv() {
  local name="$1" bin="$2"
  kv_port="$(free_port)"
  mkdir -p "$work/$name"
  "$bin" --port "$kv_port" --bind 127.0.0.1 --dir "$work/$name" \
    --appendonly yes --appendfsync everysec --save "" \
    --notify-keyspace-events "Exh" >"$work/$name.log" 2>&1 &
  kv_pid=$!
  pids+=("$kv_pid")
  wait_port "$kv_port" "$kv_pid" "$name" "$work/$name.log"
}

mongo_port="$(free_port)"
mkdir -p "$work/mongo"
"$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$mongo_port" --storage-path "$work/mongo" \
  >"$work/mongo.log" 2>&1 &
mongo_pid=$!
pids+=("$mongo_pid")
wait_port "$mongo_port" "$mongo_pid" "Mongo-protocol server" "$work/mongo.log"
mongo_uri="mongodb://127.0.0.1:$mongo_port"

# start_smppd KV_PORT NAME [MONGO_URI [DATABASE]] -> sets smppd_port, smppd_pid
start_smppd() {
  smppd_port="$(free_port)"
  smppd_metrics="$(free_port)"
  local cfg="$work/smppd-$2.toml" m_uri="${3:-$mongo_uri}" m_db="${4:-smppd}"
  bench_config "$cfg" bench "$smppd_port" "$1" "$smppd_metrics" "$m_uri" "$m_db"
  SMPPD_REDIS_URL="redis://127.0.0.1:$1" SMPPD_MONGODB_URI="$m_uri" RUST_LOG="${BENCH_SMPPD_LOG:-warn}" \
    "$smppd_bin" serve --config "$cfg" >"$work/smppd-$2.log" 2>&1 &
  smppd_pid=$!
  pids+=("$smppd_pid")
  wait_port "$smppd_port" "$smppd_pid" "smppd ($2)" "$work/smppd-$2.log"
}

# scrape_metrics NAME: smppd's /metrics after a run, to $out/NAME.metrics (the claim
# lateness histogram splits expiry lateness into claim and receipt delivery).
scrape_metrics() {
  "$venv_python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$smppd_metrics/metrics" >"$out/$1.metrics" || echo "bench: could not scrape /metrics of $1" >&2
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# bench_run NAME KV_NAME [smppd-bench run args...]
bench_run() {
  local name="$1" kv="$2"; shift 2
  echo
  echo "== $name"
  "$bench_bin" run --addr "127.0.0.1:$smppd_port" --system-id bench --password bench \
    --label "$name" --json "$out/$name.json" \
    --watch "smppd=$smppd_pid" --watch "$kv=$kv_pid" --watch "mongo=$mongo_pid" "$@" \
    | tee "$out/$name.txt"
}


echo "bench: results in $out"
{
  echo "date: $stamp"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "mem: $(free -h | awk '/^Mem:/ {print $2}')"
  echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg)"
  echo "redis: $("$SMPPD_REDIS_SERVER" --version)"
  echo "valkey: $("$SMPPD_VALKEY_SERVER" --version)"
} >"$out/machine.txt"

# want NAME: whether BENCH_ONLY (comma-separated) includes this run (empty: all).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

# --- reference: smpp34 perf_smsc, ack only ------------------------------------------
if want ref; then
perf_port="$(free_port)"
SMSC_BIND="127.0.0.1:$perf_port" "$perf_bin" >"$work/perf-smsc.log" 2>&1 &
perf_pid=$!
pids+=("$perf_pid")
wait_port "$perf_port" "$perf_pid" "perf_smsc" "$work/perf-smsc.log"
echo
echo "== ref-smpp34-single"
"$bench_bin" run --addr "127.0.0.1:$perf_port" --system-id perf --password perf \
  --label ref-smpp34-single --json "$out/ref-smpp34-single.json" --watch "perf_smsc=$perf_pid" \
  --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP" \
  --mix single --registered-delivery 0 --no-receipts | tee "$out/ref-smpp34-single.txt"
stop_pid "$perf_pid"
fi

# --- Redis 7.0 ------------------------------------------------------------------------
start_kv redis "$SMPPD_REDIS_SERVER"
redis_port="$kv_port"; redis_pid="$kv_pid"
start_smppd "$redis_port" redis

if want single; then
bench_run single-redis redis --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
  --warmup "$WARMUP" --mix single --registered-delivery 1 --receipt-wait 180s
fi
# Each max run measures its own load: the single-part run leaves ~400k outcomes in the
# outbox, and writing them (lease, read-back, finalize, the Mongo-protocol server's
# inserts) during the 3-part run measured 3-part plus that backlog (23.4k segments/s
# in bench.sh against 25.6-25.8k on fresh servers, 2026-12-06).
if want udh3; then
wait_outbox_empty "$redis_port" "before the 3-part run"
bench_run udh3-redis redis --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
  --warmup "$WARMUP" --mix udh8x3 --registered-delivery 1 --receipt-wait 180s
fi
# A->B: the same loads, forwarded by a route to the account bench2, whose receivers
# (bound first, on the same node) answer OK; receipts say DELIVRD only after that.
if want ab; then
wait_outbox_empty "$redis_port" "before the A->B runs"
bench_run ab-single-redis redis --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
  --warmup "$WARMUP" --mix single --registered-delivery 1 --receipt-wait 180s \
  --forward-rx "$SESSIONS" --forward-to bench2:bench2 --first-dest 9000000000000
wait_outbox_empty "$redis_port" "before the A->B 3-part run"
bench_run ab-udh3-redis redis --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
  --warmup "$WARMUP" --mix udh8x3 --registered-delivery 1 --receipt-wait 180s \
  --forward-rx "$SESSIONS" --forward-to bench2:bench2 --first-dest 9100000000000
wait_outbox_empty "$redis_port" "before the A->B 5k run"
bench_run ab-5k-redis redis --trx "$SESSIONS" --window "$WINDOW" --rate "$MIXED_RATE" \
  --duration "$MIXED_DURATION" --mix single --registered-delivery 1 --receipt-wait 120s \
  --forward-rx "$SESSIONS" --forward-to bench2:bench2 --first-dest 9200000000000
fi
# The mixed run measures the node at the offered rate, not at that rate plus writing the
# max runs' backlog (~300k outcomes, which this box's Mongo-protocol server takes ~2
# minutes for, on the same two cores): it starts once that is in MongoDB.
if want mixed; then
wait_outbox_empty "$redis_port" "before the mixed run"
bench_run mixed-5k-redis redis --trx "$SESSIONS" --window "$WINDOW" --rate "$MIXED_RATE" \
  --duration "$MIXED_DURATION" --mix "$MIXED_MIX" --registered-delivery 1 --receipt-wait 120s
fi
# Memory per pending segment is used_memory after the submits minus before: the
# earlier runs' outbox must be written first, or its frees during the run would be
# subtracted (a run that did not wait measured 711 B on Redis, 224 B on Valkey; 1,117
# and 916 B from a quiet start).
if want partial; then
wait_outbox_empty "$redis_port" "before the partial run"
bench_run partial-redis redis --trx "$SESSIONS" --window "$WINDOW" --count "$PARTIALS" \
  --mix udh8x2 --partial 1 --validity "$PARTIAL_VALIDITY" --registered-delivery 1 \
  --redis-info "127.0.0.1:$redis_port" --receipt-wait 60s
scrape_metrics partial-redis
fi

# Outcome writer, like for like: node A takes OUTCOMES single-part messages while its
# MongoDB URI points at a closed port, so every outcome waits in the Redis outbox; A
# stops and node B (same node_id, so it takes A's leases back at once) starts with the
# real server and an empty database. The rate the documents arrive at is B's writer.
# The reference inserts the same number of outcome-shaped documents, in batches of the
# writer's size (256), one batch in flight as the writer has, into an empty collection
# with the same indexes, on the same server, right after.
if want writer; then
echo
echo "== outcome-writer-redis (backlog of $OUTCOMES in the Redis outbox, then drained into an empty database)"
# The runs above finish messages faster than this box's Mongo-protocol server stores
# them: let the running node write that backlog first, or node B would drain it too,
# into the writer database (a run that did drained 75k documents instead of 20k).
wait_outbox_empty "$redis_port" "before the writer run"
stop_pid "$smppd_pid"
start_smppd "$redis_port" writer-a "mongodb://127.0.0.1:$(free_port)/?serverSelectionTimeoutMS=300" writer
"$bench_bin" run --addr "127.0.0.1:$smppd_port" --system-id bench --password bench \
  --label outcome-backlog --json "$out/outcome-backlog.json" --trx "$SESSIONS" \
  --window "$WINDOW" --count "$OUTCOMES" --mix single --registered-delivery 0 --no-receipts \
  >"$out/outcome-backlog.txt" || die "backlog run failed"
stop_pid "$smppd_pid"
# The reference right before and right after the drain: this Python server's rate
# drifts between runs (1.5k–3k docs/s here), and the writer is held against the mean.
echo "== mongo-insert-before"
"$bench_bin" mongo-insert --uri "$mongo_uri" --database writer --collection insert_ref \
  --docs "$OUTCOMES" --batch 256 --concurrency 1 \
  --label mongo-insert-before --json "$out/mongo-insert-before.json" | tee "$out/mongo-insert-before.txt"
start_smppd "$redis_port" writer-b "$mongo_uri" writer
"$bench_bin" mongo-drain --uri "$mongo_uri" --database writer --base 0 --expect "$OUTCOMES" \
  --redis "127.0.0.1:$redis_port" --prefix bench: \
  --label outcome-writer --json "$out/outcome-writer.json" --timeout 300s | tee "$out/outcome-writer.txt"
echo
echo "== mongo-insert (the Mongo-protocol server's own insert_many rate, same indexes and batch)"
"$bench_bin" mongo-insert --uri "$mongo_uri" --database writer --collection insert_ref \
  --docs "$OUTCOMES" --batch 256 --concurrency 1 \
  --label mongo-insert --json "$out/mongo-insert.json" | tee "$out/mongo-insert.txt"
fi

if want idle; then
echo
echo "== idle-binds ($IDLE_BINDS)"
"$bench_bin" idle --addr "127.0.0.1:$smppd_port" --system-id bench --password bench \
  --sessions "$IDLE_BINDS" --server-pid "$smppd_pid" --hold 3s \
  --label idle-binds --json "$out/idle-binds.json" | tee "$out/idle-binds.txt"
fi
stop_pid "$smppd_pid"

# Context, not a goal: the single-part run again with the Mongo-protocol server left
# out of the race (smppd's MongoDB URI is a closed port, so every outcome waits in the
# Redis outbox and the writer only retries). On this box that server takes ~0.6 of the
# two cores during the max runs above. Without it the outcome writer's lease and
# finalize do not run either, so this is the submit and receipt path alone: an upper
# bound for a node whose MongoDB runs on its own machine, not that node's rate. Last
# on this Redis: its outbox is left full.
if want nomongo; then
start_smppd "$redis_port" nomongo "mongodb://127.0.0.1:$(free_port)/?serverSelectionTimeoutMS=300" nomongo
bench_run single-redis-nomongo redis --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
  --warmup "$WARMUP" --mix single --registered-delivery 1 --receipt-wait 180s
stop_pid "$smppd_pid"
fi
stop_pid "$redis_pid"

# --- Valkey 9 ---------------------------------------------------------------------------
if [ "${BENCH_SKIP_VALKEY:-0}" != "1" ] && want valkey; then
  start_kv valkey "$SMPPD_VALKEY_SERVER"
  valkey_port="$kv_port"; valkey_pid="$kv_pid"
  start_smppd "$valkey_port" valkey
  bench_run single-valkey valkey --trx "$SESSIONS" --window "$WINDOW" --duration "$DURATION" \
    --warmup "$WARMUP" --mix single --registered-delivery 1 --receipt-wait 180s
  wait_outbox_empty "$valkey_port" "before the partial run"
  bench_run partial-valkey valkey --trx "$SESSIONS" --window "$WINDOW" --count "$PARTIALS" \
    --mix udh8x2 --partial 1 --validity "$PARTIAL_VALIDITY" --registered-delivery 1 \
    --redis-info "127.0.0.1:$valkey_port" --receipt-wait 60s
  scrape_metrics partial-valkey
  stop_pid "$smppd_pid"
  stop_pid "$valkey_pid"
fi

# --- the table ----------------------------------------------------------------------------
"$venv_python" - "$out" <<'PY' | tee "$out/summary.md"
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def proc(r, name):
    for p in (r or {}).get("processes", []):
        if p["name"] == name:
            return p["cores"]
    return None
def cpu(r):
    if not r:
        return ""
    return ", ".join(f'{p["name"]} {p["cores"]:.2f}' for p in r.get("processes", []))
rows, summary = [], {}
def row(scenario, figure, goal, verdict, cpu_note=""):
    rows.append((scenario, figure, goal, verdict, cpu_note))
    summary[scenario] = {"figure": figure, "goal": goal, "verdict": verdict, "cpu_cores": cpu_note}
def met(ok):
    return "met" if ok else "MISSED"
def claim_lateness(name):
    """Upper bucket bounds of p50/p99 of smppd_expiry_lateness_seconds (claim time minus
    deadline, Redis time) from a /metrics scrape."""
    p = os.path.join(out, name + ".metrics")
    if not os.path.exists(p):
        return None
    buckets = []
    for line in open(p):
        if line.startswith("smppd_expiry_lateness_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    def q(f):
        return next(le for le, n in buckets if n >= f * total)
    ms = lambda s: "inf" if s == float("inf") else f"{s * 1000:g}"
    return f"claim (smppd histogram) p50 <= {ms(q(0.5))} / p99 <= {ms(q(0.99))} ms"
ref = load("ref-smpp34-single")
ref_rate = ref["submit_per_s"] if ref else 0.0
if ref:
    row("smpp34 perf_smsc, single-part, ack only (reference)", f"{ref_rate:,.0f} submit_sm/s, p99 {ref['submit_latency']['p99_ms']:.2f} ms", "-", "-", cpu(ref))
for kv in ("redis", "valkey"):
    r = load(f"single-{kv}")
    if not r:
        continue
    rate = r["submit_per_s"]
    ratio = rate / ref_rate if ref_rate else 0.0
    rc = r.get("receipts") or {}
    row(f"single-part, receipts on, max ({kv})",
        f"{rate:,.0f} submit_sm/s = {ratio:.2f} x smpp34; p99 {r['submit_latency']['p99_ms']:.2f} ms; receipts {rc.get('received', 0)}/{rc.get('expected', 0)}; errors {sum(r['errors'].values()) + r['no_response']}",
        ">= 50k/s and >= 0.35 x smpp34",
        f"{met(rate >= 50000 and ratio >= 0.35)} ({rate / 50000:.2f} x 50k, {ratio / 0.35:.2f} x 0.35)", cpu(r))
r = load("single-redis-nomongo")
if r:
    rate = r["submit_per_s"]
    rc = r.get("receipts") or {}
    row("single-part, receipts on, max, no MongoDB: outcomes wait in the outbox, so no outcome writing at all (redis; context, no goal: the submit and receipt path alone)",
        f"{rate:,.0f} submit_sm/s = {rate / ref_rate if ref_rate else 0:.2f} x smpp34; p99 {r['submit_latency']['p99_ms']:.2f} ms; receipts {rc.get('received', 0)}/{rc.get('expected', 0)}",
        "-", f"({rate / 50000:.2f} x 50k)", cpu(r))
r = load("udh3-redis")
if r:
    rate = r["submit_per_s"]
    row("3-part UDH, receipts on, max (redis)", f"{rate:,.0f} segments/s ({r['messages_per_s']:,.0f} msg/s); p99 {r['submit_latency']['p99_ms']:.2f} ms",
        ">= 25k segments/s", f"{met(rate >= 25000)} ({rate / 25000:.2f} x)", cpu(r))
r = load("mixed-5k-redis")
if r:
    p99 = r["submit_latency"]["p99_ms"]
    rl = (r.get("receipts") or {}).get("latency", {})
    rp99 = rl.get("p99_ms", float("inf")) if rl.get("count") else float("inf")
    row("5k submit_sm/s offered, mixed (redis)",
        f"{r['submit_per_s']:,.0f}/s achieved; resp p50 {r['submit_latency']['p50_ms']:.2f} / p99 {p99:.2f} / p99.9 {r['submit_latency']['p999_ms']:.2f} ms; receipt p50 {rl.get('p50_ms', 0):.1f} / p99 {rp99:.1f} / max {rl.get('max_ms', 0):.1f} ms",
        "p99 resp <= 5 ms; p99 receipt <= 50 ms",
        f"resp {met(p99 <= 5)}, receipt {met(rp99 <= 50)}", cpu(r))
for name, what in (("ab-single-redis", "single-part"), ("ab-udh3-redis", "3-part UDH")):
    r = load(name)
    if not r:
        continue
    rc = r.get("receipts") or {}
    fl = rc.get("forward_latency", {})
    rate = r["messages_per_s"]
    goal_ok = rate >= 25000 if what == "single-part" else True
    row(f"A->B {what}, receipts on, max (redis)",
        f"{rate:,.0f} msg/s delivered to B ({rc.get('forwarded', 0):,} deliver_sm); receipts {rc.get('received', 0)}/{rc.get('expected', 0)}; submit -> B p99 {fl.get('p99_ms', 0):.1f} ms",
        ">= 25k msg/s" if what == "single-part" else "-",
        f"{met(goal_ok)} ({rate / 25000:.2f} x)" if what == "single-part" else "-", cpu(r))
r = load("ab-5k-redis")
if r:
    rc = r.get("receipts") or {}
    fl, rl = rc.get("forward_latency", {}), rc.get("latency", {})
    fp99 = fl.get("p99_ms", float("inf")) if fl.get("count") else float("inf")
    rp99 = rl.get("p99_ms", float("inf")) if rl.get("count") else float("inf")
    row("A->B 5k msg/s offered, single-part (redis)",
        f"{r['submit_per_s']:,.0f}/s; submit -> B p50 {fl.get('p50_ms', 0):.1f} / p99 {fp99:.1f} ms; receipt p50 {rl.get('p50_ms', 0):.1f} / p99 {rp99:.1f} ms",
        "p99 to B <= 10 ms; p99 receipt <= 20 ms", f"B {met(fp99 <= 10)}, receipt {met(rp99 <= 20)}", cpu(r))
for kv in ("redis", "valkey"):
    r = load(f"partial-{kv}")
    if not r:
        continue
    rc = r.get("receipts") or {}
    el = rc.get("expiry_lateness", {})
    p99 = el.get("p99_ms", float("inf")) if el.get("count") else float("inf")
    row(f"{r['segments_ok']:,} pending partials, deadlines {os.environ.get('BENCH_PARTIAL_VALIDITY', '15s..35s')} ({kv})",
        f"expiry lateness at the receipt p50 {el.get('p50_ms', 0):.1f} / p99 {p99:.1f} / max {el.get('max_ms', 0):.1f} ms; {claim_lateness(f'partial-{kv}') or 'claim: no scrape'}; receipts {rc.get('received', 0)}/{rc.get('expected', 0)}, early {rc.get('expired_early', 0)}",
        "p99 <= 100 ms", f"{met(p99 <= 100)}", cpu(r))
    m = r.get("redis")
    if m:
        limit = m["payload_octets"] + 250
        row(f"memory per pending segment ({kv})", f"{m['bytes_per_segment']:.0f} B (payload {m['payload_octets']} B, {m['segments']:,} segments)",
            "<= payload + 250 B", f"{met(m['bytes_per_segment'] <= limit)} ({m['bytes_per_segment'] / limit:.2f} x limit)")
w, i, b = load("outcome-writer"), load("mongo-insert"), load("mongo-insert-before")
if w and i:
    refs = [r["docs_per_s"] for r in (b, i) if r]
    ref = sum(refs) / len(refs)
    ratio = w["docs_per_s"] / ref if ref else 0
    row("outcome writer drain vs Mongo-protocol insert_many", f"{w['docs_per_s']:,.0f} outcomes/s vs {ref:,.0f} docs/s (mean of {' and '.join(f'{x:,.0f}' for x in refs)}, before and after) = {ratio:.2f} x",
        ">= 0.9 x", f"{met(ratio >= 0.9)}")
r = load("idle-binds")
if r:
    kib = r["server_rss_per_session_kib"]
    row(f"{r['sessions_bound']:,} idle binds", f"{kib:.1f} KiB RSS per session ({r['server_rss_before_kib']} -> {r['server_rss_bound_kib']} KiB; {r['bind_failures']} failed)",
        "<= 32 KiB", f"{met(kib <= 32 and r['bind_failures'] == 0)}")
print("| scenario | measured | goal | verdict | CPU cores used (smppd, kv, mongo, bench) |")
print("|---|---|---|---|---|")
for s in rows:
    print("| " + " | ".join(s) + " |")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
PY
ln -sfn "$stamp" "$root/target/bench/latest"
echo
echo "bench: saved $out/summary.md and $out/summary.json"
