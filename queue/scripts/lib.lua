-- Shared prelude of every humandesk queue script. The client prepends it to each op script,
-- after the key table generated from queue/keys.py (K, NSTATIC, QUEUE_KEY_NAMES, PREFIX and
-- the channel prefixes: see lua_prelude()).
--
-- ARGV[1] is one JSON object: {now?, queues: [...], cfg: {...}, ...op arguments}.
-- KEYS are the desk's static keys (queue/keys.py STATIC_KEYS) followed by the
-- (waiting, idle, serving, places) keys of every name in `queues`, in that order.
-- `waiting` holds the visitors who may be offered now; `places` everyone who has a place in
-- line (also while offered or away), which is what positions count.
-- Scripts publish the messages a state change causes, so delivery is atomic with the change.
--
-- Visitors are ordered by score = join time - priority * PRIORITY_STEP: a higher priority
-- always goes first, and within one priority the longest-waiting visitor does.

local P = cjson.decode(ARGV[1])
local CFG = P.cfg
local PRIORITY_STEP = 1e12
local QUEUES = P.queues
local QK = {}
for i, q in ipairs(QUEUES) do
  local base = NSTATIC + (i - 1) * #QUEUE_KEY_NAMES
  QK[q] = {}
  for j, name in ipairs(QUEUE_KEY_NAMES) do QK[q][name] = KEYS[base + j] end
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

-- The rules of one queue: its stored configuration over the desk-wide defaults (CFG, from
-- QueueConfig: the scripts keep no defaults of their own).
local QCFG = {}
local function qcfg(q)
  local c = QCFG[q]
  if c then return c end
  c = load(K.queue_config, q) or {}
  for name, value in pairs(CFG) do
    if c[name] == nil then c[name] = value end
  end
  QCFG[q] = c
  return c
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
  redis.call(PUBLISH, PREFIX .. TO_VISITOR .. id, cjson.encode(msg))
end

local function to_agent(name, msg)
  redis.call(PUBLISH, PREFIX .. TO_AGENT .. name, cjson.encode(msg))
end

