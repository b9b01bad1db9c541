-- bucket: one token of a token bucket, taken atomically (after limit_lib.lua).
-- KEYS[1]: the bucket. ARGV: rate (tokens per second), burst (capacity).
-- Returns {1, 0} if taken, else {0, ms until it could be}.
local wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms())
if wait > 0 then return { 0, wait } end
return { 1, 0 }
