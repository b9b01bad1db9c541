-- leave: a visitor gives up their place (or their lease ran out). P.visitor_id, P.reason.
local v = load(K.visitors, P.visitor_id)
if not v then return fail('unknown_visitor', P.visitor_id) end
remove_visitor(v, P.reason)
match()
announce()
return cjson.encode({ ok = true })
