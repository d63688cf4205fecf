-- BIND_ADMIT: a bind's place among its account's max_binds over every node.
-- KEYS[1] = P{lim:<system_id>}:binds, a ZSET: lease member `<node>:<epoch>:<n>` ->
-- lease expiry (ms, Redis TIME). ARGV[1] the member, ARGV[2] max_binds, ARGV[3] the
-- lease in ms. Drops expired leases (a crashed node's), counts, adds if below
-- max_binds — atomic, so two nodes never both take the last place. Returns 1
-- admitted, 0 at max_binds. Not prefixed by lib.lua: no partition.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
-- No lease outlives now + lease: the key goes with the last of them.
redis.call('PEXPIRE', KEYS[1], lease)
return 1
