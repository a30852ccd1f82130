"""Population models shared by every scorer: one learner, snapshots on a compacted topic.

Every scoring worker labels events it owns and sends the labeled examples to the
single-partition ``labels`` topic. Whichever worker owns that partition runs the
learner: it learns each example once, and every ``snapshot_every`` labels (or
seconds) publishes a snapshot of the models to the compacted ``model-snapshots``
topic, recording the ``labels`` offset it covers. Every worker follows that topic and
scores with the newest snapshot, so all workers score with the same model version.

The snapshot is also the learner's checkpoint: a learner that starts (or takes over
after a rebalance) loads the newest snapshot and resumes from the offset it covers,
so no label is learned twice or lost across restarts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from models.population import SCORES, PopulationModels
from streams import metrics, topics
from streams.config import Settings
from streams.logs import get_logger, kv

log = get_logger(__name__)
SNAPSHOT_KEY = b"population"


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode()
    return None


class Snapshot(NamedTuple):
    """A published snapshot: the models, and where in the labels topic they stand."""

    models: PopulationModels
    labels_offset: int  # every label before this offset is learned
    seen_from: int  # the learner's memory of learned event ids starts at this offset


async def read_latest_snapshot(settings: Settings) -> Snapshot | None:
    """The newest published models and the labels offsets they cover, or None."""
    topic = settings.topic(topics.MODEL_SNAPSHOTS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        end = (await consumer.end_offsets([partition]))[partition]
        if end == 0:
            return None
        consumer.seek(partition, end - 1)
        batch = await consumer.getmany(partition, timeout_ms=10_000)
        records = batch.get(partition) or []
        if not records:
            return None
        last = records[-1]
        offset = int(_header(last.headers, "labels_offset") or 0)
        seen_from = int(_header(last.headers, "seen_from") or offset)
        return Snapshot(PopulationModels.from_snapshot(last.value), offset, seen_from)
    finally:
        await consumer.stop()


class ModelFollower:
    """Keeps the newest published population models for scoring."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models = PopulationModels()
        self.loaded_at = 0.0
        self.listeners: list[Any] = []

    async def run(self) -> None:
        topic = self.settings.topic(topics.MODEL_SNAPSHOTS)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            end = (await consumer.end_offsets([partition]))[partition]
            consumer.seek(partition, max(end - 1, 0))
            async for record in consumer:
                self._load(record)
        finally:
            await consumer.stop()

    def _load(self, record: Any) -> None:
        models = PopulationModels.from_snapshot(record.value)
        if models.version < self.models.version:
            return
        self.models = models
        self.loaded_at = time.time()
        log.info(
            "Loaded population models %s", kv(version=models.version, labels=models.labels_seen)
        )
        for listener in self.listeners:
            listener(models)


class RollingQuality:
    """Log loss and AUC of the live models on the latest labels, measured before learning."""

    def __init__(self, window: int = 2_000):
        self.window: dict[str, deque[tuple[float, int]]] = {s: deque(maxlen=window) for s in SCORES}

    def observe(self, predicted: dict[str, float], labels: dict[str, int]) -> None:
        for score, label in labels.items():
            if score in self.window:
                self.window[score].append((predicted.get(score, 0.5), label))

    def log_loss(self, score: str) -> float | None:
        pairs = self.window[score]
        if not pairs:
            return None
        eps = 1e-6
        total = sum(-math.log(max(eps, p if y else 1 - p)) for p, y in pairs)
        return total / len(pairs)

    def auc(self, score: str) -> float | None:
        pairs = sorted(self.window[score])
        positives = sum(y for _, y in pairs)
        negatives = len(pairs) - positives
        if positives == 0 or negatives == 0:
            return None
        rank_sum = sum(rank for rank, (_p, y) in enumerate(pairs, start=1) if y)
        return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


async def read_event_ids(settings: Settings, start: int, end: int) -> list[tuple[str, int]]:
    """(event id, offset) of every example in the labels topic from ``start`` to ``end``."""
    if end <= start:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(settings.topic(topics.LABELS), 0)
        consumer.assign([partition])
        consumer.seek(partition, start)
        found: list[tuple[str, int]] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1_000, max_records=2_000)
            for record in batch.get(partition, []):
                if record.offset < end:
                    found += [(example_id, record.offset) for example_id in _event_ids(record)]
        return found
    finally:
        await consumer.stop()


def _event_ids(record: Any) -> list[str]:
    try:
        examples = orjson.loads(record.value)
        examples = [examples] if isinstance(examples, dict) else examples
        return [str(example["event_id"]) for example in examples]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return []  # the learner skipped it too


