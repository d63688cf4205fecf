//! The Lua scripts: every state change of a message is one script, so it is atomic
//! on the Redis server whichever node runs it.
//!
//! Every script takes `ARGV[1]` = key prefix and `ARGV[2]` = node label, and reads the
//! clock with `TIME` inside the script — the one clock all nodes agree on. Key names
//! are built inside the scripts from that prefix (group → `d:<gid>` on finish), so the
//! store needs a standalone Redis/Valkey, not a cluster.
//!
//! Keys (P = prefix; see ARCHITECTURE.md "Store, expiry and outcomes"):
//! `P:g:<gk>` pending group hash (small fields: a listpack) · expiry timer per deadline
//! bucket (see `arm`): field `#<bucket end ms>` of the hash `P:timers` (hash-field
//! expiration) or key `P:t:#<bucket end ms>` (Redis 7.0) · `P:deadlines` ZSET gk→deadline
//! · `P:m:<message_id>` "gid len(gk) gk" LF segment record · `P:d:<gid>` finished group hash · `P:outbox` ZSET
//! gid→lease-until · `P:fresh` ZSET finished gids whose receipts are not released yet
//! · `P:r:<acct>` ZSET receipt→due · `P:rd:<acct>` hash receipt→payload
//! · `P:racc` SET of accounts with receipts · `P:node_seq` node epoch counter
//! · channels `P:receipts` (accounts with new receipts), `P:armed` (new deadlines).

use redis::Script;

