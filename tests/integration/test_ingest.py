"""The HTTP ingest service against the real broker: accepted events are in Kafka.

The service runs in a thread on its own event loop, with the real idempotent producer;
the OpenAPI description is fuzzed with schemathesis against it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import orjson
import pytest
import requests
import schemathesis
from kafka import KafkaConsumer, TopicPartition

from streams import health, lag
from streams.config import Settings
from streams.errors import InvalidEvent
from streams.ingest import (
    IngestService,
    KafkaProducer,
    RateLimiter,
    TokenStore,
    build_app,
    openapi_spec,
)
from streams.publisher import Publisher, PublishFailed
from streams.redisio import Keys
from streams.schemas import new_event
from streams.topics import EVENT_TOPICS
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

SOURCE = "north-canvass"


class LiveIngest:
    """``votescore ingest`` on a free port, in a background thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tokens = TokenStore.for_settings(settings)
        self.token = self.tokens.add(SOURCE)
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveIngest:
        self.thread.start()
        assert self.started.wait(30), "ingest service did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.started.set()
        self.loop.run_forever()
        self.loop.close()

    async def _start(self) -> None:
        self.producer = KafkaProducer(self.settings)
        await self.producer.start()
        service = IngestService(self.settings, self.tokens, self.producer, RateLimiter(1e6, 10**6))
        self.runner = await health.serve(build_app(service), "127.0.0.1", 0)
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.producer.stop()

    def post(self, path: str, body: Any, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.post(self.url + path, json=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def ingest_settings(tmp_path_factory) -> Iterator[Settings]:
    unique = uuid.uuid4().hex[:10]
    settings = Settings(
        topic_prefix=f"t{unique}-", app_id=f"t{unique}", data_dir=tmp_path_factory.mktemp("d")
    )
    admin = lag.connect(settings)
    topics = {
        settings.topic(name): {"num_partitions": 2, "replication_factor": 1}
        for name in EVENT_TOPICS
    }
    admin.create_topics(topics, wait_for_metadata=True)
    yield settings
    admin.delete_topics(list(topics))
    admin.close()


@pytest.fixture(scope="module")
def ingest(ingest_settings) -> Iterator[LiveIngest]:
    with LiveIngest(ingest_settings) as live:
        yield live


def canvass(event_id: str, voter_id: str = "V0000042") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "type": "canvass",
        "event_id": event_id,
        "voter_id": voter_id,
        "ts": datetime.now(UTC).isoformat(),
        "source": SOURCE,
        "payload": {"contact": "contacted", "support_id": 1, "will_vote": "yes"},
    }


def read_back(settings: Settings, topic: str) -> list:
    """Every record of ``topic`` up to its end offsets as of now."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)

    records: list = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        assert time.monotonic() < deadline, f"could not read {topic} to its end"
        for batch in consumer.poll(500).values():
            records.extend(batch)
    consumer.close()
    return records


def test_an_accepted_event_is_in_kafka_at_the_offset_the_answer_gives(ingest_settings, ingest):
    response = ingest.post("/v1/events", canvass("c-accepted"))
    assert response.status_code == 200
    placed = response.json()["events"][0]

    records = read_back(ingest_settings, ingest_settings.topic("canvass"))
    found = [r for r in records if orjson.loads(r.value)["event_id"] == "c-accepted"]
    assert len(found) == 1
    assert (found[0].key, found[0].partition, found[0].offset) == (
        b"V0000042",
        placed["partition"],
        placed["offset"],
    )


def test_a_batch_lands_on_each_voters_partition_in_order(ingest_settings, ingest):
    events = [canvass(f"b-{i}", voter_id="V7") for i in range(5)]
    donation = canvass("d-1", voter_id="V7") | {
        "type": "donation",
        "payload": {"amount": 25.0, "recurring": False},
    }
    response = ingest.post("/v1/events/batch", events + [donation])
    assert response.status_code == 200
    topics = [e["topic"] for e in response.json()["events"]]
    assert topics == [ingest_settings.topic("canvass")] * 5 + [ingest_settings.topic("donations")]

    donations = read_back(ingest_settings, ingest_settings.topic("donations"))
    assert [orjson.loads(r.value)["event_id"] for r in donations].count("d-1") == 1
    canvasses = [
        orjson.loads(r.value)["event_id"]
        for r in read_back(ingest_settings, ingest_settings.topic("canvass"))
    ]
    assert [e for e in canvasses if e.startswith("b-")] == [f"b-{i}" for i in range(5)]


def test_refused_requests_put_nothing_on_kafka(ingest_settings, ingest):
    other = ingest.tokens.add("state-party")
    assert ingest.post("/v1/events", canvass("r-1"), token="vs_wrong").status_code == 401
    assert ingest.post("/v1/events", canvass("r-2"), token=other).status_code == 403
    bad = canvass("r-3") | {"payload": {"contact": "contacted", "support_id": "2"}}
    assert ingest.post("/v1/events", bad).json()["field"] == "payload.support_id"

    # A marker accepted after them shows the topic was read far enough.
    assert ingest.post("/v1/events", canvass("r-marker")).status_code == 200
    seen = [
        orjson.loads(r.value)["event_id"]
        for r in read_back(ingest_settings, ingest_settings.topic("canvass"))
    ]
    assert "r-marker" in seen
    assert not {"r-1", "r-2", "r-3"} & set(seen)


# --- fuzzing the OpenAPI description --------------------------------------------------

schema = schemathesis.openapi.from_dict(openapi_spec())


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_the_api_honours_its_openapi_description(case, ingest):
    if case.body is not None and _is_positive(case):
        # Generated events carry random sources and times; give them the token's
        # source and a time not in the future (a rule JSON Schema cannot state), so
        # that accepted events, not only 403s and 422s, are exercised.
        _own_source_and_past_time(case.body)
    case.call_and_validate(base_url=ingest.url, headers={"Authorization": f"Bearer {ingest.token}"})


def _is_positive(case: schemathesis.Case) -> bool:
    return "positive" in str(getattr(case.meta, "generation", "")).lower() if case.meta else True


def _own_source_and_past_time(body: Any) -> None:
    now = datetime.now(UTC)
    for event in body if isinstance(body, list) else [body]:
        if not isinstance(event, dict):
            continue
        if "source" in event:
            event["source"] = SOURCE
        if _later_than(event.get("ts"), now):
            event["ts"] = now.isoformat()
        _integral_support_id(event.get("payload"))


def _integral_support_id(payload: Any) -> None:
    # JSON Schema counts 5.0 as an integer; the event models are strict and want 5,
    # as every JSON encoder writes it. A known gap, stated in the README.
    support_id = payload.get("support_id") if isinstance(payload, dict) else None
    if isinstance(support_id, float) and support_id.is_integer():
        payload["support_id"] = int(support_id)


def _later_than(ts: Any, now: datetime) -> bool:
    try:
        return datetime.fromisoformat(ts) > now
    except (TypeError, ValueError):
        return False


# --- the Python publisher -------------------------------------------------------------


def test_publisher_sends_each_event_to_its_topic_keyed_by_voter_in_order(ingest_settings):
    events = [
        new_event("canvass", f"V{i % 3}", {"contact": "not_home"}, source=SOURCE, event_id=f"p-{i}")
        for i in range(30)
    ]
    events.append(
        {
            **canvass("p-dict", voter_id="V1"),
            "type": "ad",
            "payload": {"platform": "meta", "campaign": "gotv", "action": "click"},
        }
    )

    with Publisher(ingest_settings) as publisher:
        assert publisher.publish_many(events) == 31

    ads = read_back(ingest_settings, ingest_settings.topic("ad-interactions"))
    # The fuzzing above may have put ads here too; only this test's ids matter.
    ours = [(r.key, orjson.loads(r.value)["event_id"]) for r in ads]
    assert [(key, e) for key, e in ours if e.startswith("p-")] == [(b"V1", "p-dict")]
    mine = [
        r
        for r in read_back(ingest_settings, ingest_settings.topic("canvass"))
        if orjson.loads(r.value)["event_id"].startswith("p-")
    ]
    for voter in ("V0", "V1", "V2"):
        ids = [orjson.loads(r.value)["event_id"] for r in mine if r.key == voter.encode()]
        assert ids == [f"p-{i}" for i in range(30) if f"V{i % 3}" == voter]


def test_publisher_refuses_an_invalid_event_before_sending(ingest_settings):
    with Publisher(ingest_settings) as publisher:
        with pytest.raises(InvalidEvent) as refused:
            publisher.publish(canvass("p-bad") | {"payload": {"contact": "asleep"}})
        assert refused.value.field == "payload.contact"
        assert publisher.published == 0


def test_publisher_flush_names_the_events_kafka_refused():
    unique = uuid.uuid4().hex[:10]
    settings = Settings(topic_prefix=f"t{unique}-", app_id=f"t{unique}")
    admin = lag.connect(settings)
    # A topic that refuses records over 200 bytes: the broker, not the client, says no.
    admin.create_topics(
        {
            settings.topic("canvass"): {
                "num_partitions": 1,
                "replication_factor": 1,
                "configs": {"max.message.bytes": "200"},
            }
        },
        wait_for_metadata=True,
    )
    try:
        publisher = Publisher(settings)
        big = new_event("canvass", "V1", {"contact": "moved"}, source="x" * 60, event_id="p-big")
        publisher.publish(big)
        with pytest.raises(PublishFailed) as failed:
            publisher.flush()
        publisher.close()
        assert [event_id for event_id, _ in failed.value.failures] == ["p-big"]
    finally:
        admin.delete_topics([settings.topic("canvass")])
        admin.close()


# --- through the worker to Redis ------------------------------------------------------


def test_an_ingested_canvass_reaches_the_voters_scores_in_redis(
    settings, redis_client, loaded_voters, start_worker
):
    keys = Keys(settings.redis_namespace)
    voter_id = min(redis_client.zrange(keys.scores("support"), 0, -1))
    before = redis_client.hgetall(keys.voter(voter_id))
    start_worker()

    with LiveIngest(settings) as live:
        response = live.post("/v1/events", canvass("e-ingested", voter_id=voter_id))
    assert response.status_code == 200

    def scored() -> dict | None:
        voter = redis_client.hgetall(keys.voter(voter_id))
        return voter if voter.get("last_event") == "e-ingested" else None

    after = wait_for(scored, timeout=90, what="the ingested event's score in Redis")
    assert int(after["support_n"]) == 1
    assert int(after["support"]) > int(before["support"])


# --- the README's example --------------------------------------------------------------


def test_the_readme_publisher_example_runs(ingest_settings, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("VOTESCORE_TOPIC_PREFIX", ingest_settings.topic_prefix)

    exec(compile(example, "README.md", "exec"), {})

    donations = read_back(ingest_settings, ingest_settings.topic("donations"))
    voters = {r.key for r in donations if orjson.loads(r.value)["source"] == "north-canvass"}
    assert {f"V{n:07d}".encode() for n in range(100)} <= voters
