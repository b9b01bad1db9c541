-- rate: the visitor rates the call they just had, once. P.call_id, P.visitor_id, P.score
-- (1-5), P.comment.
local r = load(K.call_records, P.call_id)
if not r or r.visitor_id ~= P.visitor_id then return fail('wrong_state', 'not your call') end
if r.rating then return fail('wrong_state', 'already rated') end
r.rating = P.score
r.rating_comment = P.comment
save(K.call_records, P.call_id, r)
log_event('rated', { call = P.call_id, queue = r.queue, agent = r.agent, rating = P.score })
return cjson.encode({ ok = true })
