-- Receipts done (delivered or dropped): ARGV 3 account, 4.. receipt ids.
local acct = ARGV[3]
local z, h = P .. 'r:' .. acct, P .. 'rd:' .. acct
-- unpack() in slices: Lua's C stack takes a few thousand arguments at most.
for i = 4, #ARGV, 512 do
  local j = math.min(i + 511, #ARGV)
  redis.call('ZREM', z, unpack(ARGV, i, j))
  redis.call('HDEL', h, unpack(ARGV, i, j))
end
if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
return 1
