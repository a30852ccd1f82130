-- Fold one voter's scores into their precinct (the Redis Cluster path).
--
-- KEYS[1] precinct:{P}, KEYS[2] precinct-members:{P}
-- ARGV[1] voter id, ARGV[2] "v1,v2,..." in the order of ARGV[3..], the score names

local scores = {}
for i = 3, #ARGV do
  scores[#scores + 1] = ARGV[i]
end
local deltas = {}
local fields = aggregate_fields(scores)
local folded = fold_precinct(deltas, fields, KEYS[1], KEYS[2], ARGV[1], ARGV[2], split_numbers(ARGV[2]))
apply_deltas(deltas)
return folded
