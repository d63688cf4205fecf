#!/usr/bin/env bash
# Redis server CPU per call: the same small state change as EVALSHA of a script and
# as FCALL of a library function (INFO commandstats usec_per_call).
set -euo pipefail
srv=$1; port=$2
$srv --port $port --save '' --appendonly no --daemonize yes --logfile /tmp/fnb-$port.log
sleep 0.5
cli="redis-cli -p $port"
body="local now = redis.call('TIME'); redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZADD', KEYS[2], now[1], ARGV[1]); return 1"
sha=$($cli SCRIPT LOAD "$body")
$cli FUNCTION LOAD "#!lua name=b
redis.register_function('f', function(KEYS, ARGV) $body end)" >/dev/null
for round in 1 2; do
  $cli CONFIG RESETSTAT >/dev/null
  redis-benchmark -p $port -n 200000 -c 8 -P 16 -q EVALSHA $sha 2 h{t} z{t} __rand_int__ v >/dev/null
  redis-benchmark -p $port -n 200000 -c 8 -P 16 -q FCALL f 2 h{t} z{t} __rand_int__ v >/dev/null
  $cli INFO commandstats | grep -E "cmdstat_(evalsha|fcall):" | sed "s/^/round $round: /"
done
$cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
