-- The claim-due pass in one script per batch: claims up to ARGV[3] groups whose
-- deadline passed by Redis time (ARGV 4 hfe). Returns `{n_listed, {lateness_ms of
-- each claimed…}, gid, {hash fields… + segment records (`group_fields`)}, …}` (a
-- listed group already gone is only removed from the index). The claimed groups'
-- data goes back with the claim so that the node releases their receipts without a
-- FRESH read of the same hashes (which was the bound of expiry lateness at 1M
-- pending: BENCHMARKS.md); they are in `P:fresh` all the same, for any node to
-- release if this one does not. Per group HMGET, HSET, RENAME and the read (an
-- HGETALL of the pending hash first, `gid` and `dl` taken from it, measured slower:
-- expiry p99 0.36 -> 0.78 s, 300k partials, 2026-12-03); the index, timer and outbox
-- updates are one call each for the batch (`finish_flush`).
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', P .. 'deadlines', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local late = {}
local out = {#due, late}
local fin, gone = new_fin(), {}
for _, gk in ipairs(due) do
  local h = redis.call('HMGET', P .. 'g:' .. gk, 'dl', 'gid')
  if not h[1] then
    gone[#gone + 1] = gk
  else
    finish_group(gk, h[2], 'expired', now, fin)
    late[#late + 1] = now - tonumber(h[1])
    out[#out + 1] = h[2]
    out[#out + 1] = group_fields(P .. 'd:' .. h[2])
  end
end
bulk('ZREM', P .. 'deadlines', gone)
finish_flush(fin, ARGV[4], false)
return out
