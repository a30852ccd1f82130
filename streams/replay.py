"""``votescore replay``: rebuild every voter's evidence and scores in Redis from Kafka.

Redis holds derived state only. The event topics and the household-evidence topic
keep every record forever (``retention.ms=-1``), and the newest model snapshot holds
the population models, so a Redis that was lost (or never had this deployment) can be
rebuilt:

1. load the voter file (``--voters FILE``), since the voter-file rows live in Redis;
2. read the newest population-model snapshot and score with it for the whole replay;
3. read every event topic and the household-evidence topic from the beginning up to
   the end offsets seen at the start, each partition in order, and run the records
   through the worker's own :class:`~streams.pipeline.ScoringPipeline`;
4. re-score every voter with the same models (voters without evidence included).

The pipeline applies each event exactly once, so a replay is safe to repeat and safe
to run over a Redis that still holds part of the state. Its follow-ups are not sent
again: labels were learned already (the snapshot covers them) and dead letters were
sent already; household evidence is applied in-process, so that household shares of
events the live workers had not reached yet are not missed. Stop the workers while a
replay runs: a worker and a replay writing one voter's scores at once may leave the
older of the two scores until the voter's next event or sweep.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from models.population import PopulationModels
from streams import topics
from streams.config import Settings
from streams.kafka_admin import prepare_topics
from streams.logs import get_logger, kv
from streams.modelsync import read_latest_snapshot
from streams.pipeline import BatchReport, Record, ScoringPipeline
from streams.redisio import RedisStore
from streams.sweep import Sweeper

log = get_logger(__name__)


@dataclass
class ReplayReport:
    """What a replay read and did."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    household: int = 0
    voters: int = 0
    model_version: int = 0
    elapsed_s: float = 0.0

    def add(self, batch: BatchReport) -> None:
        self.applied += batch.applied
        self.duplicates += batch.duplicates
        self.dead_letters += sum(batch.dead_letters.values())


class FixedModels:
    """One population-model snapshot for the whole replay, so every score compares."""

    def __init__(self, models: PopulationModels):
        self.models = models


class LoopbackOutbox:
    """Keeps household follow-ups for the pipeline's next step; drops labels and dead letters."""

    def __init__(self, household_topic: str):
        self.household_topic = household_topic
        self.pending: list[Record] = []

    async def send_many(self, messages: Sequence[tuple[str, bytes | None, bytes, list]]) -> None:
        now_ms = int(time.time() * 1000)
        for topic, key, value, _headers in messages:
            if topic == self.household_topic:
                self.pending.append(Record(topic, -1, -1, key, value, now_ms))

    def take(self) -> list[Record]:
        taken, self.pending = self.pending, []
        return taken


class RecordClock:
    """The pipeline's clock during a replay: the Kafka time of the batch being replayed.

    An event's timestamp is judged against when it reached Kafka, as the live worker
    judged it, not against the day of the replay.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def follow(self, records: Sequence[Record]) -> None:
        self.now = max(r.timestamp_ms for r in records) / 1000


def replayed_topics(settings: Settings) -> list[str]:
    names = [settings.topic(name) for name in topics.EVENT_TOPICS]
    return [*names, settings.topic(topics.HOUSEHOLD_EVIDENCE)]


async def read_log(
    settings: Settings, *, batch_size: int, on_total: Callable[[int], None] | None = None
) -> AsyncIterator[list[Record]]:
    """Every record of the replayed topics, oldest first per partition, up to today's end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        remaining = await _assign_all(consumer, settings)
        if on_total is not None:
            on_total(sum(end - start for start, end in remaining.values()))
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1_000, max_records=batch_size)
            records = _take_until_end(batches, remaining)
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp][1]:
                    del remaining[tp]
            if records:
                yield records
    finally:
        await consumer.stop()


