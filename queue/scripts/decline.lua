-- decline: the agent refuses the offer; the visitor returns to their original place and the
-- agent gets no offer for the reject delay. P.agent, P.offer_id.
local o = load(K.offers, P.offer_id)
if not o or o.agent ~= P.agent then return fail('stale_offer', P.offer_id) end
release_offer(o, 'declined')
match()
announce()
return cjson.encode({ ok = true })
