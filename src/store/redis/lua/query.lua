-- query_sm: ARGV 3 message_id, 4 account, 5 source. Returns `{}` (unknown here),
-- `{'pending'}` (segments to come, or a forwarded message under way) or `{'final',
-- state, fin_ms, expiry mode code or '', delivery result or ''}` (no code: a
-- single-part message, which cannot be partial; the delivery result of this segment
-- of a forwarded message, `model::DeliveryResult`).
local r = lookup(ARGV[3], ARGV[4], ARGV[5])
if not r then return {} end
if r.pending then return {'pending'} end
local gid, h = r.gid, r.h
local f = redis.call('HMGET', h, 'state', 'fin', 'x', 'sub')
if f[1] == 'routed' or f[1] == 'sched' then return {'pending'} end
local r = ''
if f[1] == 'done' then
  local seq = '1'
  for _, s in ipairs(segments_of(h, gid)) do
    if s[2] == ARGV[3] then seq = s[1] end
  end
  r = redis.call('HGET', h, 'r:' .. seq) or ''
end
-- A single-part message has no fin: it finished when it was submitted.
return {'final', f[1], f[2] or f[4], f[3] or '', r}
