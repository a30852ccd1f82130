-- Library: folding voters' scores into their precinct's aggregates, and their rankings.
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

-- The aggregate field names of each score, made once per script call rather than
-- concatenated for every voter: fields[i].sum, .count and .h[0..9].
local function aggregate_fields(scores)
  local fields = {}
  for i, s in ipairs(scores) do
    local h = {}
    for b = 0, 9 do
      h[b] = s .. ':h' .. b
    end
    fields[i] = {sum = s .. ':sum', count = s .. ':count', h = h}
  end
  return fields
end

-- now: the voter's scores as stored ("v1,v2,..."), new_values: the same as numbers.
local function fold_precinct(deltas, fields, aggregate_key, members_key, voter, now, new_values)
  local before = redis.call('HGET', members_key, voter)
  if before == now then
    return 0
  end
  local old_values = before and split_numbers(before) or nil
  for i, names in ipairs(fields) do
    local new = new_values[i]
    if old_values then
      local old = old_values[i]
      add_delta(deltas, aggregate_key, names.sum, new - old)
      local was, is = bucket(old), bucket(new)
      if was ~= is then
        add_delta(deltas, aggregate_key, names.h[was], -1)
        add_delta(deltas, aggregate_key, names.h[is], 1)
      end
    else
      add_delta(deltas, aggregate_key, names.count, 1)
      add_delta(deltas, aggregate_key, names.sum, new)
      add_delta(deltas, aggregate_key, names.h[bucket(new)], 1)
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

-- Rankings: rankings[j] gathers flat (score, voter) pairs for the sorted set KEYS[j],
-- written with as few ZADD calls as Lua's unpack allows (it stops near 8000 values).
local RANKING_PAIRS = 1000

local function new_rankings(n)
  local rankings = {}
  for j = 1, n do
    rankings[j] = {}
  end
  return rankings
end

-- Queue the voter's new value for ranking j, only when it moved from the old one.
local function rank_if_moved(rankings, j, old, new, voter)
  if old ~= new then
    local ranking = rankings[j]
    ranking[#ranking + 1] = new
    ranking[#ranking + 1] = voter
  end
end

local function write_rankings(rankings)
  for j, pairs_ in ipairs(rankings) do
    for start = 1, #pairs_, 2 * RANKING_PAIRS do
      local stop = math.min(#pairs_, start + 2 * RANKING_PAIRS - 1)
      redis.call('ZADD', KEYS[j], unpack(pairs_, start, stop))
    end
  end
end
