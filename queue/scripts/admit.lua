-- admit: a join from one client address, both limits in one round trip (after limit_lib.lua).
-- KEYS: the address's join bucket, the address's places (ZSET), the desk's visitors HASH.
-- ARGV: rate, burst (joins; burst 0: no limit), visitor id, max places (0: no limit),
-- grace_ms. Returns {1, 0} admitted (a place reserved), {0, ms} too many joins (wait ms),
-- {2, 0} the address holds its most places already.
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local max, grace = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
if burst > 0 then
  local wait = take(KEYS[1], rate, burst, now)
  if wait > 0 then return { 0, wait } end
end
if max > 0 and not reserve(KEYS[2], KEYS[3], ARGV[3], max, grace, now) then return { 2, 0 } end
return { 1, 0 }
