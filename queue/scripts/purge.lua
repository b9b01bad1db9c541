-- purge: deletes personal data older than the retention period, a bounded amount per run, so
-- it never holds Redis for long. A standalone script (no lib.lua prelude): queue/privacy.py
-- runs it again and again until no part has anything more to delete.
--
-- KEYS: call_records, records_by_time, callbacks, callbacks_open, events, anonymous_events,
-- audit (queue/privacy.py PURGE_KEYS, names from queue/keys.py).
-- ARGV[1]: JSON {parts, cutoff, audit_cutoff, batch, cursor, channel, publish}:
--   parts         the parts to work on this run (records, callbacks, events,
--                 anonymous_events, audit); a part that reported nothing more is left out
--   cutoff        Unix ms: call records answered, callback requests made and events logged
--                 before it are deleted
--   audit_cutoff  Unix ms: audit entries logged before it are deleted
--   batch         at most this many records, callbacks (scanned), events per run
--   cursor        where the scan of the callbacks hash goes on ("0" to start)
--   channel       the consoles' callbacks channel, told of each open request that goes
--   publish       the command that tells them: PUBLISH, or SPUBLISH on a cluster
-- Returns {records, callbacks, events, anonymous_events, audit, cursor, more = {part = bool}}.

local P = cjson.decode(ARGV[1])
local K = {
  records = KEYS[1], records_by_time = KEYS[2], callbacks = KEYS[3], callbacks_open = KEYS[4],
  events = KEYS[5], anonymous_events = KEYS[6], audit = KEYS[7],
}
local batch = tonumber(P.batch)
local cutoff = tonumber(P.cutoff)
local parts = {}
for _, part in ipairs(P.parts) do parts[part] = true end
local out = { records = 0, callbacks = 0, events = 0, anonymous_events = 0, audit = 0,
  cursor = '0', more = { records = false, callbacks = false, events = false,
  anonymous_events = false, audit = false } }

-- Stream entries whose id (the time they were logged) is before `before`. Whole nodes of old
-- entries go first, at most `batch` entries a run; once none is left, the exact trim removes
-- the old entries of the first node, which are fewer than one node holds (100 by default).
local function trim(stream, before)
  before = string.format('%d', before)
  local removed = redis.call('XTRIM', stream, 'MINID', '~', before, 'LIMIT', batch)
  if removed > 0 then return removed, true end
  return redis.call('XTRIM', stream, 'MINID', before), false
end

-- Members of a sorted set scored before `before`, at most `batch`.
local function drop_scored(zset, before)
  local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', string.format('(%d', before), 'LIMIT', 0, batch)
  if #ids > 0 then redis.call('ZREM', zset, unpack(ids)) end
  return ids
end

if parts.records then
  local ids = drop_scored(K.records_by_time, cutoff)
  if #ids > 0 then redis.call('HDEL', K.records, unpack(ids)) end
  out.records = #ids
  out.more.records = #ids == batch
end

if parts.callbacks then
  -- Open requests older than the period go too: nobody answered them in all that time, and
  -- keeping them would keep their contacts for ever.
  local scan = redis.call('HSCAN', K.callbacks, P.cursor, 'COUNT', batch)
  local fields = scan[2]
  for i = 1, #fields, 2 do
    local ok, cb = pcall(cjson.decode, fields[i + 1])
    local created = ok and type(cb) == 'table' and tonumber(cb.created)
    if created and created < cutoff then
      redis.call('HDEL', K.callbacks, fields[i])
      if redis.call('ZREM', K.callbacks_open, fields[i]) == 1 then
        -- Consoles drop it as they drop a closed one.
        redis.call(P.publish, P.channel, cjson.encode({ type = 'callback_closed', id = fields[i],
          queue = cb.queue }))
      end
      out.callbacks = out.callbacks + 1
    end
  end
  out.cursor = scan[1]
  out.more.callbacks = scan[1] ~= '0'
end

if parts.events then
  out.events, out.more.events = trim(K.events, cutoff)
end

if parts.anonymous_events then
  local ids = drop_scored(K.anonymous_events, cutoff)
  out.anonymous_events = #ids
  out.more.anonymous_events = #ids == batch
end

if parts.audit then
  out.audit, out.more.audit = trim(K.audit, tonumber(P.audit_cutoff))
end

return cjson.encode(out)
