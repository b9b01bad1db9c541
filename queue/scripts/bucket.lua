-- bucket: a token bucket, taken atomically (standalone: no lib.lua prelude).
-- KEYS[1]: the bucket (HASH tokens, at). ARGV: rate (tokens per second), burst (capacity),
-- cost (tokens this take needs). Returns {1, 0} if taken, else {0, ms until it could be}.
-- The bucket expires once it would be full again, so idle addresses leave nothing behind.
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
if tokens < cost then
  return { 0, math.ceil((cost - tokens) * 1000 / rate) }
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return { 1, 0 }
