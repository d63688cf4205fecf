-- The claim-due pass in one script per batch, over one or several partitions
-- (`parts_header`; several on a standalone server: a pass over the woken partitions
-- is then one call instead of one each): claims the groups whose deadline passed by
-- Redis time, up to ARGV[a] in all besides the ids given (always all claimed), partition after partition (ARGV a+1 hfe; a+2 how
-- long after its deadline the received segments of a forwarded partial message may
-- still be delivered, ms; then per partition a count c and c group ids (decimal)
-- that the node's timers found due). Per partition, in this order: those ids (a
-- local timer fires at the deadline itself, the index is by second), the '^'/'@'
-- entries of `P:deadlines` due, then the index buckets `P:ix:<b>` whose whole second
-- passed (what no local timer watched: a node that died, a recovery pass).
-- Returns `{{asked, listed} per partition, {lateness_ms of each claimed…}, {k, id,
-- deadline_ms} of each given id not due yet by Redis time, gid, {hash fields…}, …}`:
-- a partition is done when it listed fewer than it was asked for (0 asked: not
-- reached within the limit); a listed group already gone is only removed from the
-- index. The claimed groups' data goes back with the claim so that the node
-- releases their receipts without a FRESH read of the same hashes (a read that
-- bounds expiry lateness at 1M pending: BENCHMARKS.md); they are in `P:fresh` all
-- the same, for any node to release if this one does not.
--
-- An entry '^<gid>' is a scheduled message's schedule_delivery_time: it is complete
-- now (outbox and P:fresh), or routed if it is forwarded (P:fresh, its delivery
-- deadline '@<gid>' at its validity).
-- An entry '@<gid>' is a forwarded message's delivery deadline: what is still
-- undelivered then leaves the receiving account's queue, the message is `done` (its
-- segments without a delivery result expired) and goes to the outbox.
local prefixes, a = parts_header()
local limit, hfe, grace = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
-- Each partition's given ids: ARGV[first..last].
local given, j = {}, a + 3
for k = 1, #prefixes do
  local c = tonumber(ARGV[j])
  given[k] = {j + 1, j + c}
  j = j + c + 1
