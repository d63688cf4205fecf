-- After MongoDB acknowledged the outcomes of a batch (its groups may be of several
-- partitions, see `parts_header`): records `part, gid, k, s, account, octets, 3k
-- receipt values, s message ids`, one per group: k = -1 (no receipt values) when the
-- writer saw the gid absent from its `P:fresh` (its receipts were released, and a gid in
-- the outbox never re-enters it), else its receipt triples as for [`RELEASE`]; octets: the user
-- data its segments hold (what SUBMIT counted in P:usage); the message ids name the
-- pointer keys `P:m:<id>` of decimal and short segment ids. For each group still there: delete every key of the
-- message in one DEL (only the first caller deletes anything), take it off its
-- partition's usage, and queue its receipts only if it removes the gid from `P:fresh`.
-- The outbox entries go in one ZREM per partition. Returns how many groups were
-- finalized.
local prefixes, i = parts_header()
local now, n, st = now_ms(), 0, {}
while i <= #ARGV do
  local k = tonumber(ARGV[i])
  P = prefixes[k]
  local s = st[k]
  if not s then
    s = {q = {}, done = {}, freed = {}, n = 0, bytes = 0}
    st[k] = s
  end
  local gid, nr, sc = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local acct, octets = ARGV[i + 4], tonumber(ARGV[i + 5])
  local first = i + 6
  local last = first + 3 * math.max(nr, 0) - 1
  local keys = {P .. 'd:' .. gid}
  -- Only a decimal or short segment id has a pointer key (`lookup`).
  for j = last + 1, last + sc do
    local id = ARGV[j]
    if id ~= gid and not is_hex(id, 37) then keys[#keys + 1] = P .. 'm:' .. id end
  end
  i = last + sc + 1
  s.done[#s.done + 1] = gid
  -- A message's keys go together, so none left means another caller finalized it.
  if redis.call('DEL', unpack(keys)) > 0 then
    n, s.n = n + 1, s.n + 1
    local f = s.freed[acct]
    if not f then
      f = {n = 0, b = 0}
      s.freed[acct] = f
    end
    f.n, f.b = f.n + 1, f.b + octets
    s.bytes = s.bytes + octets
    if nr >= 0 and redis.call('ZREM', P .. 'fresh', gid) == 1 then
      queue_receipts(first, last, now, s.q)
    end
  end
end
for k, s in pairs(st) do
  P = prefixes[k]
  bulk('ZREM', P .. 'outbox', s.done)
  flush_receipts(s.q, true)
  local usage = P .. 'usage'
  -- A field that reaches 0 goes: an empty store leaves no usage behind. (Below 0
  -- would be an accounting fault; it stays, visible, rather than be hidden.)
  local function take(field, by)
    if by ~= 0 and redis.call('HINCRBY', usage, field, string.format('%d', -by)) == 0 then
      redis.call('HDEL', usage, field)
    end
  end
  for acct, f in pairs(s.freed) do
    take('n:' .. acct, f.n)
    take('b:' .. acct, f.b)
  end
  take('b', s.bytes)
  take('n', s.n)
end
return n
