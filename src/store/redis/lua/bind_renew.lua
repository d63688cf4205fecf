-- BIND_RENEW: one node's live binds of an account keep their places. KEYS[1] =
-- P{lim:<system_id>}:binds (see BIND_ADMIT), ARGV[1] the lease in ms, ARGV[2..] the
-- node's members. Drops expired leases; a member is added back if its lease had
-- expired meanwhile (the node could not renew in time, say during a Redis outage):
-- the bind is live, so it counts, even if that puts the account above max_binds
-- until a bind ends. Returns the number of leases now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[1])
local until_ms = now + lease
-- Slices of 512 members: unpack() takes a few thousand values at most.
for i = 2, #ARGV, 512 do
  local pairs_ = {}
  for j = i, math.min(i + 511, #ARGV) do
    pairs_[#pairs_ + 1] = until_ms
    pairs_[#pairs_ + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(pairs_))
end
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[1], lease) end
return redis.call('ZCARD', KEYS[1])
