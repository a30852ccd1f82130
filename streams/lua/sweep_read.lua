-- The sweep's read of one chunk of voters, in one call (single Redis only).
-- KEYS: per voter, its attributes key then its voter hash.
-- ARGV: the voter hash fields to return, in order.
-- Returns one flat array: per voter its attributes JSON (false, a nil reply, when the
-- voter is gone) then its fields as one text "v1,v2,...", -1 where a field is missing:
-- two replies per voter instead of one per field, parsed by numpy in one call.
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call("GET", KEYS[i])
  local values = redis.call("HMGET", KEYS[i + 1], unpack(ARGV))
  for j = 1, #ARGV do
    if not values[j] then
      values[j] = "-1"
    end
  end
  out[#out + 1] = table.concat(values, ",")
end
return out
