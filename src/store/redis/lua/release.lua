-- Releases the receipts of finished groups as soon as they finished, before their
-- outcomes reach MongoDB; the groups may be of several partitions (`parts_header`).
-- Then: ARGV[a] how long a receipt handed to this node's own worker is leased to it
-- (ms; see `receipts/handoff.rs`), and records `part, gid, local, k, k triples (account, receipt
-- id, payload)`, one per group — a whole FRESH batch per script. `local` 1: this node
-- has the account's receiver and sends the receipts from memory, so they are queued
-- leased to it (due at now + lease, not announced); 0: due now and announced, for
-- whichever node has a receiver; 2 / 3: the same for a forwarded message's
-- deliveries, queued only while the message is still `routed` (else it stays in
-- P:fresh, for its receipts). Only the caller that removes a gid from its
-- `P:fresh` queues its receipts, so a release racing another node's release or the
-- finalize queues them once. Returns `{now, gid…}`: the groups whose receipts this
-- call queued.
local prefixes, a = parts_header()
local now, lease = now_ms(), tonumber(ARGV[a])
local st, seen = {}, {}
local i = a + 1
while i <= #ARGV do
  local k, gid, loc, nr = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local last = i + 3 + 3 * nr
  if not seen[gid] then
    seen[gid] = true
    local s = st[k]
    if not s then
      s = {recs = {}, gids = {}}
      st[k] = s
    end
    s.recs[#s.recs + 1] = {i + 4, last, loc == '1' or loc == '3', loc == '2' or loc == '3'}
    s.gids[#s.gids + 1] = gid
  end
  i = last + 1
end
local out = {now}
for k, s in pairs(st) do
  P = prefixes[k]
  local fresh, q, ql, taken = P .. 'fresh', {}, {}, {}
  -- Which are still fresh, and their removal, in a call per slice rather than a ZREM
  -- per group (the script is atomic, so this is the same test-and-remove).
  for i = 1, #s.gids, 512 do
    local j = math.min(i + 511, #s.gids)
    local sc = redis.call('ZMSCORE', fresh, unpack(s.gids, i, j))
    for x = 1, j - i + 1 do
      local r = s.recs[i + x - 1]
      if sc[x] and r[4] and redis.call('HGET', P .. 'd:' .. s.gids[i + x - 1], 'state') ~= 'routed' then
        sc[x] = false
      end
      if sc[x] then
        taken[#taken + 1] = s.gids[i + x - 1]
        if r[3] then
          queue_receipts(r[1], r[2], now + lease, ql)
        else
          queue_receipts(r[1], r[2], now, q)
        end
      end
    end
  end
  bulk('ZREM', fresh, taken)
  flush_receipts(q, true)
  flush_receipts(ql, false)
  for _, gid in ipairs(taken) do out[#out + 1] = gid end
end
return out
