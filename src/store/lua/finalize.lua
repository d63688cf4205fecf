-- After MongoDB acknowledged the outcomes of a batch: ARGV[3..] records `gid, k, s,
-- 3k receipt values, s message ids`, one per group: k = -1 (no receipt values) when
-- the writer saw the gid absent from `P:fresh` (its receipts were released, and a gid
-- never re-enters it), else its receipt triples as for [`RELEASE`]; the message ids
-- name the segment records `P:m:<id>`. For each group still there: delete every key
-- of the message in one DEL (only the first caller deletes anything), and queue its
-- receipts only if it removes the gid from `P:fresh`. The outbox entries go in one
-- ZREM for the batch. Returns how many groups were finalized.
local now, q, n, done = now_ms(), {}, 0, {}
local i = 3
while i <= #ARGV do
  local gid, k, s = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local first = i + 3
  local last = first + 3 * math.max(k, 0) - 1
  local keys = {P .. 'd:' .. gid}
  for j = last + 1, last + s do keys[#keys + 1] = P .. 'm:' .. ARGV[j] end
  i = last + s + 1
  done[#done + 1] = gid
  -- A message's keys go together, so none left means another caller finalized it.
  if redis.call('DEL', unpack(keys)) > 0 then
    n = n + 1
    if k >= 0 and redis.call('ZREM', P .. 'fresh', gid) == 1 then
      queue_receipts(first, last, now, q)
    end
  end
end
bulk('ZREM', P .. 'outbox', done)
flush_receipts(q, true)
return n
