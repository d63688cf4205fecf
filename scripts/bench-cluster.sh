#!/usr/bin/env bash
# What a Redis/Valkey Cluster costs smppd, measured against one server in the same run:
# the same load (BENCH_COUNT single-part messages with receipts, then BENCH_COUNT/3
# three-part ones, as fast as they go) through a release smppd on
#   standalone      one valkey-server
#   cluster         3 primaries (no replicas)
#   cluster-r1      3 primaries + 3 replicas, ack_replicas = 0
#   cluster-ack1    the same with ack_replicas = 1 (WAIT after each submit batch)
# and BENCH_PARTIALS partial messages expiring on the 3-primary cluster.
# Reports CPU-µs per message of the key-value servers (summed over the primaries;
# replicas apart) and of smppd, the rate, and the claim lateness of the partials.
# Results: target/bench-cluster/<UTC timestamp>/ (and .../latest). Takes ~5 minutes.
#
# Knobs: BENCH_COUNT=100000, BENCH_PARTIALS=20000, BENCH_PARTIAL_VALIDITY=20s..40s,
#        BENCH_KV=valkey|redis (default valkey), BENCH_ONLY=standalone,cluster,... .
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
COUNT="${BENCH_COUNT:-100000}"
PARTIALS="${BENCH_PARTIALS:-20000}"
PARTIAL_VALIDITY="${BENCH_PARTIAL_VALIDITY:-20s..40s}"
KV="${BENCH_KV:-valkey}"
die() { echo "bench-cluster: $*" >&2; exit 1; }

[ -x "${SMPPD_VALKEY_SERVER:-}" ] && [ -x "${SMPPD_SECANTUSD:-}" ] || bash scripts/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
# shellcheck source=scripts/bench-config.sh
source scripts/bench-config.sh
case "$KV" in
  valkey) kv_bin="$SMPPD_VALKEY_SERVER" ;;
  redis) kv_bin="$SMPPD_REDIS_SERVER" ;;
  *) die "BENCH_KV must be valkey or redis" ;;
