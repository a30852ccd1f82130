"""Garbage in, dead letters out: generated bad input against the decoder and the pipeline.

Whatever bytes a phone sends, ``decode_event`` either returns a valid event or raises
``InvalidEvent`` with a known reason, and the scoring pipeline turns every bad record
into a dead letter carrying the original bytes and that reason, without raising.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.population import SCORES
from streams.config import Settings
from streams.errors import InvalidEvent
from streams.pipeline import Record, ScoringPipeline
from streams.redisio import VoterStates
from streams.schemas import decode_event

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
REASONS = {
    "oversized",
    "not_utf8",
    "malformed_json",
    "not_an_object",
    "unknown_schema_version",
    "unknown_type",
    "wrong_topic",
    "missing_voter_id",
    "missing_field",
    "invalid_field",
    "ts_in_future",
    "key_mismatch",
    "unknown_voter",
}
KNOWN_VOTERS = ("V0000001", "V0000002", "V0000003")


def canvass(**changes: Any) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "type": "canvass",
        "event_id": "c-1",
        "voter_id": "V0000001",
        "ts": NOW.isoformat(),
        "source": "north",
        "payload": {"contact": "contacted", "support_id": 2, "will_vote": "yes"},
    }
    event.update(changes)
    return event


def decode(raw: bytes, expected_type: str | None = None) -> Any:
    return decode_event(raw, expected_type=expected_type, now=NOW.timestamp())


# --- each kind of bad input the issue names, with the reason it must get ---------------

FUTURE = (NOW + timedelta(days=2)).isoformat()
BAD_INPUT = [
    ("malformed JSON", b'{"schema_version": 1,', "malformed_json"),
    ("a JSON list", b"[1, 2]", "not_an_object"),
    ("unknown schema version", orjson.dumps(canvass(schema_version=2)), "unknown_schema_version"),
    ("no schema version", orjson.dumps({"type": "canvass"}), "unknown_schema_version"),
    ("missing voter_id", orjson.dumps(canvass(voter_id=None)), "missing_voter_id"),
    ("empty voter_id", orjson.dumps(canvass(voter_id="")), "missing_voter_id"),
    ("voter_id a number", orjson.dumps(canvass(voter_id=42)), "invalid_field"),
    ("support_id text", orjson.dumps(canvass(payload={"contact": "contacted", "support_id": "2"})),
     "invalid_field"),
    ("support ID 9", orjson.dumps(canvass(payload={"contact": "contacted", "support_id": 9})),
     "invalid_field"),
    ("negative donation",
     orjson.dumps(canvass(type="donation", payload={"amount": -10.0, "recurring": False})),
     "invalid_field"),
    ("timestamp far in the future", orjson.dumps(canvass(ts=FUTURE)), "ts_in_future"),
    ("timestamp without a zone", orjson.dumps(canvass(ts="2026-11-03T12:00:00")), "invalid_field"),
    ("oversized payload", orjson.dumps(canvass(source="x" * 20_000)), "oversized"),
    ("non-UTF-8 bytes", b'{"voter_id": "\xff\xfe"}', "not_utf8"),
    ("unknown field", orjson.dumps(canvass(extra=1)), "invalid_field"),
    ("missing payload", orjson.dumps({k: v for k, v in canvass().items() if k != "payload"}),
     "missing_field"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "reason"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_each_kind_of_bad_input_gets_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.reason == reason


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(orjson.dumps(canvass()), expected_type="donation")
    assert caught.value.reason == "wrong_topic"


# --- generated garbage ------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # orjson's range; larger ints cannot be sent anyway
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["schema_version", "type", "event_id", "voter_id", "ts", "source", "payload"]
PAYLOAD_FIELDS = ["contact", "support_id", "will_vote", "donate_ask", "amount", "recurring"]


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with some fields replaced by arbitrary JSON, or dropped."""
    event = canvass()
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            event[name] = draw(json_values)
        else:
            event.pop(name, None)
    payload = event.get("payload")
    if isinstance(payload, dict):
        payload = dict(payload)
        for name in draw(st.lists(st.sampled_from(PAYLOAD_FIELDS), max_size=3)):
            payload[name] = draw(json_values)
        event["payload"] = payload
    return orjson.dumps(event)


garbage = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    mutated_events(),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
)


@given(garbage)
@settings(max_examples=200, deadline=None)
def test_the_decoder_accepts_or_names_a_reason_and_never_crashes(raw: bytes) -> None:
    try:
        event = decode(raw)
    except InvalidEvent as exc:
        assert exc.reason in REASONS
        return
    assert event.voter_id and event.schema_version == 1
    assert decode(event.to_bytes()) == event  # what it accepts, it accepts again unchanged


