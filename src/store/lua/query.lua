-- query_sm: ARGV 3 message_id, 4 account, 5 source. Returns `{}` (unknown here),
-- `{'pending'}` or `{'final', state, fin_ms, expiry mode code or ''}` (no code: a
-- single-part message, which cannot be partial).
local gid, gk, pending, h = lookup(ARGV[3], ARGV[4], ARGV[5])
if not gid then return {} end
if pending then return {'pending'} end
local f = redis.call('HMGET', h, 'state', 'fin', 'x', 'sub')
-- A single-part message has no fin: it finished when it was submitted.
return {'final', f[1], f[2] or f[4], f[3] or ''}
