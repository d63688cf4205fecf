-- Takes up to ARGV[4] due receipts of account ARGV[3], leasing them for ARGV[5] ms.
-- Returns `{now, next_score or -1, id, payload, id, payload, …}`.
local acct = ARGV[3]
local z, h = P .. 'r:' .. acct, P .. 'rd:' .. acct
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out, leased, gone = {now, -1}, {}, {}
local till = now + tonumber(ARGV[5])
for i = 1, #ids, 512 do
  local j = math.min(i + 511, #ids)
  local ps = redis.call('HMGET', h, unpack(ids, i, j))
  for k = 1, j - i + 1 do
    local id = ids[i + k - 1]
    if ps[k] then
      leased[#leased + 1] = till
      leased[#leased + 1] = id
      out[#out + 1] = id
      out[#out + 1] = ps[k]
    else
      gone[#gone + 1] = id
    end
  end
end
bulk('ZADD', z, leased)
bulk('ZREM', z, gone)
local nxt = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
if #nxt == 2 then out[2] = tonumber(nxt[2]) else redis.call('SREM', P .. 'racc', acct) end
return out
