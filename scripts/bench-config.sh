# Sourced by scripts/bench.sh and scripts/ab.sh (not run): the smppd configuration
# both benchmark with — the `bench` account, generous limits, metrics on — so that an
# A/B run measures what bench.sh measures.
#
# bench_config FILE NODE_ID PORT KV_PORT METRICS_PORT MONGO_URI [DATABASE]
# BENCH_THROUGHPUT=N gives the bench account `throughput = burst = N` (the shared rate
# bucket in Redis; scripts/ab.sh AB_B_THROUGHPUT measures what it costs).
# BENCH_ROUTES=0 leaves out bench2 and its route (a binary from before routes).
bench_config() {
  local cfg="$1" node="$2" port="$3" kv_port="$4" metrics_port="$5" m_uri="$6" m_db="${7:-smppd}"
  # The limits as large as the store's (one account carries the whole load); left out
  # with BENCH_LIMITS=0, for a binary from before they existed (scripts/ab.sh).
  local limits="" store_limits="" server_limits="" routes=""
  if [ "${BENCH_LIMITS:-1}" = 1 ] && [ "${BENCH_ROUTES:-1}" = 1 ]; then
    # The A->B scenarios: destinations 9... are forwarded to the account bench2.
    routes=$'[[esme]]\nsystem_id = "bench2"\npassword = "bench2"\nallowed_addresses = ["127.0.0.0/8"]\nmax_binds = 30000\nwindow = 1024\nmax_queued_receipts = 100000000\n\n[[route]]\ndestination = "^9"\ntarget = "esme:bench2"\n'
  fi
  if [ "${BENCH_LIMITS:-1}" = 1 ]; then
    # All load comes from 127.0.0.1.
    server_limits="max_connections_per_ip = 30000"
    limits=$'max_pending = 100000000\nmax_pending_bytes = 4503599627370496\nmax_queued_receipts = 100000000'
    store_limits="max_pending_bytes = 4503599627370496"
  fi
  cat >"$cfg" <<EOF
[server]
system_id = "smppd"
node_id = "$node"
listen = "127.0.0.1:$port"
max_connections = 30000
$server_limits
bind_timeout = "30s"
enquire_link_interval = "60s"
response_timeout = "30s"
outbound_window = 256
log_format = "human"

[server.bind_failures]
delay = "0"

[redis]
url = "redis://127.0.0.1:$kv_port"
$store_limits
key_prefix = "bench:"

[metrics]
listen = "127.0.0.1:$metrics_port"

[mongodb]
uri = "$m_uri"
database = "$m_db"

[[esme]]
system_id = "bench"
password = "bench"
allowed_addresses = ["127.0.0.0/8"]
max_binds = 30000
window = 1024
default_validity = "48h"
max_validity = "7days"
$limits
${BENCH_THROUGHPUT:+throughput = $BENCH_THROUGHPUT
burst = $BENCH_THROUGHPUT}

$routes
EOF
  chmod 600 "$cfg"
}
