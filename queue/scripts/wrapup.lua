-- wrapup: the agent extends their wrap-up or finishes it early. P.agent, P.action
-- ('extend' | 'done'), P.extend_ms.
local a = load(K.agents, P.agent)
if not a or a.state ~= 'wrap_up' then return fail('wrong_state', 'not in wrap-up') end
if P.action == 'extend' then
  a.wrapup_until = math.max(a.wrapup_until, NOW) + P.extend_ms
  redis.call('ZADD', K.wrapups, a.wrapup_until, a.name)
  log_event('wrapup_extended', { agent = a.name, call = a.last_call or '' })
else
  agent_make_idle(a, NOW)
end
save(K.agents, a.name, a)
to_agent(a.name, agent_status_msg(a))
match()
announce()
a = load(K.agents, P.agent)
return cjson.encode({ status = a.state })
