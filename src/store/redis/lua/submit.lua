-- Accepts a batch of segments (group commit: the node sends the submits that arrived
-- while its previous batches were in flight as one call, see `submit/batch.rs`), each
-- exactly as if it were alone, in order. The records may belong to several
-- partitions (all declared in KEYS): each record's keys, indexes, counts and limits
-- are its own partition's (P is switched per record). On a standalone server a batch
-- is one call whatever its partitions; in a cluster each call holds one partition.
--
-- ARGV: 3 max_pending, 4 hfe (1/0), 5 how long a receipt is held (ms), 6
-- max_pending_bytes (both a partition's share), 7 the number k of accounts in the
-- batch, then k quadruples (account, its max pending messages, its max pending
-- octets, its max queued receipts: a partition's shares), then the number m of
-- partitions and their m key prefixes, then records, each `n`, the index of its
-- partition among the m, and its n fields: 1 gk, 2 seq, 3 total, 4
-- message_id, 5 deadline_ms, 6 service_type, 7 the segment: a single-part one's record
-- tail (`StoredSegment::record_tail`; its length is what the record counts against
-- the octet limits), a multi-part one packed as in its pending value, after its seq,
-- flags and time (`model::pending::packed_segment`), 8 the account's index among the quadruples (1-based), 9 the account
-- its route forwards it to ('' = none: the store keeps it; prefixed '1' when the
-- route reassembles a multi-part message into one deliver_sm, else '0'), 10 its
-- schedule_delivery_time (ms; 0 = none), 11 its simulated outcome ('' = none; `<stat
-- letter> <err> <delay ms>`: it ends so, that long after it is complete, through the
-- schedule's '^<gid>' entry), 12 `<protocol_id> <priority_flag>` ('' for 0 0: kept
-- as field `pp` for a forwarded deliver_sm), then 13 for a single-part message its
-- time (ms, the node's reading of Redis time, which its receipt already carries) and
-- 14.. the receipt triple if one is owed (see `receipts/ready.rs`) — for a forwarded message
-- its delivery to that account, queued the same way; for a scheduled or simulated
-- one none, but a simulated one's intermediate notification (`<id>.n`) if owed; for
-- a multi-part one 13 `<x> <partition> <id> <second-choice id> <hex id> <octets>
-- <flags>` (the expiry mode code, then 2 and 13 hex digits each: `model::group_ids`,
-- the node's id in the hex form, which makes a new group's gid unique, the length of
-- the segment's record tail, and the flags of its packed form, field 7) and 14.. a simulated
-- segment's notification triple if owed, queued held as a single-part receipt is.
-- Field 4 is the id the node made in the account's format: a single-part message's
-- message_id; for a multi-part segment in the hex format the same as its hex id (the
-- segment's own names its group: `seg_id`), in the decimal and short formats the
-- segment's own id, found through `P:m:<id>`.
--
-- Usage: the hash P:usage keeps `n:<acct>` messages and `b:<acct>` octets of each
-- account, and `n` messages and `b` octets of all (what max_pending and
-- max_pending_bytes count), from the submit that stores them to the FINALIZE
-- that deletes them (REPLACE adjusts the octets); `g` pending groups and `c2` those
-- at their second-choice id. A field at 0 is deleted, so nothing is left when the
-- store is empty.
--
-- A pending multi-part message is one binary value `P:g:<id>` (its format: `pg_head` in
-- lib.lua) and one entry of the deadline index `P:ix:<bucket>`.
--
-- Returns one reply per record: `{'stored', held_until or nil, message_id}`,
-- `{'complete', gid}`, `{'complete', gid, held_until}` (a single-part message, its
-- receipt held), `{'complete', gid, held_until or 'sched', message_id}` (a simulated
-- or scheduled multi-part one), `{'complete', gid, {fields…}, message_id}` (a
-- multi-part message: its group as `group_fields` reads it), `{'dup',
-- original_message_id}`, `{'full', limit}` (limit: `store`, `store_bytes`,
-- `account`, `account_bytes`, `receipts`), `{'expired'}` or `{'err', message}` (a command of
-- that record failed — out of memory, say; the other records are unaffected). The
-- indexes (deadlines, outbox, receipts) are written once for the batch, at its end.
local max_pending, hfe, hold = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local max_bytes = tonumber(ARGV[6])
local now = now_ms()
-- The batch's accounts, by index: name and limits (max_n, max_b, max_r), per
-- partition.
local limits, f = {}, 8
for k = 1, tonumber(ARGV[7]) do
  limits[k] = {name = ARGV[f], max_n = tonumber(ARGV[f + 1]), max_b = tonumber(ARGV[f + 2]),
    max_r = tonumber(ARGV[f + 3])}
  f = f + 4
end
-- The batch's partitions: their key prefixes, by index.
local prefixes = {}
for k = 1, tonumber(ARGV[f]) do prefixes[k] = ARGV[f + k] end
local first_record = f + #prefixes + 1
-- What the batch does in each partition, written at its end: the index entries, the
-- receipts, and the partition's counts (pending messages and octets, read once and
-- kept up to date as records are admitted; a message counts from its first record
-- until FINALIZE) and per account {n, b, r (receipts queued), dn, db (this batch's
-- additions)}.
local parts, cur = {}, nil
local function enter(k)
  cur = parts[k]
  if not cur then
    cur = {P = prefixes[k], accts = {}, fin = new_fin(), dls = {}, ob = {}, q = {}, adds = {},
      newg = 0, c2 = 0, c2new = 0, c2_read = false}
    cur.fin.adds = cur.adds
    parts[k] = cur
  end
  P = cur.P
end
local function account(k)
  local a = cur.accts[k]
  if not a then
    -- The partition's messages and octets come with the batch's first account: one
    -- call, where counting the pending area (two ZCARDs) cost two more per call.
    local l = limits[k]
    local u = redis.call('HMGET', P .. 'usage', 'n:' .. l.name, 'b:' .. l.name, 'b', 'n')
    a = {name = l.name, max_n = l.max_n, max_b = l.max_b, max_r = l.max_r,
      n = tonumber(u[1]) or 0, b = tonumber(u[2]) or 0, dn = 0, db = 0, rq = 0}
    cur.accts[k] = a
    if not cur.bytes then cur.bytes, cur.pending = tonumber(u[3]) or 0, tonumber(u[4]) or 0 end
  end
  return a
end
-- Whether a record of `len` octets fits (its record tail's length,
-- `StoredSegment::record_len`, which a multi-part record, sent packed, names in field
-- 13); `new`: it is a new message (not a later segment of a pending one). Returns the
-- refusal, or nil.
local function admit(b, dl, new, len)
  -- A deadline already passed first: no retry can save the message, so "full" (which
  -- asks the ESME to retry later) would be the wrong answer at a full store.
  if dl <= now and new then return {'expired'} end
  local a = account(tonumber(ARGV[b + 7]))
  if new then
    if cur.pending >= max_pending then return {'full', 'store'} end
    if a.n >= a.max_n then return {'full', 'account'} end
    -- Queued in Redis before this call, plus what its earlier records queued (written
    -- at its end, so not counted by the ZCARD).
    if not a.r then a.r = redis.call('ZCARD', P .. 'r:' .. a.name) end
    if a.r + a.rq >= a.max_r then return {'full', 'receipts'} end
  end
  if cur.bytes + len > max_bytes then return {'full', 'store_bytes'} end
  if a.b + len > a.max_b then return {'full', 'account_bytes'} end
  return nil
end
-- Counts an admitted record once its writes are done.
local function count(b, new, len)
  local a = cur.accts[tonumber(ARGV[b + 7])]
  if new then
    cur.pending = cur.pending + 1
    a.n, a.dn = a.n + 1, a.dn + 1
  end
  cur.bytes = cur.bytes + len
  a.b, a.db = a.b + len, a.db + len
end
-- Counts the receipts a record queued (ARGV[b+13..last], triples) against its
-- account's queue limit for the rest of the call.
local function queued(b, last)
  local a = cur.accts[tonumber(ARGV[b + 7])]
  a.rq = a.rq + (last - b - 12) / 3
end
-- The pending group of group key gk: `{key, hex, g (its head; nil: a new one goes
-- there), v (its value), c2 (at its second choice)}`, or nil when both ids are held by other group
-- keys. A group goes to its second-choice id only when the first is held by another
-- group key, and P:usage `c2` counts those pending there: while none is, a group key
-- not at its first id has no group.
local function find_group(gk, h1, h2)
  local k1 = P .. 'g:' .. h1
  local v1 = redis.call('GET', k1)
  local g1 = v1 and pg_head(v1)
  if g1 and g1.gk == gk then return {key = k1, hex = h1, g = g1, v = v1, c2 = false} end
  if not cur.c2_read then
    cur.c2_read = true
    cur.c2 = cur.c2 + (tonumber(redis.call('HGET', P .. 'usage', 'c2')) or 0)
  end
  if g1 or cur.c2 > 0 then
    local k2 = P .. 'g:' .. h2
    local v2 = redis.call('GET', k2)
    local g2 = v2 and pg_head(v2)
    if g2 and g2.gk == gk then return {key = k2, hex = h2, g = g2, v = v2, c2 = true} end
    if g1 then
      if g2 then return nil end
      return {key = k2, hex = h2, c2 = true}
    end
  end
  return {key = k1, hex = h1, c2 = false}
end
local function one(b, last)
  local gk, seq, total, mid, dl = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], tonumber(ARGV[b + 4])
  if total == 1 then
    -- A single-part message is complete on arrival: written once, straight as the
    -- finished message d:<message_id>, no pending value, no timer, no index entry
    -- (lookup finds d:<message_id> itself). Its receipt, built by
    -- the node with the same time, is queued here too, so it never passes through
    -- P:fresh and RELEASE. Most traffic is single-part.
    local len = #ARGV[b + 6]
    local refused = admit(b, dl, true, len)
    if refused then return refused end
    local at, to, sched, sim = ARGV[b + 12], string.sub(ARGV[b + 8], 2), tonumber(ARGV[b + 9]), ARGV[b + 10]
    -- Eight fields: its facts are its group key gk plus st (no meta JSON), its
    -- segment a binary record `= 0 ` LF `<at> <tail>` (no JSON, no hex). What a
    -- reader can derive is not written: r:1 and fin are sub, acct and src are in gk (model::FinishedGroup::from_fields, QUERY and lookup fill them in).
    -- Each field of this hash (a hashtable: m:1 is over 64 octets) is an entry and
    -- two allocations in Redis, at every single-part submit.
    local d = P .. 'd:' .. mid
    local f = {'gid', mid, 'gk', gk, 'st', ARGV[b + 5], 'dl', ARGV[b + 4], 'sub', at,
      'm:1', '= 0 \n' .. at .. ' ' .. ARGV[b + 6], 'node', NODE}
    local state = 'complete'
    if sim ~= '' then
      sched = math.max(sched, now + tonumber(string.match(sim, '(%d+)$')))
      push(f, 'sim', string.match(sim, '^(%S+ %S+)'))
    end
    if sched > now or sim ~= '' then
      -- Scheduled: nothing happens to it before its time (see finish_group's `sched`).
      sched = math.max(sched, now)
      state = 'sched'
      push(f, 'sd', string.format('%d', sched))
      if to ~= '' then push(f, 'to', to) end
      cur.dls[#cur.dls + 1] = sched
      cur.dls[#cur.dls + 1] = '^' .. mid
      arm('^' .. mid, sched, hfe)
    elseif to ~= '' then
      -- Forwarded: waiting for its delivery (see finish_group's `route`), not in the
      -- outbox; its delivery ends by its validity deadline.
      state = 'routed'
      push(f, 'to', to)
      push(f, 'o', '1')
      push(f, 'pe', '0')
      cur.dls[#cur.dls + 1] = dl
      cur.dls[#cur.dls + 1] = '@' .. mid
      arm('@' .. mid, dl, hfe)
    else
      cur.ob[#cur.ob + 1] = now
      cur.ob[#cur.ob + 1] = mid
    end
    push(f, 'state', state)
    if ARGV[b + 11] ~= '' then push(f, 'pp', ARGV[b + 11]) end
    -- One HSET: each redis.call costs Redis its own command dispatch and AOF record.
    redis.call('HSET', d, unpack(f))
    count(b, true, len)
    if last >= b + 15 then
      -- Held, not announced: due once the node queued the submit_sm_resp
      -- (RECEIPT_READY), or at held_until if it never says so.
      local held = now + hold
      queue_receipts(b + 13, last, held, cur.q)
      queued(b, last)
      return {'complete', mid, held}
    end
    return {'complete', mid}
  end
  -- A multi-part segment: field 13 as the header says.
  local x, pp, h1, h2, hexid, len, sf = string.match(ARGV[b + 12], '^(%S+) (%x+) (%x+) (%x+) (%x+) (%d+) (%d+)$')
  len = tonumber(len)
  local pg = find_group(gk, h1, h2)
  if not pg then
    -- Both ids held by other group keys at once: ~2^-100 a group, answered as a
    -- failure (the ESME retries; one of them finishes by its deadline).
    return {'err', 'group ids ' .. h1 .. ' and ' .. h2 .. ' both held by other messages'}
  end
  local g, seq = pg.g, tonumber(seq)
  local new = not g
  local n = 0
  if not new then
    local dup
    n, dup = pg_count(pg.v, g.seg_at, seq)
    if dup then return {'dup', seg_id(gid_of(g, pg.hex), dup)} end
  end
  local refused = admit(b, dl, new, len)
  if refused then return refused end
  local node_id = ARGV[b + 3]
  -- The node's hex id (partition, epoch, counter) makes a new group's gid unique; a
  -- decimal or short id is the segment's own (it cannot name its group).
  local own = nil
  if node_id ~= hexid then own = node_id end
  if new then
    g = {dl = dl, sub = now, c2 = pg.c2, x = x, part = tonumber(pp, 16), gk = gk, ext = {},
      uniq = string.sub(hexid, 3)}
    if ARGV[b + 5] ~= '' then g.ext.st = ARGV[b + 5] end
    if ARGV[b + 11] ~= '' then g.ext.pp = ARGV[b + 11] end
    local to = ARGV[b + 8]
    if to ~= '' then
      g.ext.to = string.sub(to, 2)
      if string.byte(to, 1) == 49 then g.ext.ra = '1' end -- '1'
    end
    if ARGV[b + 9] ~= '0' then g.ext.sd = ARGV[b + 9] end
    local sim = ARGV[b + 10]
    if sim ~= '' then
      g.ext.sim = string.match(sim, '^(%S+ %S+)')
      g.ext.sdl = string.match(sim, '(%d+)$')
    end
    local id = dec(pg.hex)
    cur.adds[id] = dl
    cur.newg = cur.newg + 1
    if pg.c2 then
      cur.c2 = cur.c2 + 1
      cur.c2new = cur.c2new + 1
    end
    arm(id, dl, hfe)
  end
  -- A new segment is appended: the head and the segments before it stay as they are.
  -- The node packed it (`model::pending::packed_segment`) but for its seq and its
  -- time: the message's submit time (flag 1) or its own.
  sf = tonumber(sf)
  if new then
    pg.v = pg_encode_head(g) .. string.char(seq, sf + 1) .. ARGV[b + 6]
  else
    pg.v = pg.v .. string.char(seq, sf) .. struct.pack('>I6', now) .. ARGV[b + 6]
  end
  local seg = {seq = seq, id = own}
  pg.g, n = g, n + 1
  pg.n = n
  local gid = gid_of(g, pg.hex)
  local mid = seg_id(gid, seg)
  if own then redis.call('SET', P .. 'm:' .. own, gid .. string.format('%02X', seq)) end
  count(b, new, len)
  -- Only a simulated segment carries a notification, and a simulated message
  -- completes through its schedule below, so no reply that drops `held` has one.
  -- It names the node's id, which a hex-format segment does not keep: renamed.
  local held = nil
  if last >= b + 15 then
    held = now + hold
    if mid ~= node_id then
      ARGV[b + 14] = string.gsub(ARGV[b + 14], node_id, mid)
      ARGV[b + 15] = string.gsub(ARGV[b + 15], node_id, mid)
    end
    queue_receipts(b + 13, last, held, cur.q)
    queued(b, last)
  end
  if n >= total then
    -- The route is the first segment's (`to` of the group); its validity, the group's.
    local route, to, sched = nil, g.ext.to, tonumber(g.ext.sd) or 0
    -- A simulated outcome ends it its delay after it is complete.
    if g.ext.sim then sched = math.max(sched, now + (tonumber(g.ext.sdl) or 0)) end
    if sched > now or g.ext.sim then
      -- Its schedule_delivery_time (the first segment's) is still ahead.
      finish_group(pg, 'complete', now, cur.fin, nil, math.max(sched, now))
      return {'complete', gid, held or 'sched', mid}
    end
    -- Reassembled: one delivery for the whole message.
    if to then route = {to = to, n = g.ext.ra and 1 or n, ['until'] = g.dl, partial = false} end
    local _, f = finish_group(pg, 'complete', now, cur.fin, route)
    -- Its data goes back with the answer, for the node's releaser (see
    -- release::Completed): what FRESH would read, without FRESH's call or a read back.
    return {'complete', gid, f, mid}
  end
  -- SET of the whole value, not APPEND of the segment: APPEND leaves the string
  -- room to grow (up to twice its length), which a pending value keeps for its
  -- whole validity.
  redis.call('SET', pg.key, pg.v)
  return {'stored', held or false, mid}
end
local out, i = {}, first_record
while i <= #ARGV do
  -- Each record: its field count n, its partition's index, then its n fields.
  local n = tonumber(ARGV[i])
  enter(tonumber(ARGV[i + 1]))
  local ok, r = pcall(one, i + 2, i + n + 1)
  if ok then
    out[#out + 1] = r
  else
    -- A failed redis.call raises its error reply as a table {err = ...}.
    out[#out + 1] = {'err', type(r) == 'table' and tostring(r.err) or tostring(r)}
  end
  i = i + n + 2
end
for _, s in pairs(parts) do
  P = s.P
  -- The '^'/'@' deadlines first; the new groups' index entries go with finish_flush,
  -- which leaves out the groups opened and finished in this call.
  bulk('ZADD', P .. 'deadlines', s.dls)
  if s.newg > 0 then redis.call('HINCRBY', P .. 'usage', 'g', s.newg) end
  if s.c2new > 0 then redis.call('HINCRBY', P .. 'usage', 'c2', s.c2new) end
  finish_flush(s.fin, hfe, true)
  bulk('ZADD', P .. 'outbox', s.ob)
  flush_receipts(s.q, false)
  -- The new totals in one HSET: this script read them and nothing else ran since.
  local u = {}
  for _, a in pairs(s.accts) do
    if a.dn ~= 0 then
      u[#u + 1] = 'n:' .. a.name
      u[#u + 1] = string.format('%d', a.n)
    end
    if a.db ~= 0 then
      u[#u + 1] = 'b:' .. a.name
      u[#u + 1] = string.format('%d', a.b)
    end
  end
  if #u > 0 then
    u[#u + 1] = 'b'
    u[#u + 1] = string.format('%d', s.bytes)
    u[#u + 1] = 'n'
    u[#u + 1] = string.format('%d', s.pending)
    bulk('HSET', P .. 'usage', u)
  end
end
return out
