-- Shared prelude of every humandesk queue script. The client prepends it to each op script.
--
-- ARGV[1] is one JSON object: {now?, queues: [...], cfg: {...}, ...op arguments}.
-- KEYS are the desk's static keys (queue/keys.py STATIC_KEYS) followed by a
-- (waiting, idle, serving) triple for every name in `queues`, in that order.
-- Scripts publish the messages a state change causes, so delivery is atomic with the change.

local P = cjson.decode(ARGV[1])
local CFG = P.cfg
local K = {
  visitors = KEYS[1], agents = KEYS[2], offers = KEYS[3], offer_deadlines = KEYS[4],
  calls = KEYS[5], leases = KEYS[6], delayed = KEYS[7], fence = KEYS[8], events = KEYS[9],
  handle_times = KEYS[10],
}
local NSTATIC = 10
local PREFIX = string.sub(KEYS[1], 1, #KEYS[1] - #'visitors')
local QUEUES = P.queues
local QK = {}
for i, q in ipairs(QUEUES) do
  local base = NSTATIC + (i - 1) * 3
  QK[q] = { waiting = KEYS[base + 1], idle = KEYS[base + 2], serving = KEYS[base + 3] }
end

local NOW = tonumber(P.now)
if not NOW then
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fail(code, detail)
  return redis.error_reply(code .. (detail and (' ' .. detail) or ''))
end

local function load(hash, id)
  local raw = redis.call('HGET', hash, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function save(hash, id, record)
  redis.call('HSET', hash, id, cjson.encode(record))
end

local function log_event(kind, fields)
  local args = { 'XADD', K.events, 'MAXLEN', '~', '100000', '*', 'event', kind, 'ts', tostring(NOW) }
  for k, v in pairs(fields) do
    args[#args + 1] = k
    args[#args + 1] = tostring(v)
  end
  redis.call(unpack(args))
end

local function to_visitor(id, msg)
  redis.call('PUBLISH', PREFIX .. 'to:v:' .. id, cjson.encode(msg))
end

local function to_agent(name, msg)
  redis.call('PUBLISH', PREFIX .. 'to:a:' .. name, cjson.encode(msg))
end

-- Queues whose line or agents changed during this script; announced once at the end.
local TOUCHED = {}
local function touch(q) TOUCHED[q] = true end

local function announce()
  for q in pairs(TOUCHED) do
    if QK[q] then
      redis.call('PUBLISH', PREFIX .. 'queue:' .. q, cjson.encode({
        type = 'queue', queue = q,
        waiting = redis.call('ZCARD', QK[q].waiting),
        available = redis.call('ZCARD', QK[q].idle),
        serving = redis.call('SCARD', QK[q].serving),
      }))
    end
  end
end

local function queues_known(agent)
  for _, q in ipairs(agent.queues) do
    if not QK[q] then return false end
  end
  return true
end

-- Agents ------------------------------------------------------------------------------

local function agent_status_msg(a)
  local status = a.state
  return { type = 'status', status = status, reason = a.reason }
end

-- Takes the agent out of every idle line, the serving sets and the delay list.
local function agent_withdraw(a)
  for _, q in ipairs(a.queues) do
    redis.call('ZREM', QK[q].idle, a.name)
    redis.call('SREM', QK[q].serving, a.name)
    touch(q)
  end
  redis.call('ZREM', K.delayed, a.name)
end

-- Makes the agent Available and offerable, longest-idle first by `idle_since`.
local function agent_make_idle(a, idle_since)
  a.state = 'available'
  a.offer = nil
  a.call = nil
  a.reason = nil
  a.idle_since = idle_since
  a.ready_at = nil
  redis.call('ZREM', K.delayed, a.name)
  for _, q in ipairs(a.queues) do
    redis.call('ZADD', QK[q].idle, idle_since, a.name)
    redis.call('SADD', QK[q].serving, a.name)
    touch(q)
  end
end

-- Available, but not offered anything until `ready_at` (reject / no-answer delay).
local function agent_delay(a, ready_at)
  a.state = 'available'
  a.offer = nil
  a.call = nil
  a.idle_since = NOW
  a.ready_at = ready_at
  for _, q in ipairs(a.queues) do
    redis.call('ZREM', QK[q].idle, a.name)
    redis.call('SADD', QK[q].serving, a.name)
    touch(q)
  end
  redis.call('ZADD', K.delayed, ready_at, a.name)
end

-- Visitors ----------------------------------------------------------------------------

-- Puts the visitor back at their original place (their score never changes).
local function visitor_back_in_line(v)
  v.state = 'waiting'
  v.offer = nil
  if QK[v.queue] then
    redis.call('ZADD', QK[v.queue].waiting, v.score, v.id)
    touch(v.queue)
  end
  save(K.visitors, v.id, v)
end

-- Offers ------------------------------------------------------------------------------

local function drop_offer(o)
  redis.call('HDEL', K.offers, o.id)
  redis.call('ZREM', K.offer_deadlines, o.id)
end

-- Withdraws an offer. The visitor (if still here) returns to their place; the agent's next
-- state depends on why: declined/timeout -> a delay (and a missed offer), visitor_left ->
-- straight back to idle with their old idle time, status_change -> the caller decides.
local function release_offer(o, reason)
  drop_offer(o)
  local v = load(K.visitors, o.visitor)
  if v and reason ~= 'visitor_left' then visitor_back_in_line(v) end
  local a = load(K.agents, o.agent)
  if a then
    if reason == 'declined' then
      a.missed = 0
      agent_delay(a, NOW + CFG.reject_delay_ms)
    elseif reason == 'timeout' then
      a.missed = (a.missed or 0) + 1
      if a.missed >= CFG.max_missed_offers then
        agent_withdraw(a)
        a.state = 'break'
        a.offer = nil
        a.reason = 'Missed ' .. a.missed .. ' offers in a row'
        log_event('agent_state', { agent = a.name, state = 'break', reason = 'missed_offers' })
      else
        agent_delay(a, NOW + CFG.no_answer_delay_ms)
      end
    elseif reason == 'visitor_left' then
      agent_make_idle(a, a.idle_since or NOW)
    end
    a.offer = nil
    save(K.agents, a.name, a)
    to_agent(a.name, { type = 'offer_cancelled', offer_id = o.id, reason = reason })
    if reason ~= 'status_change' then to_agent(a.name, agent_status_msg(a)) end
  end
  local kind = ({ declined = 'declined', timeout = 'timed_out', visitor_left = 'withdrawn',
    status_change = 'withdrawn' })[reason]
  log_event(kind, { offer = o.id, visitor = o.visitor, agent = o.agent, queue = o.queue,
    reason = reason })
end

local function make_offer(q, vid, name)
  local v = load(K.visitors, vid)
  local a = load(K.agents, name)
  local id = tostring(redis.call('INCR', K.fence))
  redis.call('ZREM', QK[q].waiting, vid)
  for _, aq in ipairs(a.queues) do
    redis.call('ZREM', QK[aq].idle, name)
    touch(aq)
  end
  touch(q)
  local deadline = NOW + CFG.offer_timeout_ms
  save(K.offers, id, { id = id, visitor = vid, agent = name, queue = q, deadline = deadline,
    created = NOW })
  redis.call('ZADD', K.offer_deadlines, deadline, id)
  v.state = 'offered'
  v.offer = id
  save(K.visitors, vid, v)
  a.state = 'offered'
  a.offer = id
  save(K.agents, name, a)
  to_agent(name, { type = 'offer', offer_id = id, queue = q,
    visitor = { name = v.name, topic = v.topic, audio_only = v.audio_only, page = v.page },
    waited_seconds = math.floor((NOW - v.joined) / 1000),
    timeout_ms = CFG.offer_timeout_ms, expires_at_ms = deadline })
  to_agent(name, agent_status_msg(a))
  log_event('offered', { offer = id, visitor = vid, agent = name, queue = q })
  return id
end

-- Matches the longest-waiting visitor (across queues) with the longest-idle agent serving
-- that queue, until no pair is left. Returns the offer ids created.
local function match()
  local made = {}
  while true do
    local best_q, best_v, best_score = nil, nil, nil
    for _, q in ipairs(QUEUES) do
      if redis.call('ZCARD', QK[q].idle) > 0 then
        local head = redis.call('ZRANGE', QK[q].waiting, 0, 0, 'WITHSCORES')
        if head[1] then
          local score = tonumber(head[2])
          if best_score == nil or score < best_score then
            best_q, best_v, best_score = q, head[1], score
          end
        end
      end
    end
    if not best_q then break end
    local agent = redis.call('ZRANGE', QK[best_q].idle, 0, 0)[1]
    made[#made + 1] = make_offer(best_q, best_v, agent)
  end
  return made
end

-- Calls -------------------------------------------------------------------------------

local function end_call(c, by, reason)
  redis.call('HDEL', K.calls, c.id)
  local talk_ms = NOW - c.started
  local v = load(K.visitors, c.visitor)
  if v then
    redis.call('HDEL', K.visitors, v.id)
    redis.call('ZREM', K.leases, 'v:' .. v.id)
  end
  local msg = { type = 'call_ended', call_id = c.id, reason = reason, by = by }
  to_visitor(c.visitor, msg)
  to_agent(c.agent, msg)
  local a = load(K.agents, c.agent)
  if a and a.call == c.id then
    agent_make_idle(a, NOW)
    save(K.agents, a.name, a)
    to_agent(a.name, agent_status_msg(a))
  end
  local old = tonumber(redis.call('HGET', K.handle_times, c.queue)) or CFG.default_handle_s
  local handle_s = talk_ms / 1000
  redis.call('HSET', K.handle_times, c.queue, tostring(old * 0.8 + handle_s * 0.2))
  log_event('ended', { call = c.id, visitor = c.visitor, agent = c.agent, queue = c.queue,
    talk_ms = talk_ms, by = by, reason = reason })
end

-- Removes a visitor for good (left, or lease ran out). Ends their call if they had one.
local function remove_visitor(v, reason)
  if v.state == 'in_call' then
    local c = load(K.calls, v.call)
    if c then
      end_call(c, 'desk', 'peer_left')
      return
    end
  elseif v.state == 'offered' then
    local o = load(K.offers, v.offer)
    if o then release_offer(o, 'visitor_left') end
  end
  if QK[v.queue] then
    redis.call('ZREM', QK[v.queue].waiting, v.id)
    touch(v.queue)
  end
  redis.call('HDEL', K.visitors, v.id)
  redis.call('ZREM', K.leases, 'v:' .. v.id)
  log_event('abandoned', { visitor = v.id, queue = v.queue, waited_ms = NOW - v.joined,
    reason = reason })
end

-- 1-based place in line, counting only visitors ahead who are still waiting.
local function position_of(v)
  if not QK[v.queue] then return 0 end
  return redis.call('ZCOUNT', QK[v.queue].waiting, '-inf', '(' .. v.score) + 1
end
