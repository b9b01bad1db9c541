-- transfer: a blind transfer. The agent sends the visitor of their call to another queue,
-- where the visitor goes to the head of the line; the agent goes to wrap-up.
-- P.agent, P.call_id, P.queue.
local c = load(K.calls, P.call_id)
if not c or c.agent ~= P.agent then return fail('wrong_state', 'not your call') end
if not QK[P.queue] then return fail('unknown_queue', P.queue) end
if P.queue == c.queue then return fail('bad_transfer', 'the visitor is in that queue') end
local v = load(K.visitors, c.visitor)
if not v then return fail('wrong_state', 'the visitor has gone') end
local head = redis.call('ZRANGE', QK[P.queue].waiting, 0, 0, 'WITHSCORES')
local score = v.score
if head[1] and tonumber(head[2]) <= score then score = tonumber(head[2]) - 1 end
local ended = { type = 'call_ended', call_id = c.id, reason = 'transferred', by = 'agent',
  queue = P.queue }
to_visitor(v.id, ended)
to_agent(c.agent, ended)
update_record(c.id, { transferred_to = P.queue })
local a = close_call(c, 'agent', 'transferred')
if a then to_agent(a.name, agent_status_msg(a)) end
v.state = 'waiting'
v.call = nil
v.transferred_from = c.queue
v.transferred_call = c.id -- its record's notes go with the next offer (handover_of)
v.queue = P.queue
v.score = score
save(K.visitors, v.id, v)
redis.call('ZADD', QK[P.queue].waiting, score, v.id)
redis.call('ZADD', QK[P.queue].places, score, v.id)
touch(P.queue)
log_event('transferred', { call = c.id, visitor = v.id, agent = c.agent, queue = c.queue,
  to = P.queue })
to_visitor(v.id, { type = 'moved', queue = P.queue, reason = 'transferred',
  position = position_of(v) })
match()
announce()
return cjson.encode({ ok = true })
