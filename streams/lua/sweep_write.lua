-- Write a slice of the sweep's re-scored voters in one step (the single-server path).
--
-- KEYS: scores:{s} per score, then precinct:{P} and precinct-members:{P} per precinct
-- of the slice, then voter:{V} per voter.
-- ARGV[1] JSON {"scores": [...], "precincts": [P, ...], "cause", "version", "now"}
-- ARGV[2] JSON, one entry per voter in each list: "voters", "precinct" (an index into
--   "precincts"), "read_at" (the voter's evidence sequence number when the sweep read
--   it), "numbers" (flat: value, low, high, evidence count per score), "previous"
--   (flat: the score values the sweep read, -1 for none).
-- A voter whose sequence number moved on since the read is left alone: an event has
-- re-scored it already. Otherwise its hash, rankings and precinct follow. Returns how
-- many voters were written.

local head = cjson.decode(ARGV[1])
local body = cjson.decode(ARGV[2])
local scores = head.scores
local nscores = #scores
local precinct_base = nscores
local voter_base = nscores + 2 * #head.precincts
local numbers, previous, read_at = body.numbers, body.previous, body.read_at

-- The voter hash fields, in one table reused for every voter: only the values change.
local fields = {'updated_at', head.now, 'model_version', head.version,
  'last_event', head.cause, 'precinct', ''}
for _, s in ipairs(scores) do
  for _, name in ipairs({s, s .. '_low', s .. '_high', s .. '_n'}) do
    fields[#fields + 1] = name
    fields[#fields + 1] = 0
  end
end

local rankings, deltas = new_rankings(nscores), {}
local aggregates = aggregate_fields(scores)

local function write_voter(i)
  local voter_key = KEYS[voter_base + i]
  if tonumber(redis.call('HGET', voter_key, 'seq') or -1) ~= read_at[i] then
    return 0
  end

  local voter, p = body.voters[i], body.precinct[i]
  fields[8] = head.precincts[p]
  local values = {}
  for j = 1, nscores do
    local at = 4 * nscores * (i - 1) + 4 * (j - 1)
    local slot = 8 + 8 * (j - 1)
    for k = 1, 4 do
      fields[slot + 2 * k] = numbers[at + k]
    end
    values[j] = numbers[at + 1]
    -- What the sweep read is what the hash holds (the sequence number says no event
    -- came between), so only a score whose value moves needs its ranking touched.
    rank_if_moved(rankings, j, previous[nscores * (i - 1) + j], values[j], voter)
  end
  redis.call('HSET', voter_key, unpack(fields))

  local aggregate_key = KEYS[precinct_base + 2 * p - 1]
  local members_key = KEYS[precinct_base + 2 * p]
  local now = table.concat(values, ',')
  fold_precinct(deltas, aggregates, aggregate_key, members_key, voter, now, values)
  return 1
end

local written = 0
for i = 1, #body.voters do
  written = written + write_voter(i)
end

write_rankings(rankings)
apply_deltas(deltas)
return written