esac
venv_python="$(dirname "$SMPPD_SECANTUSD")/python3"
ulimit -n 65536 2>/dev/null || true
cargo build --release --locked -q -p smppd -p smppd-bench
bench_bin="$root/target/release/smppd-bench"
smppd_bin="$root/target/release/smppd"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$root/target/bench-cluster/$stamp"
mkdir -p "$out"
ln -sfn "$out" "$root/target/bench-cluster/latest"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
free_port() { "$venv_python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A client port whose bus port (+10000) is free too, below the ephemeral range.
node_port() {
  "$venv_python" - <<'PY'
import random, socket
while True:
    p = random.randint(10000, 22767)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
PY
}
wait_port() {
  for _ in $(seq 1 300); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "port $1 did not open"
}

mongo_port="$(free_port)"
mkdir -p "$work/mongo"
"$SMPPD_SECANTUSD" --host 127.0.0.1 --port "$mongo_port" --storage-path "$work/mongo" >"$work/mongo.log" 2>&1 &
mongo_pid=$!; pids+=("$mongo_pid")
wait_port "$mongo_port"

# start_nodes NAME N CLUSTER(yes|no) -> node_ports[], node_pids[]
start_nodes() {
  node_ports=(); node_pids=()
  local i p
  for i in $(seq 1 "$2"); do
    p="$(node_port)"
    mkdir -p "$work/$1-$i"
    local extra=()
    [ "$3" = yes ] && extra=(--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 3000 --repl-diskless-sync-delay 0)
    "$kv_bin" --port "$p" --bind 127.0.0.1 --dir "$work/$1-$i" --appendonly yes --appendfsync everysec \
      --save "" "${extra[@]}" >"$work/$1-$i.log" 2>&1 &
    node_pids+=("$!"); pids+=("$!"); node_ports+=("$p")
    wait_port "$p"
  done
}
# make_cluster REPLICAS: joins node_ports, waits for every slot and replica link.
make_cluster() {
  local addrs=() p
  for p in "${node_ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$1" --cluster-yes >/dev/null
  for _ in $(seq 1 300); do
    local ok=1
    for p in "${node_ports[@]}"; do
      redis-cli -p "$p" cluster info | grep -q cluster_state:ok || ok=0
      local r; r="$(redis-cli -p "$p" info replication)"
      if grep -q role:slave <<<"$r"; then grep -q master_link_status:up <<<"$r" || ok=0; fi
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  die "the cluster did not become ready"
}
# watch_args: --watch for each node, named p<i> for primaries and r<i> for replicas.
watch_args() {
  watches=()
  local i=0 p
  for p in "${node_ports[@]}"; do
    if redis-cli -p "$p" info replication | grep -q role:slave; then
      watches+=(--watch "r$i=${node_pids[$i]}")
    else
      watches+=(--watch "p$i=${node_pids[$i]}")
    fi
    i=$((i + 1))
  done
}
# start_smppd NAME CLUSTER ACK -> smppd_port, smppd_pid, smppd_metrics
start_smppd() {
  smppd_port="$(free_port)"; smppd_metrics="$(free_port)"
  local cfg="$work/smppd-$1.toml"
  bench_config "$cfg" bench "$smppd_port" "${node_ports[0]}" "$smppd_metrics" "mongodb://127.0.0.1:$mongo_port" "$1"
  sed -i "s/^\[redis\]/[redis]\ncluster = $2\nack_replicas = $3/" "$cfg"
  RUST_LOG=warn "$smppd_bin" serve --config "$cfg" >"$work/smppd-$1.log" 2>&1 &
  smppd_pid=$!; pids+=("$smppd_pid")
  wait_port "$smppd_port"
}
stop_all() {
  kill "$smppd_pid" "${node_pids[@]}" 2>/dev/null || true
  wait "$smppd_pid" "${node_pids[@]}" 2>/dev/null || true
}
# run NAME [bench args...]
run() {
  local name="$1"; shift
  echo "== $name"
  "$bench_bin" run --addr "127.0.0.1:$smppd_port" --system-id bench --password bench --label "$name" \
    --json "$out/$name.json" --watch "smppd=$smppd_pid" "${watches[@]}" --trx 4 --window 64 \
    --registered-delivery 1 --receipt-wait 180s "$@" | tee "$out/$name.txt"
}
# setup NAME NODES CLUSTER REPLICAS ACK
setup() {
  start_nodes "$1" "$2" "$3"
  [ "$3" = yes ] && make_cluster "$4"
  watch_args
  start_smppd "$1" "$([ "$3" = yes ] && echo true || echo false)" "$5"
  run "$1-single" --count "$COUNT" --mix single --first-dest 4910000000000
  run "$1-udh3" --count "$((COUNT / 3))" --mix udh8x3 --first-dest 4920000000000
}

want standalone && { setup standalone 1 no 0 0; stop_all; }
if want cluster; then
  setup cluster 3 yes 0 0
  run cluster-partial --count "$PARTIALS" --mix udh8x2 --partial 1 --validity "$PARTIAL_VALIDITY" \
    --first-dest 4930000000000
  "$venv_python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$smppd_metrics/metrics" >"$out/cluster-partial.metrics"
  stop_all
fi
want cluster-r1 && { setup cluster-r1 6 yes 1 0; stop_all; }
want cluster-ack1 && { setup cluster-ack1 6 yes 1 1; stop_all; }

"$venv_python" - "$out" <<'PY' | tee "$out/summary.md"
import json, os, sys
out = sys.argv[1]
def load(n):
    p = os.path.join(out, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def cpu(r, prefix):
    return sum(p["cpu_seconds"] for p in r["processes"] if p["name"].startswith(prefix))
print("| run | msg/s | segments/s | primaries CPU-µs/msg | replicas CPU-µs/msg | smppd CPU-µs/msg | p99 submit ms |")
print("|---|---|---|---|---|---|---|")
base = {}
for setup in ("standalone", "cluster", "cluster-r1", "cluster-ack1"):
    for kind in ("single", "udh3"):
        r = load(f"{setup}-{kind}")
        if not r:
            continue
        msgs = r["messages_sent"]
        kv = cpu(r, "p") * 1e6 / msgs
        rep = cpu(r, "r") * 1e6 / msgs
        sm = cpu(r, "smppd") * 1e6 / msgs
        base.setdefault(kind, kv)
        ratio = kv / base[kind] if base[kind] else 0
        print(f"| {setup} {kind} | {r['messages_per_s']:,.0f} | {r['submit_per_s']:,.0f} | {kv:.1f} ({ratio:.2f} x standalone) | {rep:.1f} | {sm:.1f} | {r['submit_latency']['p99_ms']:.1f} |")
p = os.path.join(out, "cluster-partial.metrics")
if os.path.exists(p):
    b = []
    for line in open(p):
        if line.startswith("smppd_expiry_lateness_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            b.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    b.sort()
    if b and b[-1][1]:
        t = b[-1][1]
        q = lambda f: next(le for le, n in b if n >= f * t)
        print(f"\npartials on the 3-primary cluster: {int(t)} claimed, claim lateness p50 <= {q(0.5)*1000:g} ms, p99 <= {q(0.99)*1000:g} ms")
PY
echo "bench-cluster: results in $out"
