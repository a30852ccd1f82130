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
-- its last scores: ZADD takes its pairs in order).

local RANKING_PAIRS = 1000  -- per ZADD call: Lua's unpack stops near 8000 values

local batch = cjson.decode(ARGV[1])
local scores = batch.scores
local nscores = #scores
local changes_key = KEYS[nscores + 1]
local rankings, deltas = {}, {}
for j = 1, nscores do
  rankings[j] = {}
end

local function write_rankings()
  for j = 1, nscores do
    local pairs_ = rankings[j]
    for start = 1, #pairs_, 2 * RANKING_PAIRS do
      local stop = math.min(#pairs_, start + 2 * RANKING_PAIRS - 1)
      redis.call('ZADD', KEYS[j], unpack(pairs_, start, stop))
    end
  end
end

for i, write in ipairs(batch.writes) do
  local base = nscores + 1 + 4 * (i - 1)
  local voter_key, history_key = KEYS[base + 1], KEYS[base + 2]
  redis.call('HSET', voter_key, unpack(write.fields))

  local values = split_numbers(write.values)
  for j = 1, nscores do
    local ranking = rankings[j]
    ranking[#ranking + 1] = values[j]
    ranking[#ranking + 1] = write.voter
  end
  fold_precinct(deltas, KEYS[base + 3], KEYS[base + 4], write.voter, write.values, scores)

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

write_rankings()
apply_deltas(deltas)
return #batch.writes
