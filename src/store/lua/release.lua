-- Releases the receipts of finished groups as soon as they finished, before their
-- outcomes reach MongoDB. ARGV 3: how long a receipt handed to this node's own
-- worker is leased to it (ms; see `handoff.rs`); ARGV[4..]: records `gid, local,
-- k, k triples (account, receipt id, payload)`, one per group — a whole FRESH batch
-- per script. `local` 1: this node has the account's receiver and sends the receipts
-- from memory, so they are queued leased to it (due at now + lease, not announced);
-- 0: due now and announced, for whichever node has a receiver. Only the caller that
-- removes a gid from `P:fresh` queues its receipts, so a release racing another
-- node's release or the finalize queues them once. Returns `{now, gid…}`: the
-- groups whose receipts this call queued.
local now, lease = now_ms(), tonumber(ARGV[3])
local q, ql = {}, {}
local fresh, recs, gids, seen = P .. 'fresh', {}, {}, {}
local i = 4
while i <= #ARGV do
  local gid, loc, k = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local last = i + 2 + 3 * k
  if not seen[gid] then
    seen[gid] = true
    recs[#recs + 1] = {i + 3, last, loc == '1'}
    gids[#gids + 1] = gid
  end
  i = last + 1
end
-- Which are still fresh, and their removal, in a call per slice rather than a ZREM
-- per group (the script is atomic, so this is the same test-and-remove).
local taken = {}
for i = 1, #gids, 512 do
  local j = math.min(i + 511, #gids)
  local sc = redis.call('ZMSCORE', fresh, unpack(gids, i, j))
  for k = 1, j - i + 1 do
    if sc[k] then
      local r = recs[i + k - 1]
      taken[#taken + 1] = gids[i + k - 1]
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
local out = {now}
for _, gid in ipairs(taken) do out[#out + 1] = gid end
return out
