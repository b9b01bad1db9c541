-- callback_close: an agent closes a callback request. P.id, P.agent, P.outcome.
local cb = load(K.callbacks, P.id)
if not cb or cb.state ~= 'open' then return fail('wrong_state', 'no open callback ' .. P.id) end
cb.state = 'closed'
cb.closed = NOW
cb.closed_by = P.agent
cb.outcome = P.outcome
save(K.callbacks, P.id, cb)
redis.call('ZREM', K.callbacks_open, P.id)
log_event('callback_closed', { callback = P.id, queue = cb.queue, agent = P.agent })
redis.call('PUBLISH', PREFIX .. 'callbacks', cjson.encode({ type = 'callbacks_changed' }))
return cjson.encode({ ok = true })
