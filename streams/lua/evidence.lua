-- Library: applying one event's evidence to one voter, exactly once.
--
-- Totals are kept in integer thousandths of a pseudo-count, so that removing a
-- retracted event subtracts exactly what adding it added.

local function milli(x)
  return math.floor(x * 1000 + 0.5)
end

local function add(voter_key, field, amount)
  -- Lua renders -1 * 0 as "-0", which HINCRBY refuses; zero adds nothing anyway.
  if amount ~= 0 then
    redis.call('HINCRBY', voter_key, field, amount)
  end
end

local function fold_evidence(voter_key, doc, sign)
  for score, pair in pairs(doc.evidence or {}) do
    add(voter_key, score .. '_a', sign * milli(pair[1]))
    add(voter_key, score .. '_b', sign * milli(pair[2]))
    add(voter_key, score .. '_n', sign)
  end
end

-- The voter hash fields voter_state reads, in its order: seq, then per score
-- successes, failures, count and stored value.
local function state_fields(scores)
  local fields = {'seq'}
  for _, s in ipairs(scores) do
    fields[#fields + 1] = s .. '_a'
    fields[#fields + 1] = s .. '_b'
    fields[#fields + 1] = s .. '_n'
    fields[#fields + 1] = s
  end
  return fields
end

-- Append {applied, seq, then per score: successes, failures, count, value or -1} to out.
local function voter_state(out, voter_key, applied, fields)
  out[#out + 1] = applied
  local v = redis.call('HMGET', voter_key, unpack(fields))
  for i = 1, #fields do
    -- A score never written reads -1; any other missing field reads 0.
    local missing = (i > 1 and (i - 1) % 4 == 0) and '-1' or '0'
    out[#out + 1] = tonumber(v[i] or missing)
  end
end

local function retract(evidence_key, voter_key, event_id, target)
  local original = redis.call('HGET', evidence_key, target)
  if not original then
    -- The original has not arrived yet (retractions travel on a topic of their own):
    -- a tombstone makes sure it never counts.
    local tombstone = cjson.encode({retracted_by = event_id, evidence = {}, tombstone = true})
    redis.call('HSET', evidence_key, target, tombstone)
    return
  end
  local doc = cjson.decode(original)
  if doc.retracted_by then
    return
  end
  fold_evidence(voter_key, doc, -1)
  doc.retracted_by = event_id
  redis.call('HSET', evidence_key, target, cjson.encode(doc))
end

-- An event whose retraction came first: kept as it would be had it come first, retracted.
local function arrive_retracted(evidence_key, voter_key, event_id, record, tombstone)
  local doc = cjson.decode(record)
  doc.retracted_by = tombstone.retracted_by
  redis.call('HSET', evidence_key, event_id, cjson.encode(doc))
  redis.call('HINCRBY', voter_key, 'seq', 1)
end

-- Returns 1 when the event was applied now, 0 when it had been applied before.
local function apply_event(evidence_key, voter_key, event_id, record, retracts)
  local known = redis.call('HGET', evidence_key, event_id)
  if known then
    local doc = cjson.decode(known)
    if not doc.tombstone then
      return 0
    end
    arrive_retracted(evidence_key, voter_key, event_id, record, doc)
    return 1
  end
  if retracts == '' then
    fold_evidence(voter_key, cjson.decode(record), 1)
  else
    retract(evidence_key, voter_key, event_id, retracts)
  end
  redis.call('HSET', evidence_key, event_id, record)
  redis.call('HINCRBY', voter_key, 'seq', 1)
  return 1
end
