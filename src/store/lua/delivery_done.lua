-- Deliveries of forwarded messages that ended (the receiver answered ESME_ROK or a
-- permanent refusal): ARGV[3] the receiving account, then records `id, gid, seq,
-- result` (result: `model::DeliveryResult`). For each still queued: it leaves the
-- account's queue, its segment's result is kept in d:<gid> (`r:<seq>`), and when it
-- was the message's last delivery (`o` reaches 0) the message is `done`: its deadline
-- entry '@<gid>' goes, and it enters the outbox and P:fresh (its outcome and its
-- receipts to the sender follow the usual path). An id no longer queued (the deadline
-- ended it, or another node's send ended it first) changes nothing. Returns `gid,
-- {fields…}` of each message that is done (`group_fields`): the node releases its
-- receipts from that, as from a completing submit's, without a FRESH read.
local acct = ARGV[3]
local z, rd = P .. 'r:' .. acct, P .. 'rd:' .. acct
local now = now_ms()
local out, ended = {}, {}
for i = 4, #ARGV, 4 do
  local id, gid, seq, result = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HDEL', rd, id) == 1 then
    redis.call('ZREM', z, id)
    local d = P .. 'd:' .. gid
    if redis.call('HGET', d, 'state') == 'routed' then
      redis.call('HSET', d, 'r:' .. seq, result)
      if redis.call('HINCRBY', d, 'o', -1) <= 0 then
        redis.call('HSET', d, 'state', 'done', 'fin', now)
        redis.call('ZREM', P .. 'deadlines', '@' .. gid)
        redis.call('SPUBLISH', P .. 'armed', '- @' .. gid)
        ended[#ended + 1] = now
        ended[#ended + 1] = gid
        out[#out + 1] = gid
        out[#out + 1] = group_fields(d)
      end
    end
  end
end
bulk('ZADD', P .. 'outbox', ended)
bulk('ZADD', P .. 'fresh', ended)
if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
return out
