-- replace_sm of a pending segment: ARGV 3 message_id, 4 account, 5 source,
-- 6 offset of the user data in the new short_message (its UDH length), 7 new raw
-- short_message (binary), 8 registered_delivery,
-- 9 new deadline ms or '' (keep), 10 hfe, 11 the store's and 12 the account's
-- max_pending_bytes (a partition's shares). Returns `{'ok', gk, deadline_ms}`,
-- `{'final'}`, `{'expired'}`, `{'full', 'store_bytes' | 'account_bytes'}` (the new
-- record would take the octets held past a limit; nothing is changed) or `{}`.
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
-- The segment record: keep its first line, dc, esm and rid; new time, rd, uo, data.
local mk = P .. 'm:' .. mid
local v = redis.call('GET', mk)
local _, _, hs = split_m(v, mid)
local he = string.find(v, '\n', hs, true)
local received, dc, esm, _, _, rid = string.match(string.sub(v, hs, he - 1),
  '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
-- The account's usage follows the new length of the record's tail (what SUBMIT
-- counted: the header after the received time, and the data), within the same limits.
local tail = dc .. ' ' .. esm .. ' ' .. ARGV[8] .. ' ' .. ARGV[6] .. ' ' .. rid .. '\n' .. ARGV[7]
local grown = #tail - (#v - hs + 1 - #received - 1)
if grown > 0 then
  local u = redis.call('HMGET', P .. 'usage', 'b', 'b:' .. ARGV[4])
  if (tonumber(u[1]) or 0) + grown > tonumber(ARGV[11]) then return {'full', 'store_bytes'} end
  if (tonumber(u[2]) or 0) + grown > tonumber(ARGV[12]) then return {'full', 'account_bytes'} end
end
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
if grown ~= 0 then
  local by = string.format('%d', grown)
  redis.call('HINCRBY', P .. 'usage', 'b:' .. ARGV[4], by)
  redis.call('HINCRBY', P .. 'usage', 'b', by)
end
redis.call('SET', mk, string.sub(v, 1, hs - 1) .. now .. ' ' .. tail)
return {'ok', gk, redis.call('HGET', g, 'dl')}
