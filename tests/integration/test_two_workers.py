"""Two workers on the real broker: one model version, and no event processed twice.

One worker starts and scores; a second joins mid-stream (a rebalance hands it a
partition); both score with the newest model snapshot; the first stops (a second
rebalance gives the survivor everything, offsets the first had not committed
included). Through all of it every voter's evidence counts must equal the distinct
events sent to that voter, and the change feed must hold no event twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import uuid
from collections import Counter

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from models.voters import read_voters
from streams import topics
from streams.commands import voter_rows
from streams.config import Settings
from streams.modelsync import read_latest_snapshot
from streams.redisio import Keys
from streams.schemas import new_event
from streams.sweep import partition_of
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.integration


def solo_voters(voter_file) -> list[str]:
    # Voters without a household: no shared household evidence reaches them, so
    # their evidence counts are exactly the events sent to them.
    rows = voter_rows(read_voters(voter_file))
    return sorted(r["voter_id"] for r in rows if not r["household_members"])


def canvass(voter_id: str, rng: random.Random):
    payload = {
        "contact": "contacted",
        "support_id": rng.randint(1, 5),
        "will_vote": rng.choice(["yes", "no"]),
    }
    return new_event("canvass", voter_id, payload, event_id=f"c-{uuid.uuid4().hex[:12]}")


def publish(producer: KafkaProducer, settings: Settings, events) -> None:
    for event in events:
        topic = settings.topic(topics.TOPIC_FOR_TYPE[event.type])
        producer.send(topic, event.to_bytes(), key=event.voter_id.encode())
    producer.flush(timeout=30)


def evidence_counts(redis_client, keys: Keys, voters: list[str]) -> dict[str, int]:
    return {v: int(redis_client.hget(keys.voter(v), "support_n") or 0) for v in voters}


def group_members(settings: Settings) -> int:
    """Members of the workers' consumer group, once it is stable (partitions assigned)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    quiet = logging.getLogger("kafka.admin")  # it warns it cannot decode Faust's assignor data
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        description = admin.describe_groups([settings.app_id]).get(settings.app_id, {})
    finally:
        quiet.setLevel(level)
        admin.close()
    if description.get("group_state") != "Stable":
        return 0
    return len(description.get("members") or [])


def labels_end(settings: Settings) -> int:
    """The end offset of the single-partition labels topic: every label sent so far."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partition = TopicPartition(settings.topic(topics.LABELS), 0)
        return consumer.end_offsets([partition])[partition]
    finally:
        consumer.close()


def caught_up_version(settings: Settings) -> int:
    """The newest snapshot's version if it covers every label sent so far, else 0."""
    latest = asyncio.run(read_latest_snapshot(settings))
    if latest is None or latest.labels_offset < labels_end(settings):
        return 0
    return latest.models.version


def stable_version(settings: Settings, quiet_s: float = 2.5) -> int:
    """The newest snapshot version, once it covers every label and stayed for ``quiet_s``."""
    seen: list[int] = []

    def settled() -> bool:
        seen.append(caught_up_version(settings))
        window = seen[-max(2, int(quiet_s / 0.5)) :]
        return len(window) > 1 and len(set(window)) == 1 and window[0] > 0

    wait_for(settled, timeout=40, interval=0.5, what="the model snapshot to cover every label")
    return seen[-1]


def test_two_workers_share_models_and_never_process_an_event_twice(
    settings, redis_client, voter_file, loaded_voters, start_worker
):
    keys = Keys(settings.redis_namespace)
    worker_settings = dataclasses.replace(
        settings, snapshot_every_labels=50, snapshot_interval_s=1.0, sweep_interval_s=1.0
    )
    voters = solo_voters(voter_file)
    rng = random.Random(4)
    sent: Counter[str] = Counter()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    def send(count: int) -> list:
        events = [canvass(rng.choice(voters), rng) for _ in range(count)]
        publish(producer, settings, events)
        sent.update(e.voter_id for e in events)
        return events

    def all_counted() -> bool:
        return evidence_counts(redis_client, keys, voters) == {v: sent[v] for v in voters}

    first = start_worker(worker_settings)
    early = send(150)
    wait_for(lambda: sum(evidence_counts(redis_client, keys, voters).values()) > 0, timeout=60)

    # Joins while events are still flowing; its own ops port, same consumer group.
    second = start_worker(dataclasses.replace(worker_settings, web_port=free_port()))
    send(150)
    wait_for(lambda: group_members(settings) == 2, timeout=60, what="a rebalance")
    send(100)
    wait_for(all_counted, timeout=60, what="every event counted once")

    # Both workers own a partition now; a marker to a voter on each shows which
    # model version each one scores with.
    version = stable_version(settings)
    markers = {
        p: next(v for v in voters if partition_of(v, settings.partitions) == p) for p in (0, 1)
    }
    donations = [new_event("donation", v, {"amount": 25.0}) for v in markers.values()]
    publish(producer, settings, donations)
    for donation in donations:
        wait_for(
            lambda d=donation: (
                redis_client.hget(keys.voter(d.voter_id), "last_event") == d.event_id
            ),
            timeout=30,
        )
        assert int(redis_client.hget(keys.voter(donation.voter_id), "model_version")) == version

    first.stop()  # the survivor takes over the first worker's partition
    publish(producer, settings, early[:40])  # replays of events already counted
    send(100)
    producer.close()
    wait_for(all_counted, timeout=60, what="every event counted once after the handover")

    assert second.process.poll() is None
    feed = redis_client.xrange(keys.changes)
    event_changes = Counter(
        (e["voter"], e["score"], e["cause"])
        for _id, e in feed
        if not e["cause"].startswith("model:")
    )
    assert event_changes and max(event_changes.values()) == 1
