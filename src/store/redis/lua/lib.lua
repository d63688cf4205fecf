-- Shared Lua helpers, prepended to each script. A script runs on one partition:
-- P (ARGV[1]) is its key prefix `<key_prefix>{<tag>}:` and every key below starts
-- with it (one cluster slot); KEYS[1] is P .. 'deadlines', declared for routing.
-- Announcements go on the partition's sharded channels (SPUBLISH): in a cluster
-- they stay on the slot's shard instead of crossing the bus to every node.
local P = ARGV[1]
local NODE = ARGV[2]
-- Scripts that take several partitions in one call (CLAIM_DUE, FINALIZE, RELEASE,
-- RECEIPT_DONE; a standalone server): ARGV[3] = m, ARGV[4..3+m] the partitions' key
-- prefixes (all declared in KEYS), records name theirs by index and P is switched to
-- it (`P = prefixes[k]`) before their keys are built. Returns the prefixes and where
-- the script's own arguments start.
local function parts_header()
  local prefixes, m = {}, tonumber(ARGV[3])
  for k = 1, m do prefixes[k] = ARGV[3 + k] end
  return prefixes, 4 + m
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Appends a field and its value to an HSET argument list.
local function push(t, k, v)
  t[#t + 1] = k
  t[#t + 1] = v
end
-- Runs `cmd [key] t...` over the list t in slices: unpack() takes a few thousand
-- values at most (Lua's C stack). One call per slice instead of one per element:
-- each redis.call costs ~3 µs beyond its command (BENCHMARKS.md), so a batch script
-- updates an index once for all its groups. Slices of 1024 keep pairs together.
local function bulk(cmd, key, t)
  for i = 1, #t, 1024 do
    local j = math.min(i + 1023, #t)
    if key then redis.call(cmd, key, unpack(t, i, j)) else redis.call(cmd, unpack(t, i, j)) end
  end
end
-- The server's expiry timers are per deadline *bucket* of BUCKET ms, not per group:
-- the bucket ending at b (ms, a multiple of BUCKET) holds the deadlines in
-- (b - BUCKET, b] and its timer expires at b, so it fires at or after each of them
-- (at most BUCKET late). Why: the server's timer is the backstop for a deadline no
-- node's local timer set watches (those claim at the deadline itself); a key (or
-- field) per group cost Redis ~160 B per pending message, a SET per new group and an
-- expiry + event + AOF record per deadline, and with a key per group Redis 7.0's
-- sampling finds a lone due key only after ~(keys with a TTL)/(20 x hz) seconds —
-- minutes at 1M pending. A bucket's timer stays when its groups complete early only
-- until `drop_empty_buckets` sees none left. Names: P:t:#<b> (Redis 7.0), field #<b>
-- of P:timers (hash-field expiration).
local BUCKET = 1000
local function bucket_of(dl) return math.ceil(dl / BUCKET) * BUCKET end
local function bucket_name(b) return '#' .. string.format('%d', b) end
-- Buckets this script call armed already (by partition prefix and bucket): a batch
-- arms each once.
local armed_buckets = {}
-- A pending multi-part group is ONE binary string `P:g:<id>` (id: 13 hex digits, a
-- 52-bit number the node derives from the group key, `model::pending::group_ids`; a second
-- choice when the first is held by another group key): its facts, its group key and
-- every received segment, packed with `struct` (6-octet times, length-prefixed
-- strings). Why one value and binary: a pending segment lives for the whole validity
-- (48 h by default); this costs ~360 B per pending segment where a hash per group and
-- a key per segment would cost ~800 B (docs/design/memory-layout.md).
-- Header: B flags (1: at its second-choice id, 2: expiry mode 'w', 4: extras follow,
-- 8: uniq is 20 hex digits packed in 10 octets; the high nibble: the partition),
-- I6 deadline ms, I6 submit ms, uniq (10 octets, or B length + text), B length + gk,
-- [>H length + extras: NUL-separated field, value pairs: st, to, ra, sd, sim, sdl,
-- pp], then per segment: B seq, B flags (1: received at the submit time, 2: rid, 4:
-- own id, 8: uo in two octets), [I6 received], B dc, B esm, B rd, B|>H uo, [B length +
-- rid], [B length + id], >H length + data.
-- 20 hex digits as 10 octets (two 40-bit numbers: exact in a Lua number).
local function hexpack(h)
  return struct.pack('>I5I5', tonumber(string.sub(h, 1, 10), 16), tonumber(string.sub(h, 11, 20), 16))
end
-- The head of a pending value, without its segments: `{dl, sub, part, c2, x,
-- uniq (text), gk, ext, seg_at (where the segments start)}`.
local function pg_head(v)
  local flags, dl, sub, pos = struct.unpack('>BI6I6', v)
  local g = {dl = dl, sub = sub, c2 = bit.band(flags, 1) ~= 0,
    x = bit.band(flags, 2) ~= 0 and 'w' or 'p', part = bit.rshift(flags, 4), ext = {}}
  if bit.band(flags, 8) ~= 0 then
    g.uniq = string.format('%02X%02X%02X%02X%02X%02X%02X%02X%02X%02X', string.byte(v, pos, pos + 9))
    pos = pos + 10
  else
    local n = string.byte(v, pos)
    g.uniq = string.sub(v, pos + 1, pos + n)
    pos = pos + 1 + n
  end
  local n = string.byte(v, pos)
  g.gk = string.sub(v, pos + 1, pos + n)
  pos = pos + 1 + n
  if bit.band(flags, 4) ~= 0 then
    local len = struct.unpack('>H', v, pos)
    local e, q, k = string.sub(v, pos + 2, pos + 1 + len), 1, nil
    pos = pos + 2 + len
    while q <= #e do
      local z = string.find(e, '\0', q, true)
      if k then
        g.ext[k], k = string.sub(e, q, z - 1), nil
      else
        k = string.sub(e, q, z - 1)
      end
      q = z + 1
    end
  end
  g.seg_at = pos
  return g
end
-- Walks the segments of pending value v from `pos` without copying their data:
-- calls `each(seq, own id or nil)` for each, in arrival order.
local function pg_scan(v, pos, each)
  while pos <= #v do
    local seq, sf = string.byte(v, pos, pos + 1)
    pos = pos + 2
    if bit.band(sf, 1) == 0 then pos = pos + 6 end
    pos = pos + 3 + (bit.band(sf, 8) ~= 0 and 2 or 1)
    if bit.band(sf, 2) ~= 0 then pos = pos + 1 + string.byte(v, pos) end
    local id = nil
    if bit.band(sf, 4) ~= 0 then
      local l = string.byte(v, pos)
      id = string.sub(v, pos + 1, pos + l)
      pos = pos + 1 + l
    end
    local hi, lo = string.byte(v, pos, pos + 1)
    pos = pos + 2 + hi * 256 + lo
    each(seq, id)
  end
end
-- How many segments pending value v has from `pos`, and the one of seq `seq` if
-- there is one (`{seq, id}`).
local function pg_count(v, pos, seq)
  local n, found = 0, nil
  pg_scan(v, pos, function(q, id)
    n = n + 1
    if q == seq then found = {seq = q, id = id} end
  end)
  return n, found
end
-- One segment of pending value v at `pos` (where `pg_scan` finds one) whose message's
-- submit time is `sub`: `{seq, recv, dc, esm, rd, uo, rid, id, data}` and where the
-- next starts.
local function pg_seg(v, pos, sub)
  local s = {}
  local sf
  s.seq, sf, pos = struct.unpack('BB', v, pos)
  if bit.band(sf, 1) ~= 0 then
    s.recv = sub
  else
    s.recv, pos = struct.unpack('>I6', v, pos)
  end
  s.dc, s.esm, s.rd, pos = struct.unpack('BBB', v, pos)
  if bit.band(sf, 8) ~= 0 then
    s.uo, pos = struct.unpack('>H', v, pos)
  else
    s.uo, pos = struct.unpack('B', v, pos)
  end
  if bit.band(sf, 2) ~= 0 then
    local l = string.byte(v, pos)
    s.rid = string.sub(v, pos + 1, pos + l)
    pos = pos + 1 + l
  end
  if bit.band(sf, 4) ~= 0 then
    local l = string.byte(v, pos)
    s.id = string.sub(v, pos + 1, pos + l)
    pos = pos + 1 + l
  end
  local l = struct.unpack('>H', v, pos)
  s.data = string.sub(v, pos + 2, pos + 1 + l)
  return s, pos + 2 + l
end
-- The encoded head of a new group g (`pg_head`'s fields).
local function pg_encode_head(g)
  local t = {}
  local hex = #g.uniq == 20 and string.find(g.uniq, '^[0-9A-F]+$') ~= nil
  local e = {}
  for k, v in pairs(g.ext) do
    e[#e + 1] = k
    e[#e + 1] = v
  end
  local flags = g.part * 16 + (g.c2 and 1 or 0) + (g.x == 'w' and 2 or 0) + (#e > 0 and 4 or 0) + (hex and 8 or 0)
  t[1] = struct.pack('>BI6I6', flags, g.dl, g.sub)
  if hex then t[2] = hexpack(g.uniq) else t[2] = string.char(#g.uniq) .. g.uniq end
  if #g.gk > 255 then error('group key over 255 octets') end
  t[3] = string.char(#g.gk) .. g.gk
  if #e > 0 then
    local s = table.concat(e, '\0') .. '\0'
    t[4] = struct.pack('>H', #s) .. s
  end
  return table.concat(t)
end
-- The encoded segment s of a message submitted at `sub`.
local function pg_encode_seg(s, sub)
  local sf = (s.recv == sub and 1 or 0) + (s.rid and 2 or 0) + (s.id and 4 or 0) + (s.uo > 255 and 8 or 0)
  local t = {string.char(s.seq, sf)}
  if s.recv ~= sub then t[#t + 1] = struct.pack('>I6', s.recv) end
  t[#t + 1] = string.char(s.dc, s.esm, s.rd)
  t[#t + 1] = s.uo > 255 and struct.pack('>H', s.uo) or string.char(s.uo)
  if s.rid then t[#t + 1] = string.char(#s.rid) .. s.rid end
  if s.id then t[#t + 1] = string.char(#s.id) .. s.id end
  t[#t + 1] = struct.pack('>H', #s.data)
  t[#t + 1] = s.data
  return table.concat(t)
end
-- Its record tail again (what SUBMIT counted against the octet limits).
local function seg_tail(s)
  return string.format('%d %d %d %d ', s.dc, s.esm, s.rd, s.uo) .. (s.rid or '-') .. '\n' .. s.data
end
-- The gid of a pending group at id `hex`: `<partition, 2 hex><hex, 13><uniq>` (uniq:
-- the id the node gave its first segment, minus a hex id's partition digits).
local function gid_of(g, hex)
  return string.format('%02X', g.part) .. hex .. g.uniq
end
-- A segment's message_id: its own (decimal and short formats, which cannot name
-- their group), else `<gid><seq, 2 hex>`.
local function seg_id(gid, s)
  return s.id or (gid .. string.format('%02X', s.seq))
end
-- The deadline index of pending groups: SETs `P:ix:<b>` of the ids (decimal, so
-- Redis keeps them intsets: 8 octets per group) whose deadline is in the second ending
-- at b, and a ZSET `P:ixb` of those sets (member `<b>`, or `<b>.<k>` once a second
-- holds more than IX_MAX: a bigger set would leave the intset encoding, ~60 B per
-- member; score b), where a ZSET member per group would cost ~160 B.
local IX_MAX = 512 -- Redis' and Valkey's default set-max-intset-entries
local function dec(hex) return string.format('%d', tonumber(hex, 16)) end
-- The sets of second b, by name (`<b>` or `<b>.<k>`).
local function ix_sets(b)
  return redis.call('ZRANGEBYSCORE', P .. 'ixb', b, b)
end
-- Adds id to the list of second b in `by` (second -> ids).
local function by_second(by, b, id)
  local t = by[b]
  if not t then
    t = {}
    by[b] = t
  end
  t[#t + 1] = id
end
-- Adds ids to the index: `adds` maps decimal id -> deadline. Each second's ids go to
-- its newest set while it has room, then to new ones.
local function ix_flush_adds(adds)
  local by = {}
  for id, dl in pairs(adds) do by_second(by, bucket_of(dl), id) end
  for b, ids in pairs(by) do
    local bs = string.format('%d', b)
    local last, k = bs, 0
    for _, name in ipairs(ix_sets(b)) do
      local n = tonumber(string.match(name, '%.(%d+)$')) or 0
      if n >= k then last, k = name, n end
    end
    local room = IX_MAX - redis.call('SCARD', P .. 'ix:' .. last)
    local i = 1
    while i <= #ids do
      if room <= 0 then
        k = k + 1
        last, room = bs .. '.' .. k, IX_MAX
      end
      local j = math.min(i + room - 1, #ids)
      redis.call('SADD', P .. 'ix:' .. last, unpack(ids, i, j))
      redis.call('ZADD', P .. 'ixb', b, last)
      room = room - (j - i + 1)
      i = j + 1
    end
  end
end
-- Takes ids out of the index: `by` maps second b -> its ids. A set left empty leaves
-- `P:ixb`.
local function ix_remove(by)
  for b, ids in pairs(by) do
    for _, name in ipairs(ix_sets(b)) do
      local ix = P .. 'ix:' .. name
      bulk('SREM', ix, ids)
      if redis.call('EXISTS', ix) == 0 then redis.call('ZREM', P .. 'ixb', name) end
    end
  end
end
-- Arms the expiry timer of a deadline, separate from the group's data (which
-- stays readable when the expiry event fires). Where the server has hash-field
-- expiration: a field of the ONE hash P:timers — the server samples keys with
-- volatile fields (late with many keys) but expires the fields of one key in deadline
-- order (by time buckets of at most 8192 ms). Else a key P:t:#<b> with PXAT.
-- Announced on P:armed ("<deadline_ms> <member>": a group's decimal id, or '^<gid>')
-- so every node's local timer set watches it, whichever node stored it (a node's set
-- is loaded from the indexes only when it (re)subscribes).
local function arm(member, dl, hfe)
  local b = bucket_of(dl)
  if not armed_buckets[P .. b] then
    armed_buckets[P .. b] = true
    local name = bucket_name(b)
    if hfe == '1' then
      local t = P .. 'timers'
      if redis.call('HSETNX', t, name, '1') == 1 then
        redis.call('HPEXPIREAT', t, b, 'FIELDS', 1, name)
      end
    else
      redis.call('SET', P .. 't:' .. name, '1', 'PXAT', b, 'NX')
    end
  end
  -- A forwarded message's delivery deadline ('@<gid>') is not announced: most end
  -- within milliseconds, and an announcement each way per message was a fifth of
  -- the forwarding path's Redis time (SLOWLOG, 2026-12-06). Its bucket timer fires
  -- the claim; a node's timer set learns of it only from its recovery pass.
  if string.byte(member, 1) ~= 64 then
    redis.call('SPUBLISH', P .. 'armed', string.format('%d', dl) .. ' ' .. member)
  end
end
-- Whether bucket b holds no deadline any more: no pending group, no '@'/'^' entry.
local function bucket_empty(b)
  return redis.call('ZCOUNT', P .. 'ixb', b, b) == 0 and
    redis.call('ZCOUNT', P .. 'deadlines', '(' .. string.format('%d', b - BUCKET), b) == 0
end
-- Deletes the timers of the buckets of deadlines `dls` (numbers or false) that no
-- pending deadline has any more (run after they left the indexes), so that nothing of
-- a message that finished early stays behind. Expired groups' buckets are due and
-- left alone (see finish_flush).
local function drop_empty_buckets(dls, hfe)
  local seen = {}
  for _, dl in ipairs(dls) do
    if dl then
      local b = bucket_of(tonumber(dl))
      if not seen[b] then
        seen[b] = true
        if bucket_empty(b) then
          if hfe ~= '0' then redis.call('HDEL', P .. 'timers', bucket_name(b)) end
          if hfe ~= '1' then redis.call('DEL', P .. 't:' .. bucket_name(b)) end
        end
      end
    end
  end
end
-- What finish_group collects for finish_flush, once per script for all the groups it
-- finished: index entries to remove (`ix`), ids (`ids`), outbox/fresh/deadline
-- entries, the deadlines of groups never indexed (`unindexed`: opened within the
-- call) and `c2`. `fin.adds` (SUBMIT): the ids this call adds to the index at its
-- end; a group opened and finished within the call leaves it there.
local function new_fin()
  return {ix = {}, ids = {}, ob = {}, fr = {}, dl = {}, unindexed = {}, c2 = 0}
end
-- The fields of d:<gid> for pending group g (head decoded, `v` its value, `n` its
-- segments): the facts the scripts read as fields, and `v` whole, whose segments the
-- readers decode (`model::FinishedGroup::from_fields`, `segments_of`): no field per
-- segment to build.
local function finished_fields(g, gid, v, n)
  local f = {'gid', gid, 'gk', g.gk, 'x', g.x, 'dl', string.format('%d', g.dl),
    'sub', string.format('%d', g.sub), 'n', string.format('%d', n), 'v', v}
  for k, x in pairs(g.ext) do push(f, k, x) end
  return f
end
-- A pending group leaves the pending area: written as the finished hash d:<gid> (its
-- value whole in `v`, beside the facts the scripts read), its value deleted, the rest
-- collected in `fin` (`new_fin`).
-- `pg`: {key, hex (its id), g (its head), v (its value), n (its segments), popped
-- (already out of the index)}. `route`: nil (the store keeps the
-- message: to the outbox) or, for a message its route forwards to an account,
-- `{to, n, until, partial}`: it is 'routed' — waiting for its n segments' deliveries
-- (`o` counts those not ended), in P:fresh only (the releaser queues its deliveries
-- to account `to`), and its delivery deadline `until` is a deadline index entry
-- '@<gid>' (the claim-due pass ends what is left then). `partial`: the deadline
-- passed first; its received segments go out standalone.
-- `sched`: a complete message whose schedule_delivery_time is later (ms): it is
-- `sched` — in neither the outbox nor P:fresh — until its deadline-index entry
-- '^<gid>' falls due (`claim_due.lua` then completes or routes it).
-- Returns the gid and the fields written (a new hash: what `group_fields` would read
-- back, all strings).
local function finish_group(pg, state, now, fin, route, sched)
  local g = pg.g
  local gid = gid_of(g, pg.hex)
  local fin_at = string.format('%d', now)
  local f = finished_fields(g, gid, pg.v, pg.n)
  local id = dec(pg.hex)
  fin.ids[#fin.ids + 1] = id
  if fin.adds and fin.adds[id] then
    -- Opened in this call: never indexed, but its bucket's timer is armed.
    fin.adds[id] = nil
    fin.unindexed[#fin.unindexed + 1] = g.dl
  elseif not pg.popped then
    fin.ix[#fin.ix + 1] = {id, g.dl}
  end
  if g.c2 then fin.c2 = fin.c2 + 1 end
  if sched then
    push(f, 'state', 'sched')
    push(f, 'fin', fin_at)
    push(f, 'node', NODE)
    fin.dl[#fin.dl + 1] = sched
    fin.dl[#fin.dl + 1] = '^' .. gid
  elseif route then
    push(f, 'state', 'routed')
    push(f, 'fin', fin_at)
    push(f, 'node', NODE)
    push(f, 'o', string.format('%d', route.n))
    push(f, 'pe', route.partial and '1' or '0')
    fin.fr[#fin.fr + 1] = now
    fin.fr[#fin.fr + 1] = gid
    fin.dl[#fin.dl + 1] = route['until']
    fin.dl[#fin.dl + 1] = '@' .. gid
  else
    push(f, 'state', state)
    push(f, 'fin', fin_at)
    push(f, 'node', NODE)
    fin.ob[#fin.ob + 1] = now
    fin.ob[#fin.ob + 1] = gid
  end
  redis.call('HSET', P .. 'd:' .. gid, unpack(f))
  redis.call('DEL', pg.key)
  return gid, f
end
-- hfe: '1' (timers are fields of P:timers), '0' (keys P:t:...) or nil (not known
-- to the script: both). `early`: the groups finished before their deadlines
-- (completed, cancelled). Then "- <id>" is announced on P:armed so that every node's
-- timer set drops them, and the timers of their buckets go if no other deadline is
-- in them (`drop_empty_buckets`).
-- For expired groups (not early) the bucket timers are due already and left for
-- Redis to delete when its expiry finds them (a DEL of a due key is an expiry itself
-- — deletion, an `expired` event, propagation — inside the claim that holds Redis:
-- 300k partials, claim-due 4.5 -> 3.4 ms per call without it, SLOWLOG 2026-12-03);
-- the local entries fire once more, find nothing and are dropped.
-- `fin.adds` (SUBMIT): ids this call adds to the index, written first (a group
-- finished and opened again under the same id within the call stays).
local function finish_flush(fin, hfe, early)
  local adds = fin.adds
  bulk('ZADD', P .. 'outbox', fin.ob)
  bulk('ZADD', P .. 'fresh', fin.ob)
  bulk('ZADD', P .. 'fresh', fin.fr)
  if #fin.dl > 0 then
    bulk('ZADD', P .. 'deadlines', fin.dl)
    for i = 1, #fin.dl, 2 do arm(fin.dl[i + 1], fin.dl[i], hfe) end
  end
  if adds then ix_flush_adds(adds) end
  local usage = P .. 'usage'
  if #fin.ids > 0 then
    if redis.call('HINCRBY', usage, 'g', -#fin.ids) <= 0 then redis.call('HDEL', usage, 'g') end
  end
  if fin.c2 > 0 then
    if redis.call('HINCRBY', usage, 'c2', -fin.c2) <= 0 then redis.call('HDEL', usage, 'c2') end
  end
  if early then
    for _, id in ipairs(fin.ids) do
      if not (adds and adds[id]) then redis.call('SPUBLISH', P .. 'armed', '- ' .. id) end
    end
  end
  local by = {}
  for _, r in ipairs(fin.ix) do
    local b = bucket_of(r[2])
    if not (adds and adds[r[1]] and bucket_of(adds[r[1]]) == b) then by_second(by, b, r[1]) end
  end
  ix_remove(by)
  if early then
    local dls = fin.unindexed
    for b in pairs(by) do dls[#dls + 1] = b end
    drop_empty_buckets(dls, hfe)
  end
end
-- Collects the receipts ARGV[first..last] (triples account, receipt id, payload), due
-- at `due`, per account in q; flush_receipts writes each account's at once.
local function queue_receipts(first, last, due, q)
  for i = first, last, 3 do
    local acct = ARGV[i]
    local a = q[acct]
    if not a then
      a = {h = {}, z = {}}
      q[acct] = a
    end
    a.h[#a.h + 1] = ARGV[i + 1]
    a.h[#a.h + 1] = ARGV[i + 2]
    a.z[#a.z + 1] = due
    a.z[#a.z + 1] = ARGV[i + 1]
  end
end
-- Writes the collected receipts, one HSET/ZADD/SADD per account; `tell` announces the
-- account on P:receipts (every node's receipt dispatcher listens).
local function flush_receipts(q, tell)
  for acct, a in pairs(q) do
    bulk('HSET', P .. 'rd:' .. acct, a.h)
    bulk('ZADD', P .. 'r:' .. acct, a.z)
    redis.call('SADD', P .. 'racc', acct)
    if tell then redis.call('SPUBLISH', P .. 'receipts', acct) end
  end
end
-- The segments of finished message hash d (gid its id): `{seq, message_id}` pairs
-- from its packed value `v` (a multi-part message), or `{'1', gid}` for a
-- single-part message.
local function segments_of(d, gid)
  local v = redis.call('HGET', d, 'v')
  if not v then return {{'1', gid}} end
  local out = {}
  pg_scan(v, pg_head(v).seg_at, function(seq, id)
    out[#out + 1] = {string.format('%d', seq), seg_id(gid, {seq = seq, id = id})}
  end)
  return out
end
-- HSET arguments giving every segment of d the same result `r:<seq>` = r.
local function results_for_all(d, gid, r)
  local rs = {}
  for _, s in ipairs(segments_of(d, gid)) do
    rs[#rs + 1] = 'r:' .. s[1]
    rs[#rs + 1] = r
  end
  return rs
end
-- Takes a forwarded message's queued deliveries (its segments' ids) out of account
-- acct's queue, e.g. when its deadline or a cancel ends it.
local function drop_deliveries(acct, d, gid)
  local ids = {}
  for _, s in ipairs(segments_of(d, gid)) do ids[#ids + 1] = s[2] end
  local z = P .. 'r:' .. acct
  bulk('ZREM', z, ids)
  bulk('HDEL', P .. 'rd:' .. acct, ids)
  if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
end
-- The finished message hash d: its facts and its segments (`v` of a multi-part
-- message, `m:1` of a single-part one).
local function group_fields(d)
  return redis.call('HGETALL', d)
end
-- The account and source a group key names: "<len>:<account>|<len>:<source>|..."
-- (model::group_key); no hash repeats them.
local function gk_owner(gk)
  local c = string.find(gk, ':', 1, true)
  if not c then return nil, nil end
  local n = tonumber(string.sub(gk, 1, c - 1))
  if not n then return nil, nil end
  local acct, i = string.sub(gk, c + 1, c + n), c + n + 2
  local c2 = string.find(gk, ':', i, true)
  if not c2 then return acct, nil end
  local n2 = tonumber(string.sub(gk, i, c2 - 1))
  if not n2 then return acct, nil end
  return acct, string.sub(gk, c2 + 1, c2 + n2)
end
-- Whether s is `len` upper-case hex digits: a multi-part segment's hex message_id
-- (`seg_id`: 37) or a single-part one's (22).
local function is_hex(s, len)
  return #s == len and string.find(s, '^[0-9A-F]+$') ~= nil
end
-- Finds the message of message_id `mid` (a segment's, or `#<gid>` for a cancel of
-- several messages) if it belongs to account `acct` and (when `src` is not empty)
-- source `src`. Returns nil, or `{gid, pending = {key, hex, g (its head), v, n (its
-- segments), seq}}` for a pending group (seq nil: the gid itself was asked for), or `{gid, h}` for a finished message
-- (h its hash, pending or not yet in MongoDB). A multi-part segment's hex id names
-- its group (`seg_id`); an id of the decimal or short format is found through its
-- pointer `P:m:<id>` = the hex form; a single-part message is d:<its id>.
local function lookup(mid, acct, src)
  local gid, seq, named = mid, nil, false
  if string.byte(mid, 1) == 35 then -- '#'
    gid, named = string.sub(mid, 2), true
  else
    local sid = nil
    if is_hex(mid, 37) then
      sid = mid
    elseif not is_hex(mid, 22) then
      sid = redis.call('GET', P .. 'm:' .. mid)
    end
    if sid then
      gid, seq, named = string.sub(sid, 1, -3), tonumber(string.sub(sid, -2), 16), true
    end
  end
  if named then
    local hex = string.sub(gid, 3, 15)
    local key = P .. 'g:' .. hex
    local v = redis.call('GET', key)
    if v then
      local g = pg_head(v)
      if g.uniq == string.sub(gid, 16) then
        local a, s = gk_owner(g.gk)
        if a ~= acct or (src ~= '' and s ~= src) then return nil end
        local n, there = pg_count(v, g.seg_at, seq)
        if seq and not there then return nil end
        return {gid = gid, pending = {key = key, hex = hex, g = g, v = v, n = n, seq = seq}}
      end
    end
  end
  local h = P .. 'd:' .. gid
  local o = redis.call('HMGET', h, 'gid', 'gk')
  if not o[1] then return nil end
  local a, s = gk_owner(o[2] or '')
  if a ~= acct then return nil end
  if src ~= '' and s ~= src then return nil end
  return {gid = gid, h = h}
end
