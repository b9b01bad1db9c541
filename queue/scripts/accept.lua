-- accept: the agent takes the offer; the call starts. P.agent (name), P.offer_id.
-- The offer id is the fence token: a late, duplicate or foreign accept finds no matching offer.
local o = load(K.offers, P.offer_id)
if not o or o.agent ~= P.agent then return fail('stale_offer', P.offer_id) end
if NOW > o.deadline then
  release_offer(o, 'timeout')
  match()
  announce()
  return fail('stale_offer', 'expired')
end
drop_offer(o)
local v = load(K.visitors, o.visitor)
local a = load(K.agents, o.agent)
local c = { id = o.id, visitor = v.id, agent = a.name, queue = o.queue, started = NOW,
  waited_ms = NOW - v.joined }
save(K.calls, c.id, c)
save(K.call_records, c.id, {
  id = c.id, queue = c.queue, agent = a.name, agent_name = a.display_name or a.name,
  visitor_id = v.id, visitor_name = v.name, topic = v.topic, page = v.page,
  priority = v.priority, joined = v.joined, answered = NOW, waited_ms = c.waited_ms,
  transferred_from = v.transferred_from,
})
redis.call('ZADD', K.records_by_time, NOW, c.id)
redis.call('ZREM', QK[o.queue].places, v.id)
v.state = 'in_call'
v.offer = nil
v.call = c.id
save(K.visitors, v.id, v)
local day = math.floor(NOW / 86400000)
if a.calls_day ~= day then
  a.calls_day = day
  a.calls = 0
end
a.calls = (a.calls or 0) + 1
a.state = 'in_call'
a.offer = nil
a.call = c.id
a.missed = 0
save(K.agents, a.name, a)
to_agent(a.name, agent_status_msg(a))
local to_offerer, to_answerer = call_started_msgs(c, v, a)
to_agent(a.name, to_offerer)
to_visitor(v.id, to_answerer)
log_event('accepted', { offer = o.id, call = c.id, visitor = v.id, agent = a.name,
  queue = c.queue, waited_ms = c.waited_ms })
announce()
return cjson.encode({ call_id = c.id, visitor = v.id })
