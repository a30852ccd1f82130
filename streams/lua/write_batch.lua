-- Write a batch of refreshed scores in one step (the single-server path).
--
-- KEYS[1..n] scores:{s} per score, then changes; then per write:
--   voter:{V}, history:{V}, precinct:{P}, precinct-members:{P}
-- ARGV[1] JSON {"scores": [...], "maxlen": n, "history_length": n, "writes": [
--   {"voter", "fields": [k, v, ...], "values": "v1,...", "feed": [[score, old, new], ...],
--    "cause", "ts", "event_ts", "history": JSON text or null}]}
-- A write may carry "read_at": see write_one below.
-- The voter hash, rankings and aggregates are set from state, so a repeated batch
-- leaves them as they are; the feed and history only grow for real changes.
-- Rankings and aggregates are written once per batch (a voter written twice keeps
-- its last scores: ZADD takes its pairs in order), rankings only for moved scores.

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

local state_fields = {'seq', unpack(scores)}

-- Returns 1 when written, 0 when left alone.
local function write_one(i, write)
  local base = nscores + 1 + 4 * (i - 1)
  local voter_key, history_key = KEYS[base + 1], KEYS[base + 2]
  local stored = redis.call('HMGET', voter_key, unpack(state_fields))
  -- A write with read_at (the voter's evidence sequence number when the sweep read
  -- it) is dropped when an event has moved the voter on since: it is current already.
  if write.read_at ~= nil and tonumber(stored[1] or -1) ~= write.read_at then
    return 0
  end
  redis.call('HSET', voter_key, unpack(write.fields))

  local values = split_numbers(write.values)
  for j = 1, nscores do
    -- The ranking is written in the same step as the voter hash, so it holds what
    -- the hash holds: only a score whose value moves needs its ranking touched.
    if tonumber(stored[j + 1]) ~= values[j] then
      local ranking = rankings[j]
      ranking[#ranking + 1] = values[j]
      ranking[#ranking + 1] = write.voter
    end
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
  return 1
end

local written = 0
for i, write in ipairs(batch.writes) do
  written = written + write_one(i, write)
end

write_rankings()
apply_deltas(deltas)
return written