/// Shared Lua helpers, prepended to each script.
const PRELUDE: &str = r#"
local P = ARGV[1]
local NODE = ARGV[2]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Runs `cmd [key] t...` over the list t in slices: unpack() takes a few thousand
-- values at most (Lua's C stack). One call per slice instead of one per element:
-- each redis.call costs ~3 µs beyond its command (BENCHMARKS.md), so a batch script
-- updates an index once for all its groups. Slices of 1024 keep pairs together.
local function bulk(cmd, key, t)
  for i = 1, #t, 1024 do
    local j = math.min(i + 1023, #t)
    if key then redis.call(cmd, key, unpack(t, i, j)) else redis.call(cmd, unpack(t, i, j)) end
  end
end
-- The server's expiry timers are per deadline *bucket* of BUCKET ms, not per group:
-- the bucket ending at b (ms, a multiple of BUCKET) holds the deadlines in
-- (b - BUCKET, b] and its timer expires at b, so it fires at or after each of them
-- (at most BUCKET late). Why: the server's timer is the backstop for a deadline no
-- node's local timer set watches (those claim at the deadline itself); a key (or
-- field) per group cost Redis ~160 B per pending message, a SET per new group and an
-- expiry + event + AOF record per deadline, and with a key per group Redis 7.0's
-- sampling finds a lone due key only after ~(keys with a TTL)/(20 x hz) seconds —
-- minutes at 1M pending. A bucket's timer stays when its groups complete early only
-- until `drop_empty_buckets` sees none left. Names: P:t:#<b> (Redis 7.0), field #<b>
-- of P:timers (hash-field expiration).
local BUCKET = 1000
local function bucket_of(dl) return math.ceil(dl / BUCKET) * BUCKET end
local function bucket_name(b) return '#' .. string.format('%d', b) end
-- Buckets this script call armed already: a batch arms each once.
local armed_buckets = {}
-- Arms the expiry timer of a group's deadline, separate from the group's data (which
-- stays readable when the expiry event fires). Where the server has hash-field
-- expiration: a field of the ONE hash P:timers — the server samples keys with
-- volatile fields (late with many keys) but expires the fields of one key in deadline
-- order (by time buckets of at most 8192 ms). Else a key P:t:#<b> with PXAT.
-- Announced on P:armed ("<deadline_ms> <gk>") so every node's local timer heap
-- watches it, whichever node stored it (a node's heap is loaded from P:deadlines only
-- when it (re)subscribes).
local function arm(gk, dl, hfe)
  local b = bucket_of(dl)
  if not armed_buckets[b] then
    armed_buckets[b] = true
    local name = bucket_name(b)
    if hfe == '1' then
      local t = P .. 'timers'
      if redis.call('HSETNX', t, name, '1') == 1 then
        redis.call('HPEXPIREAT', t, b, 'FIELDS', 1, name)
      end
    else
      redis.call('SET', P .. 't:' .. name, '1', 'PXAT', b, 'NX')
    end
  end
  redis.call('PUBLISH', P .. 'armed', string.format('%d', dl) .. ' ' .. gk)
end
-- Deletes the timers of the buckets of deadlines `dls` (numbers or false) that no
-- pending group has any more (run after the groups left P:deadlines), so that nothing
-- of a message that finished early stays behind. Expired groups' buckets are due and
-- left alone (see finish_flush).
local function drop_empty_buckets(dls, hfe)
  local seen = {}
  for _, dl in ipairs(dls) do
    if dl then
      local b = bucket_of(tonumber(dl))
      if not seen[b] then
        seen[b] = true
        if redis.call('ZCOUNT', P .. 'deadlines', '(' .. string.format('%d', b - BUCKET), b) == 0 then
          if hfe ~= '0' then redis.call('HDEL', P .. 'timers', bucket_name(b)) end
          if hfe ~= '1' then redis.call('DEL', P .. 't:' .. bucket_name(b)) end
        end
      end
    end
  end
end
-- A pending group leaves the pending area for the outbox: renamed to d:<gid> (its
-- data intact); its deadline index entry, timer and queue entries are collected in
-- `fin` and written by finish_flush, once per script for all the groups it finished.
local function new_fin() return {gks = {}, ob = {}} end
local function finish_group(gk, gid, state, now, fin)
  local g = P .. 'g:' .. gk
  -- No gk: d:<gid> no longer says it in its name, but every segment record does
  -- (model::FinishedGroup::from_fields and lookup take it from there).
  redis.call('HSET', g, 'state', state, 'fin', now, 'node', NODE)
  redis.call('RENAME', g, P .. 'd:' .. gid)
  fin.gks[#fin.gks + 1] = gk
  fin.ob[#fin.ob + 1] = now
  fin.ob[#fin.ob + 1] = gid
end
-- hfe: '1' (timers are fields of P:timers), '0' (keys P:t:...) or nil (not known
-- to the script: both). `early`: the groups finished before their deadlines
-- (completed, cancelled). Then "- <gk>" is announced on P:armed so that every node's
-- timer set drops them, and the timers of their buckets go if no other pending group
-- is in them (`drop_empty_buckets`).
-- For expired groups (not early) the bucket timers are due already and left for
-- Redis to delete when its expiry finds them (a DEL of a due key is an expiry itself
-- — deletion, an `expired` event, propagation — inside the claim that holds Redis:
-- 300k partials, claim-due 4.5 -> 3.4 ms per call without it, SLOWLOG 2026-12-03);
-- the local entries fire once more, find nothing and are dropped.
local function finish_flush(fin, hfe, early)
  local gks = fin.gks
  if #gks == 0 then return end
  local dls = nil
  if early then
    dls = {}
    for i = 1, #gks, 1024 do
      local j = math.min(i + 1023, #gks)
      local sc = redis.call('ZMSCORE', P .. 'deadlines', unpack(gks, i, j))
      for k = 1, j - i + 1 do dls[i + k - 1] = sc[k] end
    end
  end
  bulk('ZREM', P .. 'deadlines', gks)
  if early then
    drop_empty_buckets(dls, hfe)
    for _, gk in ipairs(gks) do redis.call('PUBLISH', P .. 'armed', '- ' .. gk) end
  end
  bulk('ZADD', P .. 'outbox', fin.ob)
  bulk('ZADD', P .. 'fresh', fin.ob)
end
-- Collects the receipts ARGV[first..last] (triples account, receipt id, payload), due
-- at `due`, per account in q; flush_receipts writes each account's at once.
local function queue_receipts(first, last, due, q)
  for i = first, last, 3 do
    local acct = ARGV[i]
    local a = q[acct]
    if not a then
      a = {h = {}, z = {}}
      q[acct] = a
    end
    a.h[#a.h + 1] = ARGV[i + 1]
    a.h[#a.h + 1] = ARGV[i + 2]
    a.z[#a.z + 1] = due
    a.z[#a.z + 1] = ARGV[i + 1]
  end
end
-- Writes the collected receipts, one HSET/ZADD/SADD per account; `tell` announces the
-- account on P:receipts (every node's receipt dispatcher listens).
local function flush_receipts(q, tell)
  for acct, a in pairs(q) do
    bulk('HSET', P .. 'rd:' .. acct, a.h)
    bulk('ZADD', P .. 'r:' .. acct, a.z)
    redis.call('SADD', P .. 'racc', acct)
    if tell then redis.call('PUBLISH', P .. 'receipts', acct) end
  end
end
-- HGETALL of a finished group hash, plus `m:<seq>` = the segment record from
-- P:m:<id> for each `i:<seq>` field (a multi-part message; a single-part one holds
-- its record in its own `m:1` field and has no `i:` field).
local function group_fields(d)
  local f = redis.call('HGETALL', d)
  -- One pass over the field names by their first two octets (string.byte makes no
  -- string, string.sub does: two per field per pass made this a third of the lease).
  local n = #f
  for i = 1, n, 2 do
    local c1, c2 = string.byte(f[i], 1, 2)
    if c1 == 105 and c2 == 58 then -- 'i:'
      local r = redis.call('GET', P .. 'm:' .. f[i + 1])
      if r then
        f[#f + 1] = 'm:' .. string.sub(f[i], 3)
        f[#f + 1] = r
      end
    end
  end
  return f
end
"#;

/// Accepts a batch of segments (group commit: the node sends the submits that arrived
/// while its previous batches were in flight as one call, see `submit_batch.rs`), each
/// exactly as if it were alone, in order.
///
/// ARGV: 3 max_pending, 4 hfe (1/0), 5 how long a receipt is held (ms), then records,
/// each `n` followed by its n fields: 1 gk, 2 seq, 3 total, 4 message_id, 5 deadline_ms,
/// 6 service_type, 7 the tail of the segment record (`StoredSegment::record_tail`), 8
/// for a single-part message its time (ms, the node's reading of Redis time, which its
/// receipt already carries) and 9.. the receipt triple if one is owed (see `ready.rs`);
/// for a multi-part one the expiry mode code (`x`). (The account and source are the
/// group key's: nothing stores them apart any more.)
///
/// A multi-part group hash holds only small fields (its facts are the group key
/// plus `st` and `x`; per segment only `i:<seq>`), so Redis keeps it as a listpack;
/// each segment's data is the value of its `P:m:<id>` key, which query/cancel/replace
/// need anyway: `<gid or => <len of gk> <gk>` LF `<received_ms> <dc> <esm> <rd> <uo> <rid>` LF
/// raw (the length because a gk may hold any octet but NUL, LF included).
///
/// Returns one reply per record: `{'stored'}`, `{'complete', gid}`, `{'complete', gid,
/// held_until}` (a single-part message whose receipt is held), `{'complete', gid,
/// {fields…}}` (a multi-part message: its group as `group_fields` reads it), `{'dup',
/// original_message_id}`, `{'full'}`, `{'expired'}` or `{'err', message}` (a command of
/// that record failed — out of memory, say; the other records are unaffected). The
/// indexes (deadlines, outbox, receipts) are written once for the batch, at its end.
const SUBMIT: &str = r#"
local max_pending, hfe, hold = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now = now_ms()
-- Pending count, read once per batch and kept up to date as records are admitted
-- (a new group enters the deadlines, a single-part message the outbox).
local pending = nil
local function admit(dl)
  if not pending then
    pending = redis.call('ZCARD', P .. 'deadlines') + redis.call('ZCARD', P .. 'outbox')
  end
  if pending >= max_pending then return {'full'} end
  if dl <= now then return {'expired'} end
  pending = pending + 1
  return nil
end
local fin, dls, ob, q = new_fin(), {}, {}, {}
local function one(b, last)
  local gk, seq, total, mid, dl = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], tonumber(ARGV[b + 4])
  if total == 1 then
    -- A single-part message is complete on arrival: written once, straight as the
    -- finished group d:<message_id> (what finish_group() would leave), no pending hash,
    -- no timer, no P:m: key (lookup finds d:<message_id> itself). Its receipt, built by
    -- the node with the same time, is queued here too, so it never passes through
    -- P:fresh and RELEASE. Most traffic is single-part.
    local refused = admit(dl)
    if refused then return refused end
    local at = ARGV[b + 7]
    -- Eight fields, as a multi-part message keeps them: its facts are its group key
    -- gk plus st (no meta JSON), its segment a binary record `= 0 ` LF `<at> <tail>`
    -- (the form of a P:m: value with an empty group key; no JSON, no hex). What a
    -- reader can derive is not written: r:1 and fin are sub, i:1 is gid, acct and src
    -- are in gk (model::FinishedGroup::from_fields, QUERY and lookup fill them in).
    -- Each field of this hash (a hashtable: m:1 is over 64 octets) is an entry and
    -- two allocations in Redis, at every single-part submit.
    redis.call('HSET', P .. 'd:' .. mid, 'gid', mid, 'gk', gk, 'st', ARGV[b + 5],
      'dl', ARGV[b + 4], 'sub', at, 'm:1', '= 0 \n' .. at .. ' ' .. ARGV[b + 6],
      'state', 'complete', 'node', NODE)
    ob[#ob + 1] = now
    ob[#ob + 1] = mid
    if last >= b + 10 then
      -- Held, not announced: due once the node queued the submit_sm_resp
      -- (RECEIPT_READY), or at held_until if it never says so.
      local held = now + hold
      queue_receipts(b + 8, last, held, q)
      return {'complete', mid, held}
    end
    return {'complete', mid}
  end
  local g = P .. 'g:' .. gk
  local known = redis.call('HMGET', g, 'gid', 'i:' .. seq, 'n')
  local gid, n = known[1], nil
  if not gid then
    local refused = admit(dl)
    if refused then return refused end
    gid, n = mid, 1
    -- The group and its first segment in one call.
    -- Nothing the key name says (gk, and from it account, source and total: see
    -- gk_owner) is stored again: ~110 B less per pending group, and a group key of
    -- over 64 octets no longer turns the hash into a hashtable. Nor does d:<gid>
    -- get it back: every segment record names it.
    redis.call('HSET', g, 'gid', mid, 'st', ARGV[b + 5], 'x', ARGV[b + 7], 'dl', dl,
      'sub', now, 'n', 1, 'i:' .. seq, mid)
    dls[#dls + 1] = dl
    dls[#dls + 1] = gk
    arm(gk, dl, hfe)
  elseif known[2] then
    return {'dup', known[2]}
  else
    -- n read with the HMGET above: one HSET instead of HSET + HINCRBY (a redis.call
    -- costs ~3 µs beyond its command).
    n = (tonumber(known[3]) or 0) + 1
    redis.call('HSET', g, 'i:' .. seq, mid, 'n', n)
  end
  -- '=' for the gid when it is this segment's own message id (a group is named
  -- after its first segment): 19 octets less, which for a full 153-octet segment
  -- takes the value under Redis' 256-octet allocation class (-64 B per group).
  local own = gid == mid and '=' or gid
  redis.call('SET', P .. 'm:' .. mid, own .. ' ' .. #gk .. ' ' .. gk .. '\n' .. now .. ' ' .. ARGV[b + 6])
  if n >= total then
    finish_group(gk, gid, 'complete', now, fin)
    -- Its data goes back with the answer, for the node's releaser (see
    -- release::Completed): the same read FRESH would make, without FRESH's call.
    return {'complete', gid, group_fields(P .. 'd:' .. gid)}
  end
  return {'stored'}
end
local out, i = {}, 6
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local ok, r = pcall(one, i + 1, i + n)
  if ok then
    out[#out + 1] = r
  else
    -- A failed redis.call raises its error reply as a table {err = ...}.
    out[#out + 1] = {'err', type(r) == 'table' and tostring(r.err) or tostring(r)}
  end
  i = i + n + 1
end
-- The deadlines first: a group opened and completed in this batch is removed from
-- them by finish_flush.
bulk('ZADD', P .. 'deadlines', dls)
finish_flush(fin, hfe, true)
bulk('ZADD', P .. 'outbox', ob)
flush_receipts(q, false)
return out
"#;

/// The claim-due pass in one script per batch: claims up to ARGV[3] groups whose
/// deadline passed by Redis time (ARGV 4 hfe). Returns `{n_listed, {lateness_ms of
/// each claimed…}, gid, {hash fields… + segment records (`group_fields`)}, …}` (a
/// listed group already gone is only removed from the index). The claimed groups'
/// data goes back with the claim so that the node releases their receipts without a
/// FRESH read of the same hashes (which was the bound of expiry lateness at 1M
/// pending: BENCHMARKS.md); they are in `P:fresh` all the same, for any node to
/// release if this one does not. Per group HMGET, HSET, RENAME and the read (an
/// HGETALL of the pending hash first, `gid` and `dl` taken from it, measured slower:
/// expiry p99 0.36 -> 0.78 s, 300k partials, 2026-12-03); the index, timer and outbox
/// updates are one call each for the batch (`finish_flush`).
const CLAIM_DUE: &str = r#"
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
"#;

/// Leases up to ARGV[3] finished groups from the outbox for ARGV[4] ms, recording the
/// holder (node label, node epoch ARGV[5]) in `ln`/`le` of `d:<gid>` for [`RECLAIM`].
/// Returns `{now, next_score or -1, gid, …}`: ids only — the writer takes the groups
/// this node holds in memory (`known.rs`) and reads the rest with [`READ_GROUPS`].
/// A listed gid whose group is gone is only removed from the outbox.
const LEASE: &str = r#"
local now = now_ms()
local ob = P .. 'outbox'
local ids = redis.call('ZRANGEBYSCORE', ob, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out, leased, gone = {now, -1}, {}, {}
local till = now + tonumber(ARGV[4])
for _, gid in ipairs(ids) do
  local d = P .. 'd:' .. gid
  -- HSET would create a gone group's hash; every finished group has a gid field.
  if redis.call('HEXISTS', d, 'gid') == 0 then
    gone[#gone + 1] = gid
  else
    redis.call('HSET', d, 'ln', NODE, 'le', ARGV[5])
    leased[#leased + 1] = till
    leased[#leased + 1] = gid
    out[#out + 1] = gid
  end
end
bulk('ZADD', ob, leased)
bulk('ZREM', ob, gone)
local nxt = redis.call('ZRANGE', ob, 0, 0, 'WITHSCORES')
if #nxt == 2 then out[2] = tonumber(nxt[2]) end
return out
"#;

/// The finished groups ARGV[3..] (gids): `{hash fields… + segment records
/// (`group_fields`)}` each, `{}` for one that is gone.
const READ_GROUPS: &str = r#"
local out = {}
for i = 3, #ARGV do out[#out + 1] = group_fields(P .. 'd:' .. ARGV[i]) end
return out
"#;

/// At start: leases still running that an earlier process of this node (same node
/// label, older epoch ARGV[3]) holds are due now — that process is gone, and waiting
/// for their end would delay its outcomes by a whole lease. Should it still be alive
/// (two processes misconfigured with one node_id), both write: the insert is
/// idempotent by `_id` and finalize acts once. Returns how many were taken back.
const RECLAIM: &str = r#"
local now = now_ms()
local ob = P .. 'outbox'
local n = 0
for _, gid in ipairs(redis.call('ZRANGEBYSCORE', ob, '(' .. now, '+inf')) do
  local h = redis.call('HMGET', P .. 'd:' .. gid, 'ln', 'le')
  if h[1] == NODE and h[2] and tonumber(h[2]) < tonumber(ARGV[3]) then
    redis.call('ZADD', ob, now, gid)
    n = n + 1
  end
end
return n
"#;

/// Finished groups whose receipts were not released yet (`P:fresh`), up to ARGV[3]:
/// `{gid, {hash fields…}, …}`; a gid whose group is gone is dropped from the set.
const FRESH: &str = r#"
local f = P .. 'fresh'
local out = {}
for _, gid in ipairs(redis.call('ZRANGE', f, 0, tonumber(ARGV[3]) - 1)) do
  local d = group_fields(P .. 'd:' .. gid)
  if #d == 0 then
    redis.call('ZREM', f, gid)
  else
    out[#out + 1] = gid
    out[#out + 1] = d
  end
end
return out
"#;

/// Releases the receipts of finished groups as soon as they finished, before their
/// outcomes reach MongoDB. ARGV 3: how long a receipt handed to this node's own
/// worker is leased to it (ms; see `handoff.rs`); ARGV[4..]: records `gid, local,
/// k, k triples (account, receipt id, payload)`, one per group — a whole FRESH batch
/// per script. `local` 1: this node has the account's receiver and sends the receipts
/// from memory, so they are queued leased to it (due at now + lease, not announced);
/// 0: due now and announced, for whichever node has a receiver. Only the caller that
/// removes a gid from `P:fresh` queues its receipts, so a release racing another
/// node's release or the finalize queues them once. Returns `{now, gid…}`: the
/// groups whose receipts this call queued.
const RELEASE: &str = r#"
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
"#;

/// After MongoDB acknowledged the outcomes of a batch: ARGV[3..] records `gid, k, s,
/// 3k receipt values, s message ids`, one per group: k = -1 (no receipt values) when
/// the writer saw the gid absent from `P:fresh` (its receipts were released, and a gid
/// never re-enters it), else its receipt triples as for [`RELEASE`]; the message ids
/// name the segment records `P:m:<id>`. For each group still there: delete every key
/// of the message in one DEL (only the first caller deletes anything), and queue its
/// receipts only if it removes the gid from `P:fresh`. The outbox entries go in one
/// ZREM for the batch. Returns how many groups were finalized.
const FINALIZE: &str = r#"
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
"#;

/// Takes up to ARGV[4] due receipts of account ARGV[3], leasing them for ARGV[5] ms.
/// Returns `{now, next_score or -1, id, payload, id, payload, …}`.
const RECEIPT_TAKE: &str = r#"
local acct = ARGV[3]
local z, h = P .. 'r:' .. acct, P .. 'rd:' .. acct
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out, leased, gone = {now, -1}, {}, {}
local till = now + tonumber(ARGV[5])
for i = 1, #ids, 512 do
  local j = math.min(i + 511, #ids)
  local ps = redis.call('HMGET', h, unpack(ids, i, j))
  for k = 1, j - i + 1 do
    local id = ids[i + k - 1]
    if ps[k] then
      leased[#leased + 1] = till
      leased[#leased + 1] = id
      out[#out + 1] = id
      out[#out + 1] = ps[k]
    else
      gone[#gone + 1] = id
    end
  end
end
bulk('ZADD', z, leased)
bulk('ZREM', z, gone)
local nxt = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
if #nxt == 2 then out[2] = tonumber(nxt[2]) else redis.call('SREM', P .. 'racc', acct) end
return out
"#;

/// Receipts done (delivered or dropped): ARGV 3 account, 4.. receipt ids.
const RECEIPT_DONE: &str = r#"
local acct = ARGV[3]
local z, h = P .. 'r:' .. acct, P .. 'rd:' .. acct
-- unpack() in slices: Lua's C stack takes a few thousand arguments at most.
for i = 4, #ARGV, 512 do
  local j = math.min(i + 511, #ARGV)
  redis.call('ZREM', z, unpack(ARGV, i, j))
  redis.call('HDEL', h, unpack(ARGV, i, j))
end
if redis.call('ZCARD', z) == 0 then redis.call('SREM', P .. 'racc', acct) end
return 1
"#;

/// Makes held receipts due now (their submit_sm_resp is queued; see `ready.rs`):
/// ARGV[3..] triples account, receipt id, held_until. A receipt no longer at its
/// held_until score was taken already (its hold ended) and is left alone.
const RECEIPT_READY: &str = r#"
local now, by_acct = now_ms(), {}
for i = 3, #ARGV, 3 do
  local a = by_acct[ARGV[i]]
  if not a then
    a = {ids = {}, held = {}}
    by_acct[ARGV[i]] = a
  end
  a.ids[#a.ids + 1] = ARGV[i + 1]
  a.held[#a.held + 1] = tonumber(ARGV[i + 2])
end
for acct, a in pairs(by_acct) do
  local z, due = P .. 'r:' .. acct, {}
  for i = 1, #a.ids, 512 do
    local j = math.min(i + 511, #a.ids)
    local s = redis.call('ZMSCORE', z, unpack(a.ids, i, j))
    for k = 1, j - i + 1 do
      if s[k] and tonumber(s[k]) == a.held[i + k - 1] then
        due[#due + 1] = now
        due[#due + 1] = a.ids[i + k - 1]
      end
    end
  end
  if #due > 0 then
    bulk('ZADD', z, due)
    redis.call('PUBLISH', P .. 'receipts', acct)
  end
end
return 1
"#;

/// Puts a receipt back: ARGV 3 account, 4 id, 5 delay ms, 6 new payload. Due at once
/// (the node that tried has no receiver of the account after all) it is announced, so
/// that a node that has one sends it now: receipts sent from memory are never
/// announced otherwise (see `handoff.rs`).
const RECEIPT_RETRY: &str = r#"
local acct = ARGV[3]
local h = P .. 'rd:' .. acct
if redis.call('HEXISTS', h, ARGV[4]) == 0 then return 0 end
redis.call('HSET', h, ARGV[4], ARGV[6])
local delay = tonumber(ARGV[5])
redis.call('ZADD', P .. 'r:' .. acct, now_ms() + delay, ARGV[4])
if delay == 0 then redis.call('PUBLISH', P .. 'receipts', acct) end
return 1
"#;

/// Finds the pending group of message_id ARGV[3] if it belongs to account ARGV[4] and
/// (when ARGV[5] is not empty) source ARGV[5]. Returns `{gid, gk}`, `{'final', gid}`
/// (finished, not yet in MongoDB), or `{}`.
const LOOKUP_FN: &str = r#"
-- The P:m:<mid> value: `<gid> <len of gk> <gk>` LF segment record
-- (model::SegmentKey), where gid `=` means mid itself. Returns gid, gk and where the
-- record's header starts.
local function split_m(v, mid)
  local sp = string.find(v, ' ', 1, true)
  local gid = string.sub(v, 1, sp - 1)
  if gid == '=' then gid = mid end
  local sp2 = string.find(v, ' ', sp + 1, true)
  local e = sp2 + tonumber(string.sub(v, sp + 1, sp2 - 1))
  return gid, string.sub(v, sp2 + 1, e), e + 2
end
-- The account and source a group key names: "<len>:<account>|<len>:<source>|..."
-- (model::group_key); no hash repeats them.
local function gk_owner(gk)
  local c = string.find(gk, ':', 1, true)
  if not c then return nil, nil end
  local n = tonumber(string.sub(gk, 1, c - 1))
  if not n then return nil, nil end
  local acct, i = string.sub(gk, c + 1, c + n), c + n + 2
  local c2 = string.find(gk, ':', i, true)
  if not c2 then return acct, nil end
  local n2 = tonumber(string.sub(gk, i, c2 - 1))
  if not n2 then return acct, nil end
  return acct, string.sub(gk, c2 + 1, c2 + n2)
end
local function lookup(mid, acct, src)
  local v = redis.call('GET', P .. 'm:' .. mid)
  local gid, gk
  if v then
    gid, gk = split_m(v, mid)
  elseif redis.call('EXISTS', P .. 'd:' .. mid) == 1 then
    -- A single-part message has no m: key; it is d:<its message_id> until finalized.
    gid, gk = mid, '1|' .. mid
  else
    return nil
  end
  local g = P .. 'g:' .. gk
  local h = g
  if redis.call('HGET', g, 'gid') ~= gid then h = P .. 'd:' .. gid end
  -- The group key names the owner (a single-part message's own gk field: the gk
  -- above is only a name for it).
  local o = redis.call('HMGET', h, 'gid', 'gk')
  if not o[1] then return nil end
  local a, s = gk_owner(o[2] or gk)
  if a ~= acct then return nil end
  if src ~= '' and s ~= src then return nil end
  return gid, gk, h == g, h
end
"#;

/// query_sm: ARGV 3 message_id, 4 account, 5 source. Returns `{}` (unknown here),
/// `{'pending'}` or `{'final', state, fin_ms, expiry mode code or ''}` (no code: a
/// single-part message, which cannot be partial).
const QUERY: &str = r#"
local gid, gk, pending, h = lookup(ARGV[3], ARGV[4], ARGV[5])
if not gid then return {} end
if pending then return {'pending'} end
local f = redis.call('HMGET', h, 'state', 'fin', 'x', 'sub')
-- A single-part message has no fin: it finished when it was submitted.
return {'final', f[1], f[2] or f[4], f[3] or ''}
"#;

/// cancel_sm: ARGV 3 message_id, 4 account, 5 source. Returns `{'ok', gid}`,
/// `{'final'}` or `{}`.
const CANCEL: &str = r#"
local gid, gk, pending = lookup(ARGV[3], ARGV[4], ARGV[5])
if not gid then return {} end
if not pending then return {'final'} end
local fin = new_fin()
finish_group(gk, gid, 'cancelled', now_ms(), fin)
finish_flush(fin, nil, true)
return {'ok', gid}
"#;

/// replace_sm of a pending segment: ARGV 3 message_id, 4 account, 5 source,
/// 6 offset of the user data in the new short_message (its UDH length), 7 new raw
/// short_message (binary), 8 registered_delivery,
/// 9 new deadline ms or '' (keep), 10 hfe. Returns `{'ok', gk, deadline_ms}`,
/// `{'final'}`, `{'expired'}` or `{}`.
const REPLACE: &str = r#"
local mid = ARGV[3]
local gid, gk, pending, g = lookup(mid, ARGV[4], ARGV[5])
if not gid then return {} end
if not pending then return {'final'} end
local seq = nil
local f = redis.call('HGETALL', g)
for i = 1, #f, 2 do
  if string.sub(f[i], 1, 2) == 'i:' and f[i + 1] == mid then seq = string.sub(f[i], 3) end
end
if not seq then return {} end
local now = now_ms()
if ARGV[9] ~= '' then
  local dl = tonumber(ARGV[9])
  if dl <= now then return {'expired'} end
  local before = redis.call('HGET', g, 'dl')
  -- Only a multi-part message is ever pending (a single-part one is complete on
  -- arrival), so it has a deadline index entry and a timer.
  redis.call('HSET', g, 'dl', dl)
  redis.call('ZADD', P .. 'deadlines', dl, gk)
  drop_empty_buckets({before}, ARGV[10])
  arm(gk, dl, ARGV[10])
end
-- The segment record: keep its first line, dc, esm and rid; new time, rd, uo, data.
local mk = P .. 'm:' .. mid
local v = redis.call('GET', mk)
local _, _, hs = split_m(v, mid)
local he = string.find(v, '\n', hs, true)
local _, dc, esm, _, _, rid = string.match(string.sub(v, hs, he - 1),
  '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
redis.call('SET', mk, string.sub(v, 1, hs - 1) .. now .. ' ' .. dc .. ' ' .. esm .. ' ' ..
  ARGV[8] .. ' ' .. ARGV[6] .. ' ' .. rid .. '\n' .. ARGV[7])
return {'ok', gk, redis.call('HGET', g, 'dl')}
"#;

/// The compiled scripts (each sent once, then run by SHA).
pub struct Scripts {
    pub submit: Script,
    pub claim_due: Script,
    pub lease: Script,
    pub read_groups: Script,
    pub reclaim: Script,
    pub finalize: Script,
    pub fresh: Script,
    pub release: Script,
    pub receipt_take: Script,
    pub receipt_done: Script,
    pub receipt_retry: Script,
    pub receipt_ready: Script,
    pub query: Script,
    pub cancel: Script,
    pub replace: Script,
}

impl Scripts {
    /// Every script with its name (for SLOWLOG and INFO by script, and loading).
    fn all(&self) -> [(&'static str, &Script); 15] {
        [
            ("submit", &self.submit),
            ("claim_due", &self.claim_due),
            ("lease", &self.lease),
            ("read_groups", &self.read_groups),
            ("reclaim", &self.reclaim),
            ("finalize", &self.finalize),
            ("fresh", &self.fresh),
            ("release", &self.release),
            ("receipt_take", &self.receipt_take),
            ("receipt_done", &self.receipt_done),
            ("receipt_retry", &self.receipt_retry),
            ("receipt_ready", &self.receipt_ready),
            ("query", &self.query),
            ("cancel", &self.cancel),
            ("replace", &self.replace),
        ]
    }

    /// "name=sha1 …" of every script, for reading SLOWLOG and INFO by script
    /// (`scripts/ab.sh` with `AB_SLOWLOG=1`).
    pub fn hashes(&self) -> String {
        self.all()
            .iter()
            .map(|(n, s)| format!("{n}={}", s.get_hash()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Loads every script into the server's script cache (SCRIPT LOAD). Why at
    /// start: an invocation that meets NOSCRIPT loads its script and runs again, and
    /// a submit batch sent after it may run in between — two batches in flight then
    /// run out of order (a resent segment behind its original, say, could find the
    /// message already completed). After a Redis restart (an empty script cache)
    /// that can still happen once; see ARCHITECTURE.md "Accepting a segment".
    pub async fn load<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<()> {
        for (_, s) in self.all() {
            s.load_async(conn).await?;
        }
        Ok(())
    }
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{LOOKUP_FN}{body}"))
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            submit: script(SUBMIT),
            claim_due: script(CLAIM_DUE),
            lease: script(LEASE),
            read_groups: script(READ_GROUPS),
            reclaim: script(RECLAIM),
            finalize: script(FINALIZE),
            fresh: script(FRESH),
            release: script(RELEASE),
            receipt_take: script(RECEIPT_TAKE),
            receipt_done: script(RECEIPT_DONE),
            receipt_retry: script(RECEIPT_RETRY),
            receipt_ready: script(RECEIPT_READY),
            query: script(QUERY),
            cancel: script(CANCEL),
            replace: script(REPLACE),
        }
    }
}
