-- heartbeat: renews the leases of the visitors and agents whose sockets this instance holds.
-- P.visitors, P.agents (lists), P.lease_ms (agents), P.visitor_lease_ms (the resume window).
-- Returns the ones that hold no lease any more.
local until_ms = NOW + P.lease_ms
local visitor_until_ms = NOW + (P.visitor_lease_ms or P.lease_ms)
local gone = { visitors = {}, agents = {} }
for _, id in ipairs(P.visitors) do
  if redis.call('ZSCORE', K.leases, 'v:' .. id) then
    redis.call('ZADD', K.leases, 'XX', visitor_until_ms, 'v:' .. id)
  else
    gone.visitors[#gone.visitors + 1] = id
  end
end
for _, name in ipairs(P.agents) do
  if redis.call('ZSCORE', K.leases, 'a:' .. name) then
    redis.call('ZADD', K.leases, 'XX', until_ms, 'a:' .. name)
  else
    gone.agents[#gone.agents + 1] = name
  end
end
return cjson.encode({ gone_visitors = #gone.visitors, gone_agents = #gone.agents,
  visitors = gone.visitors, agents = gone.agents })
