-- RATE_TAKE: takes up to ARGV[3] submits of an account's rate, one budget for every
-- node. KEYS[1] = P{lim:<system_id>}:rate holds a GCRA bucket as one number: the
-- theoretical arrival time `tat` (µs of Redis TIME, the one clock all nodes share).
-- ARGV[1] tokens per second, ARGV[2] burst. Returns {granted, µs until the next token
-- frees (when none was granted, else 0)}. Not prefixed by lib.lua: no partition.
-- Why GCRA: one number per account, no refill timer, any rate exact (a token is
-- `step` µs of time; burst is how far ahead of now tat may run).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = 1000000 / tonumber(ARGV[1])
local burst, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then tat = now end
-- The k-th token conforms while tat + (k - 1) * step <= now + (burst - 1) * step.
-- (The epsilon keeps a float quotient just below an integer from losing a token.)
local k = math.floor((now - tat) / step + burst + 1e-9)
if k > n then k = n end
if k < 1 then
  return {0, math.ceil(tat - (burst - 1) * step - now)}
end
tat = tat + k * step
-- %.17g: the double exactly (Lua's default %.14g would round µs away). The bucket
-- is full again once now reaches tat: nothing left to remember, the key goes then.
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PXAT', math.ceil(tat / 1000) + 1)
return {k, 0}
