-- away: a waiting visitor's socket went away (reload, network drop, closed tab). They keep
-- their place for the resume window but are not offered to anyone until they come back, so
-- no agent accepts a call nobody will answer. An offer already made is withdrawn (the agent
-- is not penalised). P.visitor_id, P.conn (only the socket that holds the entry counts).
local v = load(K.visitors, P.visitor_id)
if not v or v.conn ~= P.conn then return cjson.encode({ away = false }) end
if v.state == 'offered' then
  local o = load(K.offers, v.offer)
  if o then release_offer(o, 'visitor_left') end
  v = load(K.visitors, P.visitor_id)
end
if v.state ~= 'waiting' then return cjson.encode({ away = false }) end
if QK[v.queue] then
  redis.call('ZREM', QK[v.queue].waiting, v.id)
  touch(v.queue)
end
v.away = true
save(K.visitors, v.id, v)
match()
announce()
return cjson.encode({ away = true })
