-- waiting_slot: reserves one of an address's places in line (standalone: no lib.lua prelude).
-- KEYS[1]: ZSET visitor id -> reserved at (ms), the address's visitors; KEYS[2]: the desk's
-- visitors HASH. ARGV: visitor id, max (places one address may hold at once), grace_ms (how
-- long a reservation counts before its visitor's entry exists: the join runs just after).
-- Visitors who are no longer waiting or offered (in a call, gone) free their place here, on
-- the address's next join. Returns {1, held} if reserved, else {0, held}.
local id, max, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = 0
local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do
  local vid, at = rows[i], tonumber(rows[i + 1])
  local raw = redis.call('HGET', KEYS[2], vid)
  local live = false
  if raw then
    local state = cjson.decode(raw).state
    live = state == 'waiting' or state == 'offered'
  else
    live = now - at < grace
  end
  if live then held = held + 1 else redis.call('ZREM', KEYS[1], vid) end
end
if held >= max then return { 0, held } end
redis.call('ZADD', KEYS[1], now, id)
redis.call('PEXPIRE', KEYS[1], 24 * 3600 * 1000)
return { 1, held + 1 }