class Learner(ConsumerRebalanceListener):
    """Learns every labeled example once and publishes snapshots of the models.

    Workers send an event's labels again when they process the event again (after a
    crash, say), so the learner remembers the ids of the last ``seen_window`` examples
    it learned. A snapshot records where that memory starts in the labels topic, and
    a learner that takes over rebuilds it from there: a label sent again just after a
    takeover is still learned once.
    """

    def __init__(self, settings: Settings, *, seen_window: int = 100_000):
        self.settings = settings
        self.snapshot_every = settings.snapshot_every_labels
        self.snapshot_interval_s = settings.snapshot_interval_s
        self.models = PopulationModels()
        self.quality = RollingQuality()
        self.seen: OrderedDict[str, int] = OrderedDict()  # event id -> labels offset
        self.seen_window = seen_window
        self.partition = TopicPartition(settings.topic(topics.LABELS), 0)
        self.next_offset = 0
        self.unpublished = 0
        self.last_publish = time.monotonic()
        self._report_quality()
        self.active = False
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.partition in revoked and self.active:
            await self.publish()
            self.active = False
            log.info("Learner handed over %s", kv(offset=self.next_offset))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self.partition not in assigned:
            return
        latest = await read_latest_snapshot(self.settings)
        self.seen.clear()
        if latest is not None:
            self.models, self.next_offset = latest.models, latest.labels_offset
            learned = await read_event_ids(self.settings, latest.seen_from, self.next_offset)
            for event_id, offset in learned:
                self._remember(event_id, offset)
        assert self.consumer is not None
        self.consumer.seek(self.partition, self.next_offset)
        self.unpublished = 0
        self.active = True
        log.info(
            "Learner took over %s",
            kv(
                version=self.models.version, offset=self.next_offset, labels=self.models.labels_seen
            ),
        )

    async def run(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=f"{self.settings.app_id}-learner",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.partition.topic], listener=self)
        try:
            await self._loop()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _loop(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=2_000)
            for records in batches.values():
                for record in records:
                    # Records fetched before the takeover (or before its seek) belong
                    # to the snapshot's past or to another learner: not ours to learn.
                    if not self.active or record.offset < self.next_offset:
                        continue
                    self.learn(record.value, record.offset)
                    self.next_offset = record.offset + 1
                    # One record is one scoring batch's labels; between two, the
                    # scoring agent gets its turn on the event loop.
                    await asyncio.sleep(0)
            if self.active and self._snapshot_due():
                await self.publish()

    def learn(self, raw: bytes, offset: int = 0) -> None:
        """Learn from one record of the labels topic: a list of labeled examples."""
        try:
            examples = orjson.loads(raw)
            if isinstance(examples, dict):  # one example on its own is fine too
                examples = [examples]
            for example in examples:
                self.learn_example(example, offset)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # Only our own workers write this topic; a record we cannot read must
            # not stop every later label from being learned.
            log.error("Skipped an unreadable labels record %s", kv(error=repr(exc)[:200]))

    def learn_example(self, example: dict[str, Any], offset: int = 0) -> None:
        event_id = str(example["event_id"])
        if event_id in self.seen:
            return
        self._remember(event_id, offset)

        features, labels = example["features"], example["labels"]
        self.quality.observe(self.models.predict_one(features), labels)
        self.models.learn_one(features, labels)
        self.unpublished += 1

    def _remember(self, event_id: str, offset: int) -> None:
        self.seen[event_id] = offset
        if len(self.seen) > self.seen_window:
            self.seen.popitem(last=False)

    def _snapshot_due(self) -> bool:
        if self.unpublished == 0:
            return False
        elapsed = time.monotonic() - self.last_publish
        return self.unpublished >= self.snapshot_every or elapsed >= self.snapshot_interval_s

    def _report_quality(self) -> None:
        for score in SCORES:
            log_loss, auc = self.quality.log_loss(score), self.quality.auc(score)
            if log_loss is not None and auc is not None:
                metrics.set_model_quality(score, log_loss, auc)

    async def publish(self) -> None:
        """Send a snapshot that covers every label before ``next_offset``."""
        if self.unpublished == 0 or self.producer is None:
            return
        seen_from = next(iter(self.seen.values()), self.next_offset)
        headers = [
            ("labels_offset", str(self.next_offset).encode()),
            ("seen_from", str(seen_from).encode()),
            ("version", str(self.models.version).encode()),
        ]
        topic = self.settings.topic(topics.MODEL_SNAPSHOTS)
        snapshot = self.models.to_snapshot()
        await self.producer.send_and_wait(
            topic, snapshot, key=SNAPSHOT_KEY, headers=headers, partition=0
        )
        self.unpublished = 0
        self.last_publish = time.monotonic()
        self._report_quality()
        log.info(
            "Published model snapshot %s",
            kv(version=self.models.version, offset=self.next_offset, bytes=len(snapshot)),
        )
