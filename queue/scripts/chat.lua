-- chat: a party of a live call writes a line of chat. P.call_id, P.from ('visitor'|'agent'),
-- P.party (the visitor's id or the agent's name), P.text, P.max (messages a call holds).
-- The line is stored in order on the call record (`chat`, each with its `seq`) and published
-- to the other party only; the sender gets it back as the reply, so both see the same `seq`.
local c = load(K.calls, P.call_id)
if not c then return fail('unknown_call', P.call_id) end
if (P.from == 'visitor' and c.visitor ~= P.party) or (P.from == 'agent' and c.agent ~= P.party) then
  return fail('not_a_party', P.call_id)
end
local r = load(K.call_records, c.id)
if not r then return fail('unknown_call', P.call_id) end
local lines = r.chat or {}
if #lines >= tonumber(P.max) then return fail('chat_full', tostring(P.max)) end
local line = { seq = #lines + 1, from = P.from, text = P.text, at = NOW }
lines[#lines + 1] = line
r.chat = lines
save(K.call_records, c.id, r)
local msg = { type = 'chat', call_id = c.id, seq = line.seq, from = line.from, text = line.text,
  at = line.at }
if P.from == 'visitor' then to_agent(c.agent, msg) else to_visitor(c.visitor, msg) end
return cjson.encode(msg)
