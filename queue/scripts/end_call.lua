-- end_call: a party hangs up. P.call_id, P.by ('visitor'|'agent'|'desk'), P.party (their id).
local c = load(K.calls, P.call_id)
if not c then return fail('unknown_call', P.call_id) end
if (P.by == 'visitor' and c.visitor ~= P.party) or (P.by == 'agent' and c.agent ~= P.party) then
  return fail('not_a_party', P.call_id)
end
end_call(c, P.by, P.reason or 'hangup')
match()
announce()
return cjson.encode({ ok = true })
