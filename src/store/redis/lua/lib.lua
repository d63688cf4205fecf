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
-- Arms the expiry timer of a group's deadline, separate from the group's data (which
-- stays readable when the expiry event fires). Where the server has hash-field
-- expiration: a field of the ONE hash P:timers — the server samples keys with
-- volatile fields (late with many keys) but expires the fields of one key in deadline
-- order (by time buckets of at most 8192 ms). Else a key P:t:#<b> with PXAT.
-- Announced on P:armed ("<deadline_ms> <gk>") so every node's local timer heap
-- watches it, whichever node stored it (a node's heap is loaded from P:deadlines only
-- when it (re)subscribes).
local function arm(gk, dl, hfe)
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
  if string.byte(gk, 1) ~= 64 then
    redis.call('SPUBLISH', P .. 'armed', string.format('%d', dl) .. ' ' .. gk)
  end
end
-- Deletes the timers of the buckets of deadlines `dls` (numbers or false) that no
-- pending group has any more (run after the groups left P:deadlines), so that nothing
-- of a message that finished early stays behind. Expired groups' buckets are due and
-- left alone (see finish_flush).
local function drop_empty_buckets(dls, hfe)
  local seen = {}
  for _, dl in ipairs(dls) do
    if dl then
      local b = bucket_of(tonumber(dl))
      if not seen[b] then
        seen[b] = true
        if redis.call('ZCOUNT', P .. 'deadlines', '(' .. string.format('%d', b - BUCKET), b) == 0 then
          if hfe ~= '0' then redis.call('HDEL', P .. 'timers', bucket_name(b)) end
          if hfe ~= '1' then redis.call('DEL', P .. 't:' .. bucket_name(b)) end
        end
      end
    end
  end
