-- Apply a batch of events' evidence, in order, each exactly once.
--
-- KEYS  per item: evidence:{V}, voter:{V}
-- ARGV[1] JSON list of items: [event id, record JSON to keep, retracted event id or ""]
-- ARGV[2..] score names
-- Returns, per item: applied, seq, then per score successes, failures, count, value.

local items = cjson.decode(ARGV[1])
local scores = {}
for i = 2, #ARGV do
  scores[#scores + 1] = ARGV[i]
end
local fields = state_fields(scores)

local out = {}
for i, item in ipairs(items) do
  local evidence_key, voter_key = KEYS[2 * i - 1], KEYS[2 * i]
  local applied = apply_event(evidence_key, voter_key, item[1], item[2], item[3])
  voter_state(out, voter_key, applied, fields)
end
return out
