-- At start: leases still running that an earlier process of this node (same node
-- label, older epoch ARGV[3]) holds are due now — that process is gone, and waiting
-- for their end would delay its outcomes by a whole lease. Should it still be alive
-- (two processes misconfigured with one node_id), both write: the insert is
-- idempotent by `_id` and finalize acts once. Returns how many were taken back.
local now = now_ms()
local ob = P .. 'outbox'
local n = 0
for _, gid in ipairs(redis.call('ZRANGEBYSCORE', ob, '(' .. now, '+inf')) do
  local h = redis.call('HMGET', P .. 'd:' .. gid, 'ln', 'le')
  if h[1] == NODE and h[2] and tonumber(h[2]) < tonumber(ARGV[3]) then
    redis.call('ZADD', ob, now, gid)
    n = n + 1
  end
end
return n
