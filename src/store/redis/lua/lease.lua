-- Leases up to ARGV[3] finished groups from the outbox for ARGV[4] ms, recording the
-- holder (node label, node epoch ARGV[5]) in `ln`/`le` of `d:<gid>` for [`RECLAIM`].
-- Returns `{now, next_score or -1, gid, …}`: ids only — the writer takes the groups
-- this node holds in memory (`outcomes/known.rs`) and reads the rest with [`READ_GROUPS`].
-- A listed gid whose group is gone is only removed from the outbox.
local now = now_ms()
local ob = P .. 'outbox'
local ids = redis.call('ZRANGEBYSCORE', ob, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out, leased, gone = {now, -1}, {}, {}
local till = now + tonumber(ARGV[4])
for _, gid in ipairs(ids) do
  local d = P .. 'd:' .. gid
  -- HSET would create a gone group's hash; every finished group has a gid field.
  if redis.call('HEXISTS', d, 'gid') == 0 then
    gone[#gone + 1] = gid
  else
    redis.call('HSET', d, 'ln', NODE, 'le', ARGV[5])
    leased[#leased + 1] = till
    leased[#leased + 1] = gid
    out[#out + 1] = gid
  end
end
bulk('ZADD', ob, leased)
bulk('ZREM', ob, gone)
local nxt = redis.call('ZRANGE', ob, 0, 0, 'WITHSCORES')
if #nxt == 2 then out[2] = tonumber(nxt[2]) end
return out