end
local now = now_ms()
local counts, late, undue = {}, {}, {}
local out = {counts, late, undue}
local left = limit
-- Claims pending group `hex` if its deadline passed: 'gone', its deadline (not due),
-- or nil (claimed). `popped`: its id already left the index (SPOP).
local function claim_group(hex, fin, popped)
  local key = P .. 'g:' .. hex
  local v = redis.call('GET', key)
  if not v then return 'gone' end
  local g = pg_head(v)
  if g.dl > now then return g.dl end
  local n = pg_count(v, g.seg_at)
  -- Forwarded and `deliver_partial`: the received segments go to the receiver
  -- standalone, until the grace after the deadline. `expire_whole`: nothing is
  -- delivered, as for a message the store keeps.
  local route = nil
  if g.ext.to and g.x ~= 'w' then
    route = {to = g.ext.to, n = n, ['until'] = g.dl + grace, partial = true}
  end
  local gid, f = finish_group({key = key, hex = hex, g = g, v = v, n = n, popped = popped}, 'expired',
    now, fin, route)
  late[#late + 1] = now - g.dl
  out[#out + 1] = gid
  -- What it wrote, not read back.
  out[#out + 1] = f
  return nil
end
-- Claims up to `ask` due groups of the current partition P (k its index; ARGV
-- first..last the ids given for it); returns how many it listed.
local function claim(k, ask, first, last)
  local fin, gone = new_fin(), {}
  local ended = {}
  local n = 0
  for i = first, last do
    local r = claim_group(string.format('%013X', tonumber(ARGV[i])), fin)
    if type(r) == 'number' then
      undue[#undue + 1] = k
      undue[#undue + 1] = ARGV[i]
      undue[#undue + 1] = r
    end
    n = n + 1
  end
  -- With their scores: a forwarded message's delivery deadline is only its entry's.
  local listed = {}
  if n < ask then
    listed = redis.call('ZRANGEBYSCORE', P .. 'deadlines', '-inf', now, 'WITHSCORES', 'LIMIT', 0,
      ask - n)
  end
  n = n + #listed / 2
  for i = 1, #listed, 2 do
    local entry, at = listed[i], tonumber(listed[i + 1])
    local c1 = string.byte(entry, 1)
    if c1 == 94 then -- '^'
      gone[#gone + 1] = entry
      local gid = string.sub(entry, 2)
      local d = P .. 'd:' .. gid
      local h = redis.call('HMGET', d, 'state', 'to', 'dl', 'n', 'sd', 'sim', 'ra')
      if h[1] == 'sched' then
        if h[6] then
          -- Simulated: each segment ends as its profile picked (`model::DeliveryResult`).
          local r = h[6] .. ' 0 ' .. string.format('%d', now) .. ' ' .. NODE
          redis.call('HSET', d, 'state', 'done', 'fin', now, unpack(results_for_all(d, gid, r)))
          ended[#ended + 1] = now
          ended[#ended + 1] = gid
        elseif h[2] then
          local o = h[7] and 1 or (tonumber(h[4]) or 1)
          redis.call('HSET', d, 'state', 'routed', 'o', o, 'pe', '0', 'fin', now)
          fin.dl[#fin.dl + 1] = tonumber(h[3])
          fin.dl[#fin.dl + 1] = '@' .. gid
          fin.fr[#fin.fr + 1] = now
          fin.fr[#fin.fr + 1] = gid
        else
          redis.call('HSET', d, 'state', 'complete', 'fin', now)
          ended[#ended + 1] = now
          ended[#ended + 1] = gid
        end
        late[#late + 1] = now - (tonumber(h[5]) or now)
        out[#out + 1] = gid
        out[#out + 1] = group_fields(d)
      end
    elseif c1 == 64 then -- '@'
      gone[#gone + 1] = entry
      local gid = string.sub(entry, 2)
      local d = P .. 'd:' .. gid
      local h = redis.call('HMGET', d, 'state', 'to', 'fin')
      if h[1] == 'routed' then
        drop_deliveries(h[2], d, gid)
        redis.call('HSET', d, 'state', 'done', 'fin', now)
        ended[#ended + 1] = now
        ended[#ended + 1] = gid
        late[#late + 1] = now - at
        out[#out + 1] = gid
        out[#out + 1] = group_fields(d)
      end
    end
  end
  -- The index's whole seconds passed: every group in them is due (the sets of the
  -- second ending at b hold the deadlines in (b - 1 s, b]). Popped: a group gone is
  -- only dropped.
  if n < ask then
    for _, b in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ixb', '-inf', now, 'LIMIT', 0, ask - n)) do
      if n >= ask then break end
      local ix = P .. 'ix:' .. b
      local ids = redis.call('SPOP', ix, ask - n)
      n = n + #ids
      for _, id in ipairs(ids) do
        -- Its second passed, so it is due (a replaced deadline moves its entry); one
        -- that were not would go back in its second rather than be lost.
        local r = claim_group(string.format('%013X', tonumber(id)), fin, true)
        if type(r) == 'number' then ix_flush_adds({[id] = r}) end
      end
      if redis.call('EXISTS', ix) == 0 then redis.call('ZREM', P .. 'ixb', b) end
    end
  end
  bulk('ZREM', P .. 'deadlines', gone)
  bulk('ZADD', P .. 'outbox', ended)
  bulk('ZADD', P .. 'fresh', ended)
  finish_flush(fin, hfe, false)
  return n
end
-- Given ids are claimed whatever is left of the limit (the node gives at most the
-- limit in all): their timers fired and would not again.
for k = 1, #prefixes do
  local asked, n = 0, 0
  local c = given[k][2] - given[k][1] + 1
  if left > 0 or c > 0 then
    P = prefixes[k]
    asked = math.max(left, c)
    n = claim(k, asked, given[k][1], given[k][2])
    left = left - n
  end
  counts[#counts + 1] = {asked, n}
end
return out
