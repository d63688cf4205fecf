-- After MongoDB acknowledged the outcomes of a batch: ARGV[3..] records `gid, k, s,
-- account, octets, 3k receipt values, s message ids`, one per group: k = -1 (no
-- receipt values) when the writer saw the gid absent from `P:fresh` (its receipts were
-- released, and a gid never re-enters it), else its receipt triples as for
-- [`RELEASE`]; octets: the user data its segments hold (what SUBMIT counted in
-- P:usage); the message ids name the segment records `P:m:<id>`. For each group still
-- there: delete every key of the message in one DEL (only the first caller deletes
-- anything), take it off the account's usage, and queue its receipts only if it
-- removes the gid from `P:fresh`. The outbox entries go in one ZREM for the batch.
-- Returns how many groups were finalized.
local now, q, n, done = now_ms(), {}, 0, {}
local freed, freed_bytes = {}, 0
local i = 3
while i <= #ARGV do
  local gid, k, s = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local acct, octets = ARGV[i + 3], tonumber(ARGV[i + 4])
  local first = i + 5
  local last = first + 3 * math.max(k, 0) - 1
  local keys = {P .. 'd:' .. gid}
  for j = last + 1, last + s do keys[#keys + 1] = P .. 'm:' .. ARGV[j] end
  i = last + s + 1
  done[#done + 1] = gid
  -- A message's keys go together, so none left means another caller finalized it.
  if redis.call('DEL', unpack(keys)) > 0 then
    n = n + 1
    local f = freed[acct]
    if not f then
      f = {n = 0, b = 0}
      freed[acct] = f
    end
    f.n, f.b = f.n + 1, f.b + octets
    freed_bytes = freed_bytes + octets
    if k >= 0 and redis.call('ZREM', P .. 'fresh', gid) == 1 then
      queue_receipts(first, last, now, q)
    end
  end
end
bulk('ZREM', P .. 'outbox', done)
flush_receipts(q, true)
local usage = P .. 'usage'
-- A field that reaches 0 goes: an empty store leaves no usage behind. (Below 0 would
-- be an accounting fault; it stays, visible, rather than be hidden.)
local function take(field, by)
  if by ~= 0 and redis.call('HINCRBY', usage, field, string.format('%d', -by)) == 0 then
    redis.call('HDEL', usage, field)
  end
end
for acct, f in pairs(freed) do
  take('n:' .. acct, f.n)
  take('b:' .. acct, f.b)
end
take('b', freed_bytes)
take('n', n)
return n