async def _assign_all(
    consumer: AIOKafkaConsumer, settings: Settings
) -> dict[TopicPartition, tuple[int, int]]:
    # prepare_topics made sure every replayed topic exists with this partition count.
    partitions = [
        TopicPartition(topic, p)
        for topic in replayed_topics(settings)
        for p in range(settings.partitions)
    ]
    consumer.assign(partitions)
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    return {tp: (starts[tp], ends[tp]) for tp in partitions if ends[tp] > starts[tp]}


def _take_until_end(batches: dict[TopicPartition, list[Any]], remaining: dict) -> list[Record]:
    # Records appended after the replay started are left to the workers.
    records: list[Record] = []
    for tp, messages in batches.items():
        end = remaining[tp][1]
        records += [_record(m) for m in messages if m.offset < end]
    return records


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=message.timestamp,
    )


async def replay(
    settings: Settings,
    *,
    voters: Any = None,
    models: PopulationModels | None = None,
    show_progress: bool = True,
) -> ReplayReport:
    """Rebuild evidence and scores in Redis from Kafka; see the module docstring."""
    started = time.perf_counter()
    await prepare_topics(settings)
    store = await RedisStore.open(settings)
    try:
        report = ReplayReport()
        if voters is not None:
            report.voters = await _load_voters(store, voters)
        models = models or await _newest_models(settings)
        report.model_version = models.version

        await _replay_log(settings, store, models, report, show_progress)
        await _rescore_everyone(settings, store, models, show_progress)
    finally:
        await store.close()
    report.elapsed_s = time.perf_counter() - started
    log.info("Replay finished %s", kv(**vars(report)))
    return report


async def _load_voters(store: RedisStore, table: Any) -> int:
    from streams.commands import voter_rows

    return await store.load_voters(voter_rows(table))


async def _newest_models(settings: Settings) -> PopulationModels:
    latest = await read_latest_snapshot(settings)
    if latest is None:
        log.warning("No model snapshot found; replaying with fresh models")
        return PopulationModels()
    return latest[0]


async def _replay_log(
    settings: Settings,
    store: RedisStore,
    models: PopulationModels,
    report: ReplayReport,
    show_progress: bool,
) -> None:
    outbox = LoopbackOutbox(settings.topic(topics.HOUSEHOLD_EVIDENCE))
    clock = RecordClock()
    pipeline = ScoringPipeline(settings, store, FixedModels(models), outbox, clock=clock)
    bar = tqdm(desc="replaying events", unit="event", disable=not show_progress or None)

    async for records in read_log(settings, batch_size=settings.batch_size, on_total=_total(bar)):
        clock.follow(records)
        report.add(await pipeline.process(records))
        report.records += len(records)
        # Household shares of this batch, applied before the next batch as a worker would.
        while shared := outbox.take():
            report.household += len(shared)
            report.add(await pipeline.process(shared))
        bar.update(len(records))
    bar.close()


def _total(bar: tqdm) -> Callable[[int], None]:
    def set_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    return set_total


async def _rescore_everyone(
    settings: Settings, store: RedisStore, models: PopulationModels, show_progress: bool
) -> None:
    # Voters without evidence get their prior too, from the same models.
    bar = tqdm(desc="re-scoring voters", unit="voter", disable=not show_progress or None)
    sweeper = Sweeper(store, partitions=settings.partitions)
    await sweeper.sweep(models, progress=lambda r: bar.update(r.seen - bar.n))
    bar.close()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="rebuild every voter's evidence and scores in Redis from Kafka"
    )
    parser.add_argument(
        "--voters", type=Path, help="the voter file to load first (needed when Redis was lost)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    from models.voters import read_voters

    voters = read_voters(args.voters) if args.voters else None
    report = asyncio.run(replay(settings, voters=voters, show_progress=not args.quiet))
    print(
        f"replayed {report.records} records ({report.household} household shares): "
        f"{report.applied} applied, {report.duplicates} duplicates, "
        f"{report.dead_letters} dead letters; model v{report.model_version}; "
        f"{report.elapsed_s:.1f} s"
    )
    return 0
