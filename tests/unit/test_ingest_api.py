"""The ingest API's answers: token checks, validation errors, and what it produces.

The producer here is an in-memory stand-in; tests/integration/test_ingest.py sends
the same requests through real Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError

from streams.config import Settings
from streams.ingest import IngestService, RateLimiter, TokenStore, build_app


class MemoryProducer:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    async def produce(self, records: Sequence[tuple[str, bytes, bytes]]) -> list[tuple[int, int]]:
        if self.fail:
            raise KafkaConnectionError("broker gone")
        start = len(self.records)
        self.records.extend(records)
        return [(0, start + i) for i in range(len(records))]


def canvass(source: str = "north-canvass", **changes: Any) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "type": "canvass",
        "event_id": "c-1",
        "voter_id": "V0000042",
        "ts": datetime.now(UTC).isoformat(),
        "source": source,
        "payload": {"contact": "contacted", "support_id": 2, "will_vote": "yes"},
    }
    return event | changes


class Api:
    """A test client, the producer behind it, and one valid token."""

    def __init__(self, tmp_path, rate: float = 1000, burst: int = 1000):
        self.settings = Settings(topic_prefix="tunit-", data_dir=tmp_path)
        self.tokens = TokenStore.for_settings(self.settings)
        self.token = self.tokens.add("north-canvass")
        self.producer = MemoryProducer()
        limiter = RateLimiter(rate, burst)
        self.service = IngestService(self.settings, self.tokens, self.producer, limiter)

    def post(self, path: str, *, token: str | None = "valid", **kwargs: Any):
        headers = (
            {}
            if token is None
            else {"Authorization": f"Bearer {self.token if token == 'valid' else token}"}
        )
        return asyncio.run(self._post(path, headers, kwargs))

    async def _post(self, path: str, headers: dict, kwargs: dict) -> tuple[int, Any]:
        # An aiohttp app belongs to one event loop, and each call runs its own loop.
        async with TestClient(TestServer(build_app(self.service))) as client:
            response = await client.post(path, headers=headers, **kwargs)
            return response.status, await response.json()


@pytest.fixture
def api(tmp_path) -> Api:
    return Api(tmp_path)


def test_an_event_goes_to_its_type_topic_keyed_by_voter(api):
    status, body = api.post("/v1/events", json=canvass())
    assert status == 200
    assert body["events"] == [
        {"event_id": "c-1", "topic": "tunit-canvass", "partition": 0, "offset": 0}
    ]
    topic, key, value = api.producer.records[0]
    assert (topic, key) == ("tunit-canvass", b"V0000042")
    assert b'"support_id":2' in value


@pytest.mark.parametrize(
    ("token", "reason"), [(None, "missing_token"), ("vs_not-a-token", "invalid_token")]
)
def test_a_request_without_a_valid_token_is_refused_and_nothing_produced(api, token, reason):
    status, body = api.post("/v1/events", token=token, json=canvass())
    assert (status, body["error"]) == (401, reason)
    assert api.producer.records == []


def test_an_event_from_another_source_is_forbidden(api, caplog):
    status, body = api.post("/v1/events", json=canvass(source="state-party"))
    assert (status, body["error"], body["field"]) == (403, "source_mismatch", "source")
    assert api.producer.records == []
    assert "reason=source_mismatch" in caplog.text


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        (
            {"payload": {"contact": "contacted", "support_id": 9}},
            "invalid_field",
            "payload.support_id",
        ),
        ({"payload": {"support_id": 2}}, "missing_field", "payload.contact"),
        ({"voter_id": ""}, "missing_voter_id", "voter_id"),
        ({"type": "petition"}, "unknown_type", "type"),
        ({"ts": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "ts_in_future", "ts"),
        ({"extra": 1}, "invalid_field", "extra"),
    ],
)
def test_a_bad_event_is_refused_with_the_field_named(api, change, reason, field):
    status, body = api.post("/v1/events", json=canvass(**change))
    assert (status, body["error"], body["field"]) == (422, reason, field)
    assert field in body["detail"] or reason in ("missing_voter_id", "unknown_type")


def test_unreadable_bodies_are_400_and_oversized_events_413(api):
    assert api.post("/v1/events", data=b"{nope")[1]["error"] == "malformed_json"
    assert api.post("/v1/events", data=b"[1]")[0] == 400
    huge = canvass(payload={"contact": "contacted"}, event_id="c-" + "x" * 20_000)
    assert api.post("/v1/events", json=huge)[0] == 413


def test_a_batch_with_one_bad_event_is_refused_whole_naming_its_index(api):
    events = [canvass(event_id=f"c-{i}") for i in range(3)]
    events[2]["payload"] = {"contact": "maybe"}
    status, body = api.post("/v1/events/batch", json=events)
    assert (status, body["index"], body["field"]) == (422, 2, "payload.contact")
    assert api.producer.records == []


def test_a_batch_is_produced_in_order(api):
    events = [canvass(event_id=f"c-{i}", voter_id=f"V{i}") for i in range(3)]
    status, body = api.post("/v1/events/batch", json=events)
    assert (status, body["accepted"]) == (200, 3)
    assert [key for _, key, _ in api.producer.records] == [b"V0", b"V1", b"V2"]


def test_a_batch_must_be_a_non_empty_array(api):
    assert api.post("/v1/events/batch", json=canvass())[1]["error"] == "not_an_array"
    assert api.post("/v1/events/batch", json=[])[1]["error"] == "empty_batch"


def test_a_source_over_its_rate_is_told_when_to_retry(tmp_path):
    api = Api(tmp_path, rate=1, burst=2)
    assert api.post("/v1/events/batch", json=[canvass(), canvass()])[0] == 200
    status, body = api.post("/v1/events", json=canvass())
    assert (status, body["error"]) == (429, "rate_limited")
    assert body["retry_after"] > 0


def test_kafka_failure_is_503_so_the_app_retries(api):
    api.producer.fail = True
    status, body = api.post("/v1/events", json=canvass())
    assert (status, body["error"]) == (503, "kafka_unavailable")
