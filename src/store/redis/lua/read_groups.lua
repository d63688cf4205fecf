-- The finished groups ARGV[3..] (gids): `{hash fields…}` each (`group_fields`), `{}`
-- for one that is gone.
local out = {}
for i = 3, #ARGV do out[#out + 1] = group_fields(P .. 'd:' .. ARGV[i]) end
return out
