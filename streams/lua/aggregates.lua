-- Library: folding one voter's scores into their precinct's aggregates, idempotently.
--
-- precinct:{P} holds s:count, s:sum and s:h0 .. s:h9 per score; precinct-members:{P}
-- holds, per voter, the scores last folded in. The update is a function of state
-- (what was folded before, what is true now), not a delta, so repeating it for the
-- same scores changes nothing.

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

local function fold_precinct(aggregate_key, members_key, voter, now, scores)
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
      redis.call('HINCRBY', aggregate_key, s .. ':sum', new - old)
      if bucket(old) ~= bucket(new) then
        redis.call('HINCRBY', aggregate_key, s .. ':h' .. bucket(old), -1)
        redis.call('HINCRBY', aggregate_key, s .. ':h' .. bucket(new), 1)
      end
    else
      redis.call('HINCRBY', aggregate_key, s .. ':count', 1)
      redis.call('HINCRBY', aggregate_key, s .. ':sum', new)
      redis.call('HINCRBY', aggregate_key, s .. ':h' .. bucket(new), 1)
    end
  end
  redis.call('HSET', members_key, voter, now)
  return 1
end
