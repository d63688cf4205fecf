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
-- The records, and which of them are still queued: one ZMSCORE, ZREM and HDEL for the
-- whole call instead of an HDEL and a ZREM per delivery (each redis.call costs Redis
-- its own dispatch and AOF record). An id named twice ends once.
local recs, ids, seen = {}, {}, {}
local i = 6
while i <= #ARGV do
  local k = tonumber(ARGV[i + 4])
  local last = i + 4 + 3 * math.abs(k)
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    recs[#recs + 1] = {i, k, last}
    ids[#ids + 1] = ARGV[i]
  end
  i = last + 1
end
for s = 1, #ids, 512 do
  local e = math.min(s + 511, #ids)
  local sc = redis.call('ZMSCORE', z, unpack(ids, s, e))
  for x = 1, e - s + 1 do
    if sc[x] then took[#took + 1] = ids[s + x - 1] else recs[s + x - 1] = false end
  end
end
bulk('ZREM', z, took)
bulk('HDEL', rd, took)
for _, r in ipairs(recs) do
  if r then
    local b, k, last = r[1], r[2], r[3]
    local gid, seq, result = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
    if k < 0 then
      queue_receipts(b + 5, last, now + lease, ql)
    else
      queue_receipts(b + 5, last, now, q)
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
