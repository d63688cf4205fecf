-- Deliveries of forwarded messages that ended (the receiver answered ESME_ROK or a
-- permanent refusal): ARGV[3] the receiving account, ARGV[4] hfe (see `arm`), ARGV[5]
-- how long receipts sent from this node's memory are leased to it (ms), then records
-- `id, gid, seq, result, k, |k| receipt triples` (result: `model::DeliveryResult`; the
-- triples: the sender's receipts of the segments it carries; k < 0: the sender's
-- receiver is bound on this node, which sends them from memory, so they are queued
-- leased to it, not announced). For each still queued: it leaves the account's
-- queue, its segments' result is kept in d:<gid> (`r:<seq>`), its receipts are queued,
-- and when it was the message's last delivery (`o` reaches 0) the message is `done`:
-- its deadline entry '@<gid>' goes (with its bucket's timer when no other deadline is
-- in it), and it enters the outbox (not P:fresh: its receipts are queued already). An
-- id no longer queued (the deadline ended it, or another node's send ended it first)
-- changes nothing. Returns `{gids that are done}, {ids of the deliveries it ended}`.
local acct, hfe, lease = ARGV[3], ARGV[4], tonumber(ARGV[5])
local z, rd = P .. 'r:' .. acct, P .. 'rd:' .. acct
local now = now_ms()
local out, ended, entries, q, ql, took = {}, {}, {}, {}, {}, {}
local i = 6
while i <= #ARGV do
  local id, gid, seq, result = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local k = tonumber(ARGV[i + 4])
  local first, last = i + 5, i + 4 + 3 * math.abs(k)
  i = last + 1
  if redis.call('HDEL', rd, id) == 1 then
    redis.call('ZREM', z, id)
    took[#took + 1] = id
    if k < 0 then
      queue_receipts(first, last, now + lease, ql)
    else
      queue_receipts(first, last, now, q)
    end
    local d = P .. 'd:' .. gid
    local h = redis.call('HMGET', d, 'state', 'o')
    if h[1] == 'routed' then
      local o = (tonumber(h[2]) or 1) - 1
      -- seq 0: a reassembled message's one delivery, the result of all its segments.
      local rs = {'r:' .. seq, result}
      if seq == '0' then rs = results_for_all(d, gid, result) end
      if o <= 0 then
        redis.call('HSET', d, 'o', 0, 'state', 'done', 'fin', now, unpack(rs))
        ended[#ended + 1] = now
        ended[#ended + 1] = gid
        entries[#entries + 1] = '@' .. gid
        out[#out + 1] = gid
      else
        redis.call('HSET', d, 'o', o, unpack(rs))
      end
    end
  end
end
if #entries > 0 then
  local dls = redis.call('ZMSCORE', P .. 'deadlines', unpack(entries))
  redis.call('ZREM', P .. 'deadlines', unpack(entries))
  drop_empty_buckets(dls, hfe)
end
bulk('ZADD', P .. 'outbox', ended)
flush_receipts(q, true)
flush_receipts(ql, false)
if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
return {out, took}
