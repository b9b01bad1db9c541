-- limit_lib: shared by the standalone limit scripts (bucket.lua, admit.lua), prepended by
-- queue/limits.py. No lib.lua prelude: these scripts touch only an address's own keys.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A token bucket (HASH tokens, at): rate tokens a second, burst at most. Returns 0 if a
-- token was taken, else the ms until one could be. The bucket expires once full again,
-- so idle addresses leave nothing behind.
local function take(key, rate, burst, now)
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  if tokens < 1 then return math.ceil((1 - tokens) * 1000 / rate) end
  tokens = tokens - 1
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) * 1000 / rate) + 1000)
  return 0
end

-- Reserves one of an address's places in line (ZSET visitor id -> reserved at): visitors no
-- longer waiting or offered free theirs here; a reservation whose visitor's entry does not
-- exist yet counts for grace ms (the join runs just after). Returns true if reserved.
local function reserve(key, visitors, id, max, grace, now)
  local held = 0
  local rows = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #rows, 2 do
    local vid, at = rows[i], tonumber(rows[i + 1])
    local raw = redis.call('HGET', visitors, vid)
    local live
    if raw then
      local state = cjson.decode(raw).state
      live = state == 'waiting' or state == 'offered'
    else
      live = now - at < grace
    end
    if live then held = held + 1 else redis.call('ZREM', key, vid) end
  end
  if held >= max then return false end
  redis.call('ZADD', key, now, id)
  redis.call('PEXPIRE', key, 24 * 3600 * 1000)
  return true
end