@given(st.sampled_from([1, 2, 3, 4, 5, None]), st.sampled_from(["yes", "no", "maybe", None]))
def test_valid_events_decode_to_what_was_sent(
    support_id: int | None, will_vote: str | None
) -> None:
    payload = {"contact": "contacted", "support_id": support_id, "will_vote": will_vote}
    event = decode(orjson.dumps(canvass(payload=payload)), expected_type="canvass")
    assert event.payload.support_id == support_id and event.payload.will_vote == will_vote


# --- the pipeline: garbage becomes dead letters, good events still apply ---------------


class MemoryStore:
    """Just enough of RedisStore for the pipeline: known voters and exactly-once ids."""

    def __init__(self) -> None:
        self.applied: dict[str, list[str]] = {}
        self.writes = 0

    async def voter_attributes(self, voter_ids: list[str]) -> dict[str, Any]:
        return {v: ({"voter_id": v, "precinct": "P1"} if v in KNOWN_VOTERS else None)
                for v in voter_ids}  # fmt: skip

    async def apply_evidence(self, items: list[tuple]) -> VoterStates:
        rows = []
        for voter_id, event_id, _record, _retracts in items:
            ids = self.applied.setdefault(voter_id, [])
            fresh = event_id not in ids
            if fresh:
                ids.append(event_id)
            no_evidence_no_score = [0, 0, 0, -1] * len(SCORES)
            rows.append([int(fresh), len(ids), *no_evidence_no_score])
        return VoterStates(np.array(rows, dtype=np.int64))

    async def write_scores(self, writes: list) -> None:
        self.writes += len(writes)


class MemoryOutbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, list]] = []

    async def send_many(self, messages: list) -> None:
        self.sent.extend(messages)


class FreshModels:
    def __init__(self) -> None:
        from models.population import PopulationModels

        self.models = PopulationModels()


def run_pipeline(
    values: list[tuple[bytes | None, bytes]], topics: list[str] | None = None
) -> tuple[Any, MemoryStore, MemoryOutbox]:
    """Run one batch of (key, value) records, on the canvass topic unless ``topics`` says."""
    topics = topics or ["canvass"] * len(values)
    config = Settings(topic_prefix="fz-")
    store, outbox = MemoryStore(), MemoryOutbox()
    pipeline = ScoringPipeline(config, store, FreshModels(), outbox, clock=NOW.timestamp)  # type: ignore[arg-type]
    records = [
        Record(f"fz-{topic}", 0, offset, key, value, int(NOW.timestamp() * 1000))
        for offset, ((key, value), topic) in enumerate(zip(values, topics))
    ]
    report = asyncio.run(pipeline.process(records))
    return report, store, outbox


def good_event(i: int) -> tuple[bytes, bytes]:
    voter_id = KNOWN_VOTERS[i % len(KNOWN_VOTERS)]
    return voter_id.encode(), orjson.dumps(canvass(event_id=f"good-{i}", voter_id=voter_id))


@given(st.lists(st.tuples(st.sampled_from([None, b"V0000001", b"\xff"]), garbage), max_size=15))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_pipeline_dead_letters_garbage_and_applies_the_rest(bad: list) -> None:
    good = [good_event(i) for i in range(3)]
    report, store, outbox = run_pipeline(bad + good)

    letters = [m for m in outbox.sent if m[0] == "fz-dead-letters"]
    assert len(letters) == sum(report.dead_letters.values())
    for _topic, _key, value, headers in letters:
        header = dict(headers)
        assert header["reason"].decode() in REASONS
        assert int(header["offset"]) < len(bad) + len(good)
        assert value == (bad + good)[int(header["offset"])][1]  # the original bytes
    good_ids = {f"good-{i}" for i in range(3)}
    assert good_ids <= {e for ids in store.applied.values() for e in ids}
    assert report.applied + report.duplicates + len(letters) == len(bad) + len(good)


def test_the_pipeline_dead_letters_each_kind_with_its_reason_and_counts_it() -> None:
    bad = [(b"V0000001", raw) for _name, raw, _reason in BAD_INPUT]
    unknown = orjson.dumps(canvass(event_id="u-1", voter_id="V9999999"))
    bad.append((b"V9999999", unknown))
    on = ["donations" if name == "negative donation" else "canvass" for name, *_ in BAD_INPUT]
    report, store, outbox = run_pipeline(bad + [good_event(0)], [*on, "canvass", "canvass"])

    reasons = [dict(m[3])["reason"].decode() for m in outbox.sent if m[0] == "fz-dead-letters"]
    expected = [reason for _name, _raw, reason in BAD_INPUT]
    assert sorted(reasons) == sorted([*expected, "unknown_voter"])
    assert sum(report.dead_letters.values()) == len(bad)
    assert report.dead_letters[("fz-canvass", "unknown_voter")] == 1
    assert store.applied == {"V0000001": ["good-0"]}
