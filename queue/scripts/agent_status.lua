-- agent_status: an agent chooses Available, Break or Offline.
-- P.agent = {name, display_name, queues, levels}; P.status; P.reason (English, for logs) and
-- P.reason_code (what the pages translate), both optional; P.lease_ms.
-- Any choice ends a wrap-up.
-- Going Break/Offline while offered withdraws the offer (the visitor keeps their place);
-- Offline during a call ends the call; Available/Break during a call is refused.
local info = P.agent
local a = load(K.agents, info.name) or { name = info.name, state = 'offline', missed = 0,
  queues = info.queues }
for _, q in ipairs(info.queues) do
  if not QK[q] then return fail('stale_queues', q) end
end
if not queues_known(a) then return fail('stale_queues') end
local status = P.status
if a.state == 'in_call' then
  if status ~= 'offline' then return fail('wrong_state', 'in_call') end
  local c = load(K.calls, a.call)
  if c then end_call(c, 'agent', 'agent_offline') end
  a = load(K.agents, info.name)
elseif a.state == 'offered' then
  local o = load(K.offers, a.offer)
  if o then release_offer(o, 'status_change') end
  a = load(K.agents, info.name)
end
local was = a.state
agent_withdraw(a)
a.queues = info.queues
a.levels = info.levels
a.display_name = info.display_name
a.missed = 0
if status == 'available' then
  if was == 'available' and not a.ready_at then
    agent_make_idle(a, a.idle_since or NOW)
  elseif was == 'available' and a.ready_at then
    agent_delay(a, a.ready_at)
  else
    agent_make_idle(a, NOW)
  end
  redis.call('ZADD', K.leases, NOW + P.lease_ms, 'a:' .. a.name)
elseif status == 'break' then
  a.state = 'break'
  a.offer = nil
  a.ready_at = nil
  a.reason = P.reason
  a.reason_code = P.reason_code
  redis.call('ZADD', K.leases, NOW + P.lease_ms, 'a:' .. a.name)
else
  a.state = 'offline'
  a.offer = nil
  a.ready_at = nil
  a.reason = P.reason
  a.reason_code = P.reason_code
  redis.call('ZREM', K.leases, 'a:' .. a.name)
end
if (status == 'break' or status == 'offline') and (was ~= a.state or not a.state_since) then
  a.state_since = NOW -- when this Break or Offline began (the wallboard's "for")
end
save(K.agents, a.name, a)
if was ~= a.state then
  log_event('agent_state', { agent = a.name, state = a.state, reason = P.reason or '' })
end
to_agent(a.name, agent_status_msg(a))
match()
announce()
a = load(K.agents, info.name)
return cjson.encode({ status = a.state })
