-- Finished groups whose receipts were not released yet (`P:fresh`), up to ARGV[3]:
-- `{gid, {hash fields…}, …}`; a gid whose group is gone is dropped from the set.
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
