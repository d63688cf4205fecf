-- Receipts done (delivered or dropped), of several partitions (`parts_header`):
-- ARGV[a] account, then per partition `part, count, ids…`.
local prefixes, a = parts_header()
local acct = ARGV[a]
local i = a + 1
while i <= #ARGV do
  P = prefixes[tonumber(ARGV[i])]
  local c = tonumber(ARGV[i + 1])
  local z, h = P .. 'r:' .. acct, P .. 'rd:' .. acct
  -- unpack() in slices: Lua's C stack takes a few thousand arguments at most.
  for j = i + 2, i + 1 + c, 512 do
    local e = math.min(j + 511, i + 1 + c)
    redis.call('ZREM', z, unpack(ARGV, j, e))
    redis.call('HDEL', h, unpack(ARGV, j, e))
  end
  if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
  i = i + 2 + c
end
return 1
