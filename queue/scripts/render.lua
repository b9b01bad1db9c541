-- render: the messages a console or a panel gets again after a reconnect, rendered by the
-- same functions the scripts publish them with (one author per message). Reads only.
-- P.agent (name): the agent's `status` and, when offered, their `offer`; P.call (id): the
-- call's two `call_started` (offerer's, answerer's), with the call's visitor and agent.
local out = {}
if P.agent then
  local a = load(K.agents, P.agent) or { name = P.agent, state = 'offline' }
  out.status = agent_status_msg(a)
  out.state = a.state
  out.call = a.call
  out.last_call = a.last_call
  local o = a.state == 'offered' and load(K.offers, a.offer)
  local v = o and load(K.visitors, o.visitor)
  if o and v then out.offer = offer_msg(o, v) end
end
if P.call then
  local c = load(K.calls, P.call)
  if c then
    local v = load(K.visitors, c.visitor) or { id = c.visitor }
    local a = load(K.agents, c.agent) or { name = c.agent }
    out.call_started = { call_started_msgs(c, v, a) }
    out.visitor = c.visitor
    out.agent = c.agent
  end
end
return cjson.encode(out)
