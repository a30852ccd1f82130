-- The sweep's read of one chunk of voters, in one call (single Redis only).
-- KEYS: per voter, its attributes key then its voter hash.
-- ARGV[1]: "1" to return each voter's attributes JSON first, "0" not to;
-- ARGV[2..]: the voter hash fields to return, in order.
-- Returns one flat array: per voter [attributes,] then its fields (false, a nil reply,
-- where missing; a Lua table must not hold nil).
local with_attrs = ARGV[1] == "1"
local fields = {unpack(ARGV, 2)}
local out = {}
for i = 1, #KEYS, 2 do
  if with_attrs then
    out[#out + 1] = redis.call("GET", KEYS[i])
  end
  local values = redis.call("HMGET", KEYS[i + 1], unpack(fields))
  for j = 1, #fields do
    out[#out + 1] = values[j]
  end
end
return out
