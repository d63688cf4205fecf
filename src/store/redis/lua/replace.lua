-- replace_sm of a pending segment: ARGV 3 message_id, 4 account, 5 source,
-- 6 offset of the user data in the new short_message (its UDH length), 7 new raw
-- short_message (binary), 8 registered_delivery,
-- 9 new deadline ms or '' (keep), 10 hfe, 11 the store's and 12 the account's
-- max_pending_bytes (a partition's shares). Returns `{'ok', id, deadline_ms}` (id:
-- the group's, as the index and P:armed name it), `{'final'}`, `{'expired'}`,
-- `{'full', 'store_bytes' | 'account_bytes'}` (the new record would take the octets
-- held past a limit; nothing is changed) or `{}`.
local mid = ARGV[3]
local r = lookup(mid, ARGV[4], ARGV[5])
if not r then return {} end
local pg = r.pending
if not pg then return {'final'} end
-- Only a multi-part message is ever pending (a single-part one is complete on
-- arrival), and a gid names no segment.
if not pg.seq then return {} end
local g, seg, segs = pg.g, nil, {}
local pos = g.seg_at
while pos <= #pg.v do
  local s
  s, pos = pg_seg(pg.v, pos, g.sub)
  segs[#segs + 1] = s
  if s.seq == pg.seq then seg = s end
end
-- The segment: keep its dc, esm and rid; new time, rd, uo, data. The account's usage
-- follows the new length of the record's tail (what SUBMIT counted), within the
-- same limits.
local before = #seg_tail(seg)
seg.rd, seg.uo, seg.data = tonumber(ARGV[8]), tonumber(ARGV[6]), ARGV[7]
local grown = #seg_tail(seg) - before
if grown > 0 then
  local u = redis.call('HMGET', P .. 'usage', 'b', 'b:' .. ARGV[4])
  if (tonumber(u[1]) or 0) + grown > tonumber(ARGV[11]) then return {'full', 'store_bytes'} end
  if (tonumber(u[2]) or 0) + grown > tonumber(ARGV[12]) then return {'full', 'account_bytes'} end
end
local now = now_ms()
local id = dec(pg.hex)
if ARGV[9] ~= '' then
  local dl = tonumber(ARGV[9])
  if dl <= now then return {'expired'} end
  local old = g.dl
  g.dl = dl
  -- Its index entry moves to the new deadline's bucket.
  if bucket_of(old) ~= bucket_of(dl) then
    ix_remove({[bucket_of(old)] = {id}})
    ix_flush_adds({[id] = dl})
    drop_empty_buckets({old}, ARGV[10])
  end
  arm(id, dl, ARGV[10])
end
if grown ~= 0 then
  local by = string.format('%d', grown)
  redis.call('HINCRBY', P .. 'usage', 'b:' .. ARGV[4], by)
  redis.call('HINCRBY', P .. 'usage', 'b', by)
end
seg.recv = now
local t = {pg_encode_head(g)}
for _, s in ipairs(segs) do t[#t + 1] = pg_encode_seg(s, g.sub) end
redis.call('SET', pg.key, table.concat(t))
return {'ok', id, string.format('%d', g.dl)}
