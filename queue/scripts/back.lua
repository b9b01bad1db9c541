-- back: a visitor's new socket takes over their entry (join, resume). An away visitor returns
-- to their original place. P.visitor_id, P.conn, P.lease_ms.
local v = load(K.visitors, P.visitor_id)
if not v then return fail('unknown_visitor', P.visitor_id) end
if not redis.call('ZSCORE', K.leases, 'v:' .. v.id) then
  return fail('unknown_visitor', 'lease ran out')
end
redis.call('ZADD', K.leases, NOW + P.lease_ms, 'v:' .. v.id)
v.conn = P.conn
if v.away then
  v.away = nil
  if v.state == 'waiting' and QK[v.queue] then
    redis.call('ZADD', QK[v.queue].waiting, v.score, v.id)
    touch(v.queue)
  end
end
save(K.visitors, v.id, v)
match()
announce()
v = load(K.visitors, P.visitor_id)
return cjson.encode({ state = v.state, queue = v.queue, position = position_of(v) })
