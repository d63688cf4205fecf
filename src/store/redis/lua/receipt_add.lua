-- Queues one receipt due now and announces it: ARGV 3 account, 4 id, 5 payload (an
-- intermediate notification of a forwarded message, see `receipts/worker.rs`). Once: an id
-- already queued is left as it is. Returns 1 if queued.
local acct = ARGV[3]
if redis.call('HSETNX', P .. 'rd:' .. acct, ARGV[4], ARGV[5]) == 0 then return 0 end
redis.call('ZADD', P .. 'r:' .. acct, now_ms(), ARGV[4])
redis.call('SADD', P .. 'racc', acct)
redis.call('SPUBLISH', P .. 'receipts', acct)
return 1
