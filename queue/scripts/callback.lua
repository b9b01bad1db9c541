-- callback: a visitor asks to be called back (the queue is closed, nobody is there, or the
-- wait is too long). P.callback = {id, queue, name, contact, note}; P.visitor_id (optional:
-- a waiting visitor who gives up their place for the callback); P.max_open (0: no cap): refused
-- with callbacks_full when that many requests are open.
local cb = P.callback
if (tonumber(P.max_open) or 0) > 0 and redis.call('ZCARD', K.callbacks_open) >= tonumber(P.max_open) then
  return fail('callbacks_full')
end
cb.state = 'open'
cb.created = NOW
if P.visitor_id and P.visitor_id ~= '' then
  local v = load(K.visitors, P.visitor_id)
  if v then
    if v.state == 'in_call' then return fail('wrong_state', 'in a call') end
    cb.waited_ms = NOW - v.joined
    cb.visitor_id = v.id -- so erasing the visitor, or this contact, finds both
    remove_visitor(v, 'callback')
  end
end
save(K.callbacks, cb.id, cb)
cb.visitor_id = nil -- consoles never see visitor ids
redis.call('ZADD', K.callbacks_open, NOW, cb.id)
log_event('callback_requested', { callback = cb.id, queue = cb.queue })
redis.call(PUBLISH, CALLBACKS_CHANNEL, cjson.encode({ type = 'callback_added', item = cb }))
match()
announce()
return cjson.encode({ id = cb.id })
