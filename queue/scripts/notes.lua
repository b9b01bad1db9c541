-- notes: the agent's notes and disposition for their current or just-ended call.
-- P.agent, P.call_id, P.notes, P.disposition.
local a = load(K.agents, P.agent)
if not a or (a.call ~= P.call_id and a.last_call ~= P.call_id) then
  return fail('wrong_state', 'not your current or last call')
end
local r = update_record(P.call_id, { notes = P.notes, disposition = P.disposition })
if not r then return fail('unknown_call', P.call_id) end
return cjson.encode({ ok = true })
