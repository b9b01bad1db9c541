-- reap: times out expired offers, removes parties whose lease ran out, lets delayed agents be
-- offered again, then matches. Any instance may run it; one does at a time (a SET NX lease).
local batch = P.batch or 200
local result = { offers_expired = 0, visitors_gone = 0, agents_gone = 0, agents_ready = 0 }
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.offer_deadlines, '-inf', NOW, 'LIMIT', 0, batch)) do
  local o = load(K.offers, id)
  if o then
    release_offer(o, 'timeout')
  else
    redis.call('ZREM', K.offer_deadlines, id)
  end
  result.offers_expired = result.offers_expired + 1
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', K.leases, '-inf', NOW, 'LIMIT', 0, batch)) do
  redis.call('ZREM', K.leases, member)
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 'v' then
    local v = load(K.visitors, id)
    if v then remove_visitor(v, 'lease_expired') end
    result.visitors_gone = result.visitors_gone + 1
  else
    local a = load(K.agents, id)
    if a then
      if a.state == 'in_call' then
        local c = load(K.calls, a.call)
        if c then end_call(c, 'desk', 'peer_left') end
        a = load(K.agents, id)
      elseif a.state == 'offered' then
        local o = load(K.offers, a.offer)
        if o then release_offer(o, 'status_change') end
        a = load(K.agents, id)
      end
      agent_withdraw(a)
      a.state = 'offline'
      a.state_since = NOW
      a.offer = nil
      a.ready_at = nil
      a.reason = 'Connection lost'
      a.reason_code = 'connection_lost'
      save(K.agents, id, a)
      redis.call('ZREM', K.leases, 'a:' .. id)
      log_event('agent_state', { agent = id, state = 'offline', reason = 'lease_expired' })
      to_agent(id, agent_status_msg(a))
    end
    result.agents_gone = result.agents_gone + 1
  end
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW, 'LIMIT', 0, batch)) do
  redis.call('ZREM', K.delayed, name)
  local a = load(K.agents, name)
  if a and a.state == 'available' then
    agent_make_idle(a, a.idle_since or NOW)
    save(K.agents, name, a)
    result.agents_ready = result.agents_ready + 1
  end
end
result.wrapups_ended = 0
for _, name in ipairs(redis.call('ZRANGEBYSCORE', K.wrapups, '-inf', NOW, 'LIMIT', 0, batch)) do
  redis.call('ZREM', K.wrapups, name)
  local a = load(K.agents, name)
  if a and a.state == 'wrap_up' then
    agent_make_idle(a, NOW)
    save(K.agents, name, a)
    to_agent(name, agent_status_msg(a))
    result.wrapups_ended = result.wrapups_ended + 1
  end
end
-- Visitors past their queue's maximum wait: moved to the overflow queue (keeping their
-- place by join time) or, once, offered the callback form.
result.max_wait = 0
for _, q in ipairs(QUEUES) do
  local rules = qcfg(q)
  if rules.max_wait_ms and rules.max_wait_ms > 0 then
    local cutoff = NOW - rules.max_wait_ms
    local due = redis.call('ZRANGEBYSCORE', QK[q].waiting, '-inf', cutoff, 'LIMIT', 0, batch)
    for _, vid in ipairs(due) do
      local v = load(K.visitors, vid)
      if v and v.joined <= cutoff and not v.max_wait_done then
        v.max_wait_done = true
        local target = rules.overflow
        if target ~= '' and target ~= q and QK[target] then
          redis.call('ZREM', QK[q].waiting, vid)
          redis.call('ZREM', QK[q].places, vid)
          v.overflowed_from = q
          v.queue = target
          redis.call('ZADD', QK[target].waiting, v.score, vid)
          redis.call('ZADD', QK[target].places, v.score, vid)
          touch(q)
          touch(target)
          to_visitor(vid, { type = 'moved', queue = target, reason = 'max_wait',
            position = position_of(v) })
          log_event('overflowed', { visitor = vid, queue = q, to = target,
            waited_ms = NOW - v.joined })
        else
          to_visitor(vid, { type = 'max_wait', queue = q, waited_seconds =
            math.floor((NOW - v.joined) / 1000) })
          log_event('max_wait', { visitor = vid, queue = q, waited_ms = NOW - v.joined })
        end
        save(K.visitors, vid, v)
        result.max_wait = result.max_wait + 1
      end
    end
  end
end
result.offers = #match()
announce()
return cjson.encode(result)
