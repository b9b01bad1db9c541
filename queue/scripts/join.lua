-- join: a visitor takes a place in a queue's line: behind everyone of the same or higher
-- priority. P.visitor = {id, queue, name, topic, page, audio_only, precall, priority}; P.lease_ms
-- (the resume window); P.rules_seen (optional): the queue's rules as the caller read them to
-- admit the visitor (business hours, priority); if they changed since, the join is refused
-- with stale_rules. Returns {position, waiting, offered}: offered when this join gave the
-- visitor an agent at once (their wait is over before they are told their place).
local nv = P.visitor
if not QK[nv.queue] then return fail('unknown_queue', nv.queue) end
if P.rules_seen ~= nil and (redis.call('HGET', K.queue_config, nv.queue) or '') ~= P.rules_seen then
  return fail('stale_rules', nv.queue)
end
if redis.call('HEXISTS', K.visitors, nv.id) == 1 then return fail('duplicate_visitor', nv.id) end
local priority = tonumber(nv.priority) or 0
local v = {
  id = nv.id, queue = nv.queue, name = nv.name, topic = nv.topic, page = nv.page,
  audio_only = nv.audio_only, joined = NOW, score = NOW - priority * PRIORITY_STEP,
  priority = priority, state = 'waiting', conn = nv.conn,
  precall = type(nv.precall) == 'table' and nv.precall or nil,
}
save(K.visitors, v.id, v)
redis.call('ZADD', QK[v.queue].waiting, v.score, v.id)
redis.call('ZADD', QK[v.queue].places, v.score, v.id)
redis.call('ZADD', K.leases, NOW + P.lease_ms, 'v:' .. v.id)
local position = position_of(v)
touch(v.queue, position)
log_event('joined', { visitor = v.id, queue = v.queue, priority = priority })
local offers = match()
announce()
return cjson.encode({ position = position, waiting = redis.call('ZCARD', QK[v.queue].waiting),
  offers = #offers, offered = load(K.visitors, v.id).state == 'offered' })
