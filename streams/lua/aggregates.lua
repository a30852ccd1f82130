-- Library: folding voters' scores into their precinct's aggregates, idempotently.
--
-- precinct:{P} holds s:count, s:sum and s:h0 .. s:h9 per score; precinct-members:{P}
-- holds, per voter, the scores last folded in. The update is a function of state
-- (what was folded before, what is true now), not a delta, so repeating it for the
-- same scores changes nothing. A batch gathers its increments first and applies one
-- HINCRBY per precinct field: a sweep moves thousands of voters of one precinct.

local function split_numbers(text)
  local out = {}
  for part in string.gmatch(text, '[^,]+') do
    out[#out + 1] = tonumber(part)
  end
  return out
end

local function bucket(value)
  return math.min(9, math.floor((value - 1) / 10))
end

local function add_delta(deltas, key, field, amount)
  local fields = deltas[key]
  if not fields then
    fields = {}
    deltas[key] = fields
  end
  fields[field] = (fields[field] or 0) + amount
end

local function fold_precinct(deltas, aggregate_key, members_key, voter, now, scores)
  local before = redis.call('HGET', members_key, voter)
  if before == now then
    return 0
  end
  local old_values = before and split_numbers(before) or nil
  local new_values = split_numbers(now)
  for i, s in ipairs(scores) do
    local new = new_values[i]
    if old_values then
      local old = old_values[i]
      add_delta(deltas, aggregate_key, s .. ':sum', new - old)
      if bucket(old) ~= bucket(new) then
        add_delta(deltas, aggregate_key, s .. ':h' .. bucket(old), -1)
        add_delta(deltas, aggregate_key, s .. ':h' .. bucket(new), 1)
      end
    else
      add_delta(deltas, aggregate_key, s .. ':count', 1)
      add_delta(deltas, aggregate_key, s .. ':sum', new)
      add_delta(deltas, aggregate_key, s .. ':h' .. bucket(new), 1)
    end
  end
  redis.call('HSET', members_key, voter, now)
  return 1
end

local function apply_deltas(deltas)
  for key, fields in pairs(deltas) do
    for field, amount in pairs(fields) do
      -- HINCRBY refuses Lua's "-0"; zero changes nothing anyway.
      if amount ~= 0 then
        redis.call('HINCRBY', key, field, amount)
      end
    end
  end
end
