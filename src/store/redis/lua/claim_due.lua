-- The claim-due pass in one script per batch, over one or several partitions
-- (`parts_header`; several on a standalone server: a pass over the woken partitions
-- is then one call instead of one each): claims up to ARGV[a] groups in all whose
-- deadline passed by Redis time, partition after partition (ARGV a+1 hfe; a+2 how
-- long after its deadline the received segments of a forwarded partial message may
-- still be delivered, ms). Returns `{{asked, listed} per partition, {lateness_ms of
-- each claimed…}, gid, {hash fields… + segment records (`group_fields`)}, …}`: a
-- partition is done when it listed fewer than it was asked for (0 asked: not reached
-- within the limit); a listed group already gone is only removed from the index. The claimed groups' data goes back with the claim so that the node
-- releases their receipts without a FRESH read of the same hashes (which was the
-- bound of expiry lateness at 1M pending: BENCHMARKS.md); they are in `P:fresh` all
-- the same, for any node to release if this one does not. Per group HMGET, HSET,
-- RENAME and the read (an HGETALL of the pending hash first, `gid` and `dl` taken
-- from it, measured slower: expiry p99 0.36 -> 0.78 s, 300k partials, 2026-12-03);
-- the index, timer and outbox updates are one call each for the batch
-- (`finish_flush`).
--
-- An entry '^<gid>' is a scheduled message's schedule_delivery_time: it is complete
-- now (outbox and P:fresh), or routed if it is forwarded (P:fresh, its delivery
-- deadline '@<gid>' at its validity).
-- An entry '@<gid>' is a forwarded message's delivery deadline: what is still
-- undelivered then leaves the receiving account's queue, the message is `done` (its
-- segments without a delivery result expired) and goes to the outbox.
local prefixes, a = parts_header()
local limit, hfe, grace = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
local now = now_ms()
local counts, late = {}, {}
local out = {counts, late}
local left = limit
-- Claims up to `ask` due groups of the current partition P; returns how many it listed.
local function claim(ask)
  -- With their scores: a forwarded message's delivery deadline is only its entry's.
  local listed = redis.call('ZRANGEBYSCORE', P .. 'deadlines', '-inf', now, 'WITHSCORES', 'LIMIT', 0,
    ask)
  local fin, gone = new_fin(), {}
  local ended = {}
  for i = 1, #listed, 2 do
    local gk, at = listed[i], tonumber(listed[i + 1])
    local c1 = string.byte(gk, 1)
    if c1 == 94 then -- '^'
      gone[#gone + 1] = gk
      local gid = string.sub(gk, 2)
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
      gone[#gone + 1] = gk
      local gid = string.sub(gk, 2)
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
    else
      -- x and n only for a forwarded message: two fields more per group cost the claim
      -- ~2 µs of Redis CPU (scripts/claim-bench.sh, 2026-12-06).
      local h = redis.call('HMGET', P .. 'g:' .. gk, 'dl', 'gid', 'to')
      if not h[1] then
        gone[#gone + 1] = gk
      else
        -- Forwarded and `deliver_partial`: the received segments go to the receiver
        -- standalone, until the grace after the deadline. `expire_whole`: nothing is
        -- delivered, as for a message the store keeps.
        local route = nil
        if h[3] then
          local xn = redis.call('HMGET', P .. 'g:' .. gk, 'x', 'n')
          if xn[1] ~= 'w' then
            route = {to = h[3], n = tonumber(xn[2]), ['until'] = tonumber(h[1]) + grace, partial = true}
          end
        end
        finish_group(gk, h[2], 'expired', now, fin, route)
        late[#late + 1] = now - tonumber(h[1])
        out[#out + 1] = h[2]
        out[#out + 1] = group_fields(P .. 'd:' .. h[2])
      end
    end
  end
  bulk('ZREM', P .. 'deadlines', gone)
  bulk('ZADD', P .. 'outbox', ended)
  bulk('ZADD', P .. 'fresh', ended)
  finish_flush(fin, hfe, false)
  return #listed / 2
end
for k = 1, #prefixes do
  local asked, n = 0, 0
  if left > 0 then
    P = prefixes[k]
    asked = left
    n = claim(asked)
    left = left - n
  end
  counts[#counts + 1] = {asked, n}
end
return out
