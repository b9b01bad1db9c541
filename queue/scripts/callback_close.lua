-- callback_close: an agent closes a callback request. P.id, P.agent, P.outcome;
-- P.agent_queues (optional): the agent's queues, one of which must be the request's.
local cb = load(K.callbacks, P.id)
if not cb or cb.state ~= 'open' then return fail('wrong_state', 'no open callback ' .. P.id) end
if P.agent_queues then
  local mine = false
  for _, q in ipairs(P.agent_queues) do
    if q == cb.queue then mine = true end
  end
  if not mine then return fail('wrong_state', 'no open callback ' .. P.id) end
end
cb.state = 'closed'
cb.closed = NOW
cb.closed_by = P.agent
cb.outcome = P.outcome
save(K.callbacks, P.id, cb)
redis.call('ZREM', K.callbacks_open, P.id)
log_event('callback_closed', { callback = P.id, queue = cb.queue, agent = P.agent })
redis.call(PUBLISH, CALLBACKS_CHANNEL, cjson.encode({ type = 'callback_closed', id = P.id,
  queue = cb.queue }))
return cjson.encode({ ok = true })
