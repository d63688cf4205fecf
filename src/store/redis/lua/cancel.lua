-- cancel_sm: ARGV 3 message_id, 4 account, 5 source, 6 the start its group key must
-- have ('' = any: a cancel of several messages names the destination this way), 7
-- '=' and the service_type it must have ('' = any). Returns `{'ok', gid}`,
-- `{'final'}` or `{}`. A message still pending, scheduled (`sched`) or under way to
-- its receiver (`routed`: its queued deliveries leave the receiver's queue; one the
-- receiver is being sent right now may still arrive) is cancelled: DELETED receipts.
local r = lookup(ARGV[3], ARGV[4], ARGV[5])
if not r then return {} end
local gid, pending, h = r.gid, r.pending, r.h
if ARGV[6] ~= '' or ARGV[7] ~= '' then
  local gk, st
  if pending then
    gk, st = pending.g.gk, pending.g.ext.st
  else
    local f = redis.call('HMGET', h, 'gk', 'st')
    gk, st = f[1] or '', f[2]
  end
  if string.sub(gk, 1, #ARGV[6]) ~= ARGV[6] then return {} end
  if ARGV[7] ~= '' and (st or '') ~= string.sub(ARGV[7], 2) then return {} end
end
local now = now_ms()
if pending then
  local fin = new_fin()
  finish_group(pending, 'cancelled', now, fin)
  finish_flush(fin, nil, true)
  return {'ok', gid}
end
local st = redis.call('HMGET', h, 'state', 'to')
if st[1] ~= 'routed' and st[1] ~= 'sched' then return {'final'} end
if st[1] == 'routed' then drop_deliveries(st[2], h, gid) end
-- Its deadline entry goes, and its bucket's timer if no other deadline is in it; a
-- schedule was announced on P:armed (a delivery deadline is not), so its end is too.
local entries = {'@' .. gid, '^' .. gid}
local dls = redis.call('ZMSCORE', P .. 'deadlines', unpack(entries))
redis.call('ZREM', P .. 'deadlines', unpack(entries))
drop_empty_buckets(dls, nil)
if dls[2] then redis.call('SPUBLISH', P .. 'armed', '- ^' .. gid) end
redis.call('HSET', h, 'state', 'cancelled', 'fin', now)
redis.call('ZADD', P .. 'outbox', now, gid)
redis.call('ZADD', P .. 'fresh', now, gid)
return {'ok', gid}