end
-- A pending group leaves the pending area for the outbox: renamed to d:<gid> (its
-- data intact); its deadline index entry, timer and queue entries are collected in
-- `fin` and written by finish_flush, once per script for all the groups it finished.
-- `reopened`: group keys finished and then opened again by a later record of the same
-- SUBMIT (a resent segment of a message that just completed starts a new one): their
-- deadline entry and timer are the new group's, so finish_flush leaves them.
local function new_fin() return {gks = {}, ob = {}, fr = {}, dl = {}, finished = {}, reopened = {}} end
-- `route`: nil (the store keeps the message: to the outbox) or, for a message its
-- route forwards to an account, `{to, n, until, partial}`: it is 'routed' — waiting
-- for its n segments' deliveries (`o` counts those not ended), in P:fresh only (the
-- releaser queues its deliveries to account `to`), and its delivery deadline `until`
-- is a deadline index entry '@<gid>' (the claim-due pass ends what is left then).
-- `partial`: the deadline passed first; its received segments go out standalone.
-- `sched`: a complete message whose schedule_delivery_time is later (ms): it is
-- `sched` — in neither the outbox nor P:fresh — until its deadline-index entry
-- '^<gid>' falls due (`claim_due.lua` then completes or routes it).
local function finish_group(gk, gid, state, now, fin, route, sched)
  local g = P .. 'g:' .. gk
  -- No gk field: d:<gid> does not say it in its name, but every segment record does
  -- (model::FinishedGroup::from_fields and lookup take it from there).
  if sched then
    redis.call('HSET', g, 'state', 'sched', 'fin', now, 'node', NODE)
    redis.call('RENAME', g, P .. 'd:' .. gid)
    fin.finished[gk] = true
    fin.reopened[gk] = nil
    fin.gks[#fin.gks + 1] = gk
    fin.dl[#fin.dl + 1] = sched
    fin.dl[#fin.dl + 1] = '^' .. gid
    return
  end
  if route then
    redis.call('HSET', g, 'state', 'routed', 'fin', now, 'node', NODE, 'o', route.n,
      'pe', route.partial and '1' or '0')
  else
    redis.call('HSET', g, 'state', state, 'fin', now, 'node', NODE)
  end
  redis.call('RENAME', g, P .. 'd:' .. gid)
  fin.finished[gk] = true
  fin.reopened[gk] = nil
  fin.gks[#fin.gks + 1] = gk
  if route then
    fin.fr[#fin.fr + 1] = now
    fin.fr[#fin.fr + 1] = gid
    fin.dl[#fin.dl + 1] = route['until']
    fin.dl[#fin.dl + 1] = '@' .. gid
  else
    fin.ob[#fin.ob + 1] = now
    fin.ob[#fin.ob + 1] = gid
  end
end
-- hfe: '1' (timers are fields of P:timers), '0' (keys P:t:...) or nil (not known
-- to the script: both). `early`: the groups finished before their deadlines
-- (completed, cancelled). Then "- <gk>" is announced on P:armed so that every node's
-- timer set drops them, and the timers of their buckets go if no other pending group
-- is in them (`drop_empty_buckets`).
-- For expired groups (not early) the bucket timers are due already and left for
-- Redis to delete when its expiry finds them (a DEL of a due key is an expiry itself
-- — deletion, an `expired` event, propagation — inside the claim that holds Redis:
-- 300k partials, claim-due 4.5 -> 3.4 ms per call without it, SLOWLOG 2026-12-03);
-- the local entries fire once more, find nothing and are dropped.
local function finish_flush(fin, hfe, early)
  local gks = {}
  for _, gk in ipairs(fin.gks) do
    if not fin.reopened[gk] then gks[#gks + 1] = gk end
  end
  bulk('ZADD', P .. 'outbox', fin.ob)
  bulk('ZADD', P .. 'fresh', fin.ob)
  bulk('ZADD', P .. 'fresh', fin.fr)
  if #fin.dl > 0 then
    bulk('ZADD', P .. 'deadlines', fin.dl)
    for i = 1, #fin.dl, 2 do arm(fin.dl[i + 1], fin.dl[i], hfe) end
  end
  if #gks == 0 then return end
  local dls = nil
  if early then
    dls = {}
    for i = 1, #gks, 1024 do
      local j = math.min(i + 1023, #gks)
      local sc = redis.call('ZMSCORE', P .. 'deadlines', unpack(gks, i, j))
      for k = 1, j - i + 1 do dls[i + k - 1] = sc[k] end
    end
  end
  bulk('ZREM', P .. 'deadlines', gks)
  if early then
    drop_empty_buckets(dls, hfe)
    for _, gk in ipairs(gks) do redis.call('SPUBLISH', P .. 'armed', '- ' .. gk) end
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
-- from its `i:<seq>` fields, or `{'1', gid}` for a single-part message.
local function segments_of(d, gid)
  local out = {}
  local all = redis.call('HGETALL', d)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'i:' then out[#out + 1] = {string.sub(all[i], 3), all[i + 1]} end
  end
  if #out == 0 then out[1] = {'1', gid} end
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
-- HGETALL of a finished group hash, plus `m:<seq>` = the segment record from
-- P:m:<id> for each `i:<seq>` field (a multi-part message; a single-part one holds
-- its record in its own `m:1` field and has no `i:` field).
local function group_fields(d)
  local f = redis.call('HGETALL', d)
  -- One pass over the field names by their first two octets (string.byte makes no
  -- string, string.sub does: two per field per pass made this a third of the lease).
  local n = #f
  for i = 1, n, 2 do
    local c1, c2 = string.byte(f[i], 1, 2)
    if c1 == 105 and c2 == 58 then -- 'i:'
      local r = redis.call('GET', P .. 'm:' .. f[i + 1])
      if r then
        f[#f + 1] = 'm:' .. string.sub(f[i], 3)
        f[#f + 1] = r
      end
    end
  end
  return f
end
-- Finds the pending group of message_id ARGV[3] if it belongs to account ARGV[4] and
-- (when ARGV[5] is not empty) source ARGV[5]. Returns `{gid, gk}`, `{'final', gid}`
-- (finished, not yet in MongoDB), or `{}`.
-- The P:m:<mid> value: `<gid> <len of gk> <gk>` LF segment record
-- (model::SegmentKey), where gid `=` means mid itself. Returns gid, gk and where the
-- record's header starts.
local function split_m(v, mid)
  local sp = string.find(v, ' ', 1, true)
  local gid = string.sub(v, 1, sp - 1)
  if gid == '=' then gid = mid end
  local sp2 = string.find(v, ' ', sp + 1, true)
  local e = sp2 + tonumber(string.sub(v, sp + 1, sp2 - 1))
  return gid, string.sub(v, sp2 + 1, e), e + 2
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
local function lookup(mid, acct, src)
  local v = redis.call('GET', P .. 'm:' .. mid)
  local gid, gk
  if v then
    gid, gk = split_m(v, mid)
  elseif redis.call('EXISTS', P .. 'd:' .. mid) == 1 then
    -- A single-part message has no m: key; it is d:<its message_id> until finalized.
    gid, gk = mid, '1|' .. mid
  else
    return nil
  end
  local g = P .. 'g:' .. gk
  local h = g
  if redis.call('HGET', g, 'gid') ~= gid then h = P .. 'd:' .. gid end
  -- The group key names the owner (a single-part message's own gk field: the gk
  -- above is only a name for it).
  local o = redis.call('HMGET', h, 'gid', 'gk')
  if not o[1] then return nil end
  local a, s = gk_owner(o[2] or gk)
  if a ~= acct then return nil end
  if src ~= '' and s ~= src then return nil end
  return gid, gk, h == g, h
end
