-- heartbeat: renews the leases of the visitors and agents whose sockets this instance holds.
-- P.visitors, P.callers (visitors in a call), P.agents (lists), P.lease_ms (agents),
-- P.visitor_lease_ms (the resume window of a visitor in line), P.call_lease_ms (the grace
-- period of a visitor in a call: a call cannot wait a whole resume window for a party whose
-- connection is gone), P.silence_ms (for each caller, how long ago the desk last heard from
-- it: the grace runs from then). Returns the ones that hold no lease any more.
--
-- A visitor without a lease is also told so on their own channel (`_lease_gone`, for the
-- servers, never forwarded to the visitor). Pub/sub delivers a channel's messages in the
-- order Redis ran the scripts that published them, so when a server reads `_lease_gone`,
-- it has already read everything published for the visitor before it: in particular the
-- `call_ended` of a call that ended just before this renewal. The heartbeat's reply can
-- overtake that message (another connection); `_lease_gone` cannot.
local until_ms = NOW + P.lease_ms
local gone = { visitors = {}, agents = {} }
local function renew_visitors(ids, visitor_until_ms, silence)
  for i, id in ipairs(ids) do
    if redis.call('ZSCORE', K.leases, 'v:' .. id) then
      redis.call('ZADD', K.leases, 'XX', visitor_until_ms - (silence and silence[i] or 0), 'v:' .. id)
    else
      gone.visitors[#gone.visitors + 1] = id
      to_visitor(id, { type = '_lease_gone' })
    end
  end
end
renew_visitors(P.visitors, NOW + (P.visitor_lease_ms or P.lease_ms))
renew_visitors(P.callers or {}, NOW + (P.call_lease_ms or P.lease_ms), P.silence_ms)
for _, name in ipairs(P.agents) do
  if redis.call('ZSCORE', K.leases, 'a:' .. name) then
    redis.call('ZADD', K.leases, 'XX', until_ms, 'a:' .. name)
  else
    gone.agents[#gone.agents + 1] = name
  end
end
return cjson.encode({ gone_visitors = #gone.visitors, gone_agents = #gone.agents,
  visitors = gone.visitors, agents = gone.agents })
