"""The event simulator: field evidence drawn from the voter file's hidden truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from kafka import KafkaProducer

from models.voters import simulate_events
from streams import topics
from streams.config import Settings
from streams.kafka_admin import ensure_topics
from streams.logs import get_logger, kv

log = get_logger(__name__)


def stamped_events(
    voters: pa.Table, count: int, *, seed: int, source: str
) -> Iterator[dict[str, Any]]:
    """Simulated events with a timestamp and source, ready to publish."""
    for event in simulate_events(voters, count, seed=seed):
        event.setdefault("ts", datetime.now(UTC).isoformat())
        event.setdefault("source", source)
        yield event


def event_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        retries=10,
    )


def publish(
    settings: Settings,
    voters: pa.Table,
    *,
    count: int,
    rate: float,
    seed: int,
    source: str = "simulator",
    on_progress: Any = None,
) -> int:
    """Publish ``count`` events at about ``rate`` per second; returns how many were sent."""
    ensure_topics(settings)  # the broker creates no topic on first use
    producer = event_producer(settings)
    started = time.monotonic()
    sent = 0
    try:
        for event in stamped_events(voters, count, seed=seed, source=source):
            topic = settings.topic(topics.TOPIC_FOR_TYPE[event["type"]])
            event["ts"] = datetime.now(UTC).isoformat()
            producer.send(topic, orjson.dumps(event), key=event["voter_id"].encode())
            sent += 1
            if on_progress is not None:
                on_progress(sent)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0.002:
                time.sleep(ahead)  # pacing to the offered rate, not waiting on a condition
        producer.flush()
    finally:
        producer.close()
    log.info("Simulation published %s", kv(events=sent, elapsed_s=time.monotonic() - started))
    return sent