-- Queues whose line or agents changed during this script, each with the first place in line
-- that may have changed (1 unless the caller knows better: a visitor joining at the back
-- changes no one else's place). Announced once at the end: `from` lets the servers recompute
-- only the places at or behind it, so filling a long line costs no O(n) work per join.
local TOUCHED = {}
local function touch(q, from)
  from = from or 1
  local seen = TOUCHED[q]
  if seen == nil or from < seen then TOUCHED[q] = from end
end

local function announce()
  for q, from in pairs(TOUCHED) do
    if QK[q] then
      redis.call(PUBLISH, PREFIX .. ABOUT_QUEUE .. q, cjson.encode({
        type = 'queue', queue = q,
        waiting = redis.call('ZCARD', QK[q].waiting),
        available = redis.call('ZCARD', QK[q].idle),
        serving = redis.call('SCARD', QK[q].serving),
        from = from,
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

-- Call records ------------------------------------------------------------------------

local function update_record(id, fields)
  local r = load(K.call_records, id)
  if not r then return nil end
  for k, v in pairs(fields) do r[k] = v end
  save(K.call_records, id, r)
  return r
end

-- Agents ------------------------------------------------------------------------------

local function agent_status_msg(a)
  -- reason: in English, for logs; reason_code: what the pages translate (missed: the count)
  local msg = { type = 'status', status = a.state, reason = a.reason, reason_code = a.reason_code }
  if a.reason_code == 'missed_offers' then msg.missed = a.missed end
  if a.state == 'wrap_up' then
    msg.wrapup_until = a.wrapup_until
    msg.remaining_ms = math.max(0, a.wrapup_until - NOW)
    msg.call_id = a.last_call
  end
  return msg
end

-- The two `call_started` messages of a call: the agent's (the offerer) and the visitor's.
-- Their one author: accept.lua publishes them, render.lua gives them again for a replay.
local function call_started_msgs(c, v, a)
  return { type = 'call_started', call_id = c.id, role = 'offerer',
      peer = { name = v.name, topic = v.topic, audio_only = v.audio_only }, queue = c.queue,
      _peer = v.id },
    { type = 'call_started', call_id = c.id, role = 'answerer',
      peer = { name = a.display_name or a.name }, _peer = a.name }
end

-- What the agent who transferred the visitor knew: their call's notes and disposition, read
-- from its call record when the offer is rendered (so notes saved after the transfer, in the
-- wrap-up, still reach the next agent). `chat` is the call's chat transcript, when the call
-- record keeps one, passed on as stored. nil for a visitor who was not transferred (or whose
-- record is gone: retention, erasure).
local function handover_of(v)
  local r = v.transferred_call and load(K.call_records, v.transferred_call)
  if not r then return nil end
  return { call_id = r.id, queue = r.queue, agent = r.agent_name or r.agent,
    notes = r.notes or '', disposition = r.disposition or '', chat = r.chat }
end

-- The `offer` message of an offer: make_offer publishes it, render.lua gives it again.
local function offer_msg(o, v)
  return { type = 'offer', offer_id = o.id, queue = o.queue,
    visitor = { name = v.name, topic = v.topic, audio_only = v.audio_only, page = v.page,
      priority = v.priority, transferred_from = v.transferred_from,
      precall = v.precall or cjson.null },
    handover = handover_of(v),
    waited_seconds = math.floor((NOW - v.joined) / 1000),
    timeout_ms = math.max(0, o.deadline - NOW), expires_at_ms = o.deadline }
end

-- Ends a wrap-up (if any), recording its length on the call record.
local function finish_wrapup(a)
  if a.state ~= 'wrap_up' then return end
  redis.call('ZREM', K.wrapups, a.name)
  if a.last_call then
    local r = load(K.call_records, a.last_call)
    if r and r.ended then
      r.wrapup_ms = NOW - r.ended
      save(K.call_records, a.last_call, r)
      log_event('wrapup_ended', { call = a.last_call, agent = a.name, queue = r.queue,
        wrapup_ms = r.wrapup_ms })
    end
  end
  a.wrapup_until = nil
  a.state = 'offline' -- the caller sets the state that follows
end

-- Takes the agent out of every idle line, the serving sets, the delay and wrap-up lists.
local function agent_withdraw(a)
  for _, q in ipairs(a.queues) do
    redis.call('ZREM', QK[q].idle, a.name)
    redis.call('SREM', QK[q].serving, a.name)
    touch(q)
  end
  redis.call('ZREM', K.delayed, a.name)
  finish_wrapup(a)
end

-- Makes the agent Available and offerable, longest-idle first by `idle_since`.
local function agent_make_idle(a, idle_since)
  finish_wrapup(a)
  a.state = 'available'
  a.offer = nil
  a.call = nil
  a.reason = nil
  a.reason_code = nil
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

-- After a call: not offered anything until the wrap-up ends (reaper, or the agent).
local function agent_wrapup(a, call_id, queue)
  a.last_call = call_id
  if qcfg(queue).wrapup_ms <= 0 then
    agent_make_idle(a, NOW)
    return
  end
  a.state = 'wrap_up'
  a.offer = nil
  a.call = nil
  a.wrapup_until = NOW + qcfg(queue).wrapup_ms
  for _, q in ipairs(a.queues) do
    redis.call('ZREM', QK[q].idle, a.name)
    redis.call('SADD', QK[q].serving, a.name)
    touch(q)
  end
  redis.call('ZADD', K.wrapups, a.wrapup_until, a.name)
end

local function agent_level(a, q)
  local levels = a.levels
  if type(levels) == 'table' and levels[q] then return tonumber(levels[q]) end
  return 1
end

-- Visitors ----------------------------------------------------------------------------

-- Puts the visitor back at their original place (their score never changes).
local function visitor_back_in_line(v)
  v.state = 'waiting'
  v.offer = nil
  if QK[v.queue] then
    redis.call('ZADD', QK[v.queue].waiting, v.score, v.id)
    redis.call('ZADD', QK[v.queue].places, v.score, v.id)
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
  if v and reason == 'visitor_left' then
    v.state = 'waiting'
    v.offer = nil
    save(K.visitors, v.id, v)
  end
  local a = load(K.agents, o.agent)
  local rules = qcfg(o.queue)
  if a then
    if reason == 'declined' then
      a.missed = 0
      agent_delay(a, NOW + rules.reject_delay_ms)
    elseif reason == 'timeout' then
      a.missed = (a.missed or 0) + 1
      if a.missed >= rules.max_missed_offers then
        agent_withdraw(a)
        a.state = 'break'
        a.state_since = NOW
        a.offer = nil
        a.reason = 'Missed ' .. a.missed .. ' offers in a row'
        a.reason_code = 'missed_offers'
        log_event('agent_state', { agent = a.name, state = 'break', reason = 'missed_offers' })
      else
        agent_delay(a, NOW + rules.no_answer_delay_ms)
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
  local rules = qcfg(q)
  redis.call('ZREM', QK[q].waiting, vid)
  for _, aq in ipairs(a.queues) do
    redis.call('ZREM', QK[aq].idle, name)
    touch(aq)
  end
  touch(q)
  redis.call('HSET', K.round_robin, q, name)
  local deadline = NOW + rules.offer_timeout_ms
  local o = { id = id, visitor = vid, agent = name, queue = q, deadline = deadline,
    created = NOW }
  save(K.offers, id, o)
  redis.call('ZADD', K.offer_deadlines, deadline, id)
  v.state = 'offered'
  v.offer = id
  save(K.visitors, vid, v)
  a.state = 'offered'
  a.offer = id
  save(K.agents, name, a)
  to_agent(name, offer_msg(o, v))
  to_agent(name, agent_status_msg(a))
  log_event('offered', { offer = id, visitor = vid, agent = name, queue = q })
  return id
end

-- The agent of queue q's idle line who gets the visitor, by the queue's strategy.
-- Level-1 agents go first; a higher level only when no level-1 agent is idle or once the
-- visitor has waited past the queue's escalation time.
local function choose_agent(q, v)
  local rules = qcfg(q)
  local idle = redis.call('ZRANGE', QK[q].idle, 0, -1)
  local escalated = (NOW - v.joined) >= rules.escalation_ms
  local eligible = {}
  local best_level = nil
  local records = {}
  local strategy = rules.strategy
  -- Longest-idle (and any strategy that takes the first eligible agent) only needs the first
  -- idle agent of the best level, and no level is better than 1 (levels are 1-9): stop there
  -- instead of reading every idle agent's record (measured: that made each match O(idle
  -- agents), ~1 ms with 200 idle agents, and capped a desk near 1,300 visitors a second).
  local first_only = strategy ~= 'fewest-calls' and strategy ~= 'round-robin'
    and strategy ~= 'random'
  for _, name in ipairs(idle) do
    local a = load(K.agents, name)
    records[name] = a
    local level = agent_level(a, q)
    if escalated then level = 1 end
    if best_level == nil or level < best_level then
      best_level = level
      eligible = { name }
    elseif level == best_level then
      eligible[#eligible + 1] = name
    end
    if first_only and best_level <= 1 then break end
  end
  if #eligible == 0 then return nil end
  if strategy == 'fewest-calls' then
    local day = math.floor(NOW / 86400000)
    local pick, fewest = nil, nil
    for _, name in ipairs(eligible) do
      local a = records[name]
      local calls = (a.calls_day == day) and (a.calls or 0) or 0
      if fewest == nil or calls < fewest then pick, fewest = name, calls end
    end
    return pick
  elseif strategy == 'round-robin' then
    local last = redis.call('HGET', K.round_robin, q) or ''
    local sorted = {}
    for _, name in ipairs(eligible) do sorted[#sorted + 1] = name end
    table.sort(sorted)
    for _, name in ipairs(sorted) do
      if name > last then return name end
    end
    return sorted[1]
  elseif strategy == 'random' then
    local fence = tonumber(redis.call('GET', K.fence) or '0')
    return eligible[((NOW + fence * 7919) % #eligible) + 1]
  end
  return eligible[1]
end

-- Matches the best visitor (priority, then longest wait, across queues) with an agent of
-- their queue, until no pair is left. Returns the offer ids created.
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
    local v = load(K.visitors, best_v)
    local agent = choose_agent(best_q, v)
    made[#made + 1] = make_offer(best_q, best_v, agent)
  end
  return made
end

-- Calls -------------------------------------------------------------------------------

local function close_call(c, by, reason)
  redis.call('HDEL', K.calls, c.id)
  local talk_ms = NOW - c.started
  local old = tonumber(redis.call('HGET', K.handle_times, c.queue)) or CFG.default_handle_s
  redis.call('HSET', K.handle_times, c.queue, tostring(old * 0.8 + (talk_ms / 1000) * 0.2))
  update_record(c.id, { ended = NOW, talk_ms = talk_ms, ended_by = by, end_reason = reason })
  log_event('ended', { call = c.id, visitor = c.visitor, agent = c.agent, queue = c.queue,
    talk_ms = talk_ms, by = by, reason = reason })
  local a = load(K.agents, c.agent)
  if a and a.call == c.id then
    agent_wrapup(a, c.id, c.queue)
    save(K.agents, a.name, a)
  end
  return a
end

local function end_call(c, by, reason)
  local v = load(K.visitors, c.visitor)
  if v then
    redis.call('HDEL', K.visitors, v.id)
    redis.call('ZREM', K.leases, 'v:' .. v.id)
  end
  local msg = { type = 'call_ended', call_id = c.id, reason = reason, by = by }
  to_visitor(c.visitor, msg)
  to_agent(c.agent, msg)
  local a = close_call(c, by, reason)
  if a and a.last_call == c.id then to_agent(a.name, agent_status_msg(a)) end
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
    redis.call('ZREM', QK[v.queue].places, v.id)
    touch(v.queue)
  end
  redis.call('HDEL', K.visitors, v.id)
  redis.call('ZREM', K.leases, 'v:' .. v.id)
  log_event('abandoned', { visitor = v.id, queue = v.queue, waited_ms = NOW - v.joined,
    reason = reason })
end

-- 1-based place in line, counting everyone with a place ahead (waiting, offered or away). A
-- visitor with a place gets their rank, which orders equal scores (joins in the same
-- millisecond) exactly as the line does; ZCOUNT alone would give a whole tie the same place.
local function position_of(v)
  if not QK[v.queue] then return 0 end
  local rank = redis.call('ZRANK', QK[v.queue].places, v.id)
  if rank then return rank + 1 end
  return redis.call('ZCOUNT', QK[v.queue].places, '-inf', '(' .. v.score) + 1
end
