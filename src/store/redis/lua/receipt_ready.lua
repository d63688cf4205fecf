-- Makes held receipts due now (their submit_sm_resp is queued; see `receipts/ready.rs`):
-- ARGV[3..] triples account, receipt id, held_until. A receipt no longer at its
-- held_until score was taken already (its hold ended) and is left alone.
local now, by_acct = now_ms(), {}
for i = 3, #ARGV, 3 do
  local a = by_acct[ARGV[i]]
  if not a then
    a = {ids = {}, held = {}}
    by_acct[ARGV[i]] = a
  end
  a.ids[#a.ids + 1] = ARGV[i + 1]
  a.held[#a.held + 1] = tonumber(ARGV[i + 2])
end
for acct, a in pairs(by_acct) do
  local z, due = P .. 'r:' .. acct, {}
  for i = 1, #a.ids, 512 do
    local j = math.min(i + 511, #a.ids)
    local s = redis.call('ZMSCORE', z, unpack(a.ids, i, j))
    for k = 1, j - i + 1 do
      if s[k] and tonumber(s[k]) == a.held[i + k - 1] then
        due[#due + 1] = now
        due[#due + 1] = a.ids[i + k - 1]
      end
    end
  end
  if #due > 0 then
    bulk('ZADD', z, due)
    redis.call('SPUBLISH', P .. 'receipts', acct)
  end
end
return 1
