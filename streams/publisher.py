"""Publish events to Kafka from Python: field-app back ends, scripts, the simulator.

>>> from streams.schemas import new_event
>>> with Publisher(settings) as publisher:                      # doctest: +SKIP
...     publisher.publish(new_event("canvass", "V0000042", {"contact": "not_home"},
...                                 source="north-canvass"))

Sends are asynchronous: ``publish`` validates the event, hands it to the producer and
returns at once; :meth:`Publisher.flush` (and leaving the ``with`` block) waits until
Kafka has acknowledged everything and raises :class:`PublishFailed` naming the events
it did not take. The producer is idempotent with ``acks=all``, so a retry inside the
client never writes an event twice, and events of one voter stay in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.config import Settings
from streams.errors import ServiceUnavailable
from streams.logs import get_logger, kv
from streams.schemas import (
    AdEvent,
    CanvassEvent,
    DonationEvent,
    RetractionEvent,
    decode_event,
)
from streams.topics import TOPIC_FOR_TYPE

logger = get_logger(__name__)

AnyEvent = CanvassEvent | DonationEvent | AdEvent | RetractionEvent


class PublishFailed(ServiceUnavailable):
    """Kafka did not acknowledge some events; ``failures`` holds (event_id, error)."""

    def __init__(self, failures: list[tuple[str, Exception]]):
        first_id, first_error = failures[0]
        super().__init__(
            f"{len(failures)} events not acknowledged, first {first_id}: {first_error}"
        )
        self.failures = failures


class Publisher:
    """An idempotent, ``acks=all`` Kafka producer for votescore events.

    Parameters
    ----------
    settings
        Broker address and topic prefix.
    linger_ms
        How long the producer waits to fill a batch; a few milliseconds buys a large
        gain in throughput.
    producer_config
        Any further ``kafka.KafkaProducer`` settings (for example TLS options).
    """

    def __init__(self, settings: Settings, *, linger_ms: int = 5, **producer_config: Any):
        self.settings = settings
        self.published = 0
        self._failures: list[tuple[str, Exception]] = []
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{settings.app_id}-publisher",
                enable_idempotence=True,
                acks="all",
                linger_ms=linger_ms,
                **producer_config,
            )
        except KafkaError as exc:
            raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap}: {exc}") from exc

    def publish(self, event: AnyEvent | Mapping[str, Any]) -> None:
        """Validate one event and send it to its type's topic, keyed by its voter.

        A mapping is validated exactly as the worker would (raising
        :class:`~streams.errors.InvalidEvent`); a model from
        :func:`~streams.schemas.new_event` is already valid.
        """
        if isinstance(event, Mapping):
            event = decode_event(orjson.dumps(event))
        topic = self.settings.topic(TOPIC_FOR_TYPE[event.type])

        future = self._producer.send(topic, value=event.to_bytes(), key=event.voter_id.encode())
        event_id = event.event_id
        future.add_errback(lambda exc: self._failures.append((event_id, exc)))
        self.published += 1

    def publish_many(self, events: Iterable[AnyEvent | Mapping[str, Any]]) -> int:
        """Publish every event, then wait for Kafka to acknowledge them; return the count."""
        before = self.published
        for event in events:
            self.publish(event)
        self.flush()
        return self.published - before

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every event sent so far is acknowledged; raise if any was not."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise ServiceUnavailable(f"Kafka did not drain in {timeout_s}s: {exc}") from exc
        if self._failures:
            failures, self._failures = self._failures, []
            logger.error("Events not acknowledged. %s", kv(count=len(failures)))
            raise PublishFailed(failures)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
