-- Puts a receipt back: ARGV 3 account, 4 id, 5 delay ms, 6 new payload. Due at once
-- (the node that tried has no receiver of the account after all) it is announced, so
-- that a node that has one sends it now: receipts sent from memory are never
-- announced otherwise (see `receipts/handoff.rs`).
local acct = ARGV[3]
local h = P .. 'rd:' .. acct
if redis.call('HEXISTS', h, ARGV[4]) == 0 then return 0 end
redis.call('HSET', h, ARGV[4], ARGV[6])
local delay = tonumber(ARGV[5])
redis.call('ZADD', P .. 'r:' .. acct, now_ms() + delay, ARGV[4])
if delay == 0 then redis.call('SPUBLISH', P .. 'receipts', acct) end
return 1
