-- cancel_sm: ARGV 3 message_id, 4 account, 5 source. Returns `{'ok', gid}`,
-- `{'final'}` or `{}`.
local gid, gk, pending = lookup(ARGV[3], ARGV[4], ARGV[5])
if not gid then return {} end
if not pending then return {'final'} end
local fin = new_fin()
finish_group(gk, gid, 'cancelled', now_ms(), fin)
finish_flush(fin, nil, true)
return {'ok', gid}
