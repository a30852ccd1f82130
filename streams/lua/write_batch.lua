-- Write a batch of refreshed scores in one step (the single-server path).
--
-- KEYS[1..n] scores:{s} per score, then changes; then per write:
--   voter:{V}, history:{V}, precinct:{P}, precinct-members:{P}
-- ARGV[1] JSON {"scores": [...], "maxlen": n, "history_length": n, "writes": [
--   {"voter", "fields": [k, v, ...], "values": "v1,...", "feed": [[score, old, new], ...],
--    "cause", "ts", "event_ts", "history": JSON text or null}]}
-- The voter hash, rankings and aggregates are set from state, so a repeated batch
-- leaves them as they are; the feed and history only grow for real changes.
-- Rankings and aggregates are written once per batch (a voter written twice keeps
-- its last scores: ZADD takes its pairs in order), rankings only for moved scores.

local batch = cjson.decode(ARGV[1])
local scores = batch.scores
local nscores = #scores
local changes_key = KEYS[nscores + 1]
local rankings, deltas = new_rankings(nscores), {}
local fields = aggregate_fields(scores)

local function write_one(i, write)
  local base = nscores + 1 + 4 * (i - 1)
  local voter_key, history_key = KEYS[base + 1], KEYS[base + 2]
  local stored = redis.call('HMGET', voter_key, unpack(scores))
  redis.call('HSET', voter_key, unpack(write.fields))

  local values = split_numbers(write.values)
  for j = 1, nscores do
    -- The ranking is written in the same step as the voter hash, so it holds what
    -- the hash holds: only a score whose value moves needs its ranking touched.
    rank_if_moved(rankings, j, tonumber(stored[j]), values[j], write.voter)
  end
  fold_precinct(deltas, fields, KEYS[base + 3], KEYS[base + 4], write.voter, write.values, values)

  for _, change in ipairs(write.feed) do
    redis.call('XADD', changes_key, 'MAXLEN', '~', batch.maxlen, '*',
      'voter', write.voter, 'score', change[1], 'old', change[2], 'new', change[3],
      'cause', write.cause, 'ts', write.ts, 'event_ts', write.event_ts)
  end
  if write.history ~= cjson.null and write.history ~= nil then
    redis.call('LPUSH', history_key, write.history)
    redis.call('LTRIM', history_key, 0, batch.history_length - 1)
  end
end

for i, write in ipairs(batch.writes) do
  write_one(i, write)
end

write_rankings(rankings)
apply_deltas(deltas)
return #batch.writes
