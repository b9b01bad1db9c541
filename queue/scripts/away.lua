-- away: waiting visitors' sockets went away (reload, network drop, closed tab, a server
-- restart). Each keeps their place for the resume window but is not offered to anyone until
-- they come back, so no agent accepts a call nobody will answer. An offer already made is
-- withdrawn (the agent is not penalised). P.parties = [{visitor_id, conn}, ...]: only the
-- socket that holds an entry counts. One script for many, so thousands of sockets closing at
-- once cost a few scripts, not thousands. Returns {away = [visitor ids marked away]}.
local marked = {}
for _, party in ipairs(P.parties) do
  local v = load(K.visitors, party.visitor_id)
  if v and v.conn == party.conn then
    if v.state == 'offered' then
      local o = load(K.offers, v.offer)
      if o then release_offer(o, 'visitor_left') end
      v = load(K.visitors, party.visitor_id)
    end
    if v.state == 'waiting' then
      if QK[v.queue] then
        redis.call('ZREM', QK[v.queue].waiting, v.id)
        touch(v.queue)
      end
      v.away = true
      save(K.visitors, v.id, v)
      marked[#marked + 1] = v.id
    end
  end
end
match()
announce()
if #marked == 0 then return '{"away":[]}' end
return cjson.encode({ away = marked })
