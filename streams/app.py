"""The Faust application: agents that turn evidence records into scores.

One agent consumes the four event topics and the household-evidence topic in
batches and hands each batch to :class:`~streams.pipeline.ScoringPipeline`. Beside
it run the model follower (newest population models), the learner (on whichever
worker owns the ``labels`` partition) and the ops web server.

A batch that fails because Redis or Kafka is unreachable is retried with backoff
until it succeeds: the agent stops consuming meanwhile (back-pressure). A batch's
offsets become committable only once its scores are in Redis and Kafka holds its
follow-up records; the next batch is scored while those acknowledgements travel.
So nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.sensors import Monitor
from kafka.errors import KafkaError
from redis.exceptions import RedisError

from streams import metrics, topics
from streams.config import Settings
from streams.errors import InvalidEvent
from streams.health import OpsServer, start_ops_server
from streams.logs import get_logger, kv, quiet_library_handlers
from streams.modelsync import Learner, ModelFollower
from streams.outbox import KafkaOutbox
from streams.pipeline import BatchReport, Record, ScoringPipeline
from streams.redisio import RedisStore
from streams.sweep import Sweeper

log = get_logger(__name__)
SERVICE_ERRORS = (RedisError, KafkaError, OSError, asyncio.TimeoutError)
SLOW_BATCH_S = 0.5
EVENTS_FLOWING_S = 1.0
MAX_UNSETTLED = 8


class Backoff:
    """Exponential backoff between retries, capped; resets after a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0):
        self.first, self.cap, self.delay = first, cap, first

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.cap, self.delay * 2)

    def reset(self) -> None:
        self.delay = self.first


class ScoringWorker:
    """Everything one worker process holds: Redis, the models, the pipeline."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.follower = ModelFollower(settings)
        self.learner = Learner(settings)
        self.outbox = KafkaOutbox(settings)
        self.store: RedisStore | None = None
        self.pipeline: ScoringPipeline | None = None
        self._started = asyncio.Lock()
        # Held while a batch or a sweep chunk runs, so the two never race on a voter.
        self.lock = asyncio.Lock()
        self.totals = BatchReport()
        self.ops: OpsServer | None = None
        self.last_batch_at = 0.0
        self.unsettled: list[asyncio.Future] = []

    async def start(self) -> ScoringPipeline:
        async with self._started:
            if self.pipeline is None:
                backoff = Backoff()
                while self.store is None:
                    try:
                        self.store = await RedisStore.open(self.settings)
                    except SERVICE_ERRORS as exc:
                        log.warning("Redis not reachable yet %s", kv(error=type(exc).__name__))
                        await backoff.wait()
                await self.outbox.start()
                self.follower.listeners.append(self._publish_model)
                self.pipeline = ScoringPipeline(
                    self.settings, self.store, self.follower, self.outbox
                )
                log.info(
                    "Worker ready %s",
                    kv(
                        app=self.settings.app_id,
                        redis=self.store.clustered and "cluster" or "single",
                    ),
                )
        return self.pipeline

    def events_flowing(self) -> bool:
        """Whether a batch of events finished within the last second."""
        return time.time() - self.last_batch_at < EVENTS_FLOWING_S

    def _publish_model(self, models: Any) -> None:
        # Dashboards and ops see which model version the scores come from.
        metrics.set_model_version(models.version)
        asyncio.ensure_future(self._write_model_version(models))

    async def _write_model_version(self, models: Any) -> None:
        assert self.store is not None
        fields = {
            "version": models.version,
            "trained_on": models.labels_seen,
            "updated_at": int(time.time() * 1000),
        }
        try:
            await self.store.client.hset(self.store.keys.model, mapping=fields)
        except SERVICE_ERRORS as exc:
            log.warning("Model version not written to Redis %s", kv(error=type(exc).__name__))

    async def process(
        self, records: Sequence[Record], on_delivered: Callable[[], None] | None = None
    ) -> BatchReport:
        """Process a batch; retry service failures; never lose a record.

        Without ``on_delivered`` this returns once the batch's follow-ups (labels,
        household shares, dead letters) are in Kafka. With it, it returns as soon as
        Redis has the scores and the follow-ups are handed to the producer, so the
        next batch scores while Kafka acknowledges; ``on_delivered`` runs once every
        follow-up is in (the agent then lets Faust commit the batch's offsets).
        """
        pipeline = await self.start()
        backoff = Backoff()
        started = time.perf_counter()
        while True:
            try:
                async with self.lock:
                    report, follow_ups = await pipeline.score(records)
                delivery = await self.outbox.enqueue(follow_ups)
                break
            except SERVICE_ERRORS as exc:
                await self._back_off(exc, backoff, "Batch failed, retrying", len(records))
            except Exception:
                log.exception(
                    "Batch failed on a bug; isolating records %s", kv(records=len(records))
                )
                async with self.lock:
                    report = await self._process_one_by_one(pipeline, records)
                follow_ups, delivery = [], _delivered()
                break
        self._account(report, time.perf_counter() - started, len(records))

        settling = self._settle(follow_ups, delivery, on_delivered or (lambda: None))
        if on_delivered is None:
            await settling
        else:
            await self._hold(asyncio.ensure_future(settling))
        return report

    async def _settle(
        self, follow_ups: list, delivery: Awaitable[None], on_delivered: Callable[[], None]
    ) -> None:
        """Wait until Kafka has every follow-up, sending them again after a failure."""
        backoff = Backoff()
        while True:
            try:
                await delivery
                break
            except SERVICE_ERRORS as exc:
                message = "Follow-ups not delivered, sending again"
                await self._back_off(exc, backoff, message, len(follow_ups))
                delivery = self.outbox.send_many(follow_ups)  # hand over and wait, again
        on_delivered()

    async def _back_off(
        self, exc: BaseException, backoff: Backoff, message: str, records: int
    ) -> None:
        """A service failed: count it, say so, and wait before the next try."""
        self._service_failed(exc)
        log.warning(
            "%s %s",
            message,
            kv(records=records, error=type(exc).__name__, retry_in=backoff.delay),
        )
        await backoff.wait()

    async def _hold(self, settling: asyncio.Future) -> None:
        # Back-pressure: at most MAX_UNSETTLED batches wait for Kafka at once.
        self.unsettled = [task for task in self.unsettled if not task.done()]
        self.unsettled.append(settling)
        while len(self.unsettled) > MAX_UNSETTLED:
            await self.unsettled.pop(0)

    async def _process_one_by_one(
        self, pipeline: ScoringPipeline, records: Sequence[Record]
    ) -> BatchReport:
        # A record that breaks the pipeline goes to the dead letters on its own,
        # so one poisoned event cannot stall its partition.
        total = BatchReport()
        for record in records:
            try:
                report = await pipeline.process([record])
            except SERVICE_ERRORS:
                raise
            except Exception as exc:
                error = InvalidEvent("processing_error", repr(exc)[:300])
                await pipeline.outbox.send_many(pipeline.dead_letters([(record, error)]))
                report = BatchReport(dead_letters={(record.topic, error.reason): 1})
            _merge(total, report)
        return total

    def _service_failed(self, exc: BaseException) -> None:
        service = "kafka" if isinstance(exc, KafkaError) else "redis"
        metrics.record_error(service)
        if self.ops is not None:
            self.ops.health.note(service, False)

    def _account(self, report: BatchReport, elapsed: float, size: int) -> None:
        _merge(self.totals, report)
        self.last_batch_at = time.time()
        for topic, count in report.processed.items():
            metrics.record_processed(topic, count)
        for (topic, reason), count in report.dead_letters.items():
            metrics.record_dead_letter(topic, reason, count)
            log.warning("Dead-lettered events %s", kv(topic=topic, reason=reason, count=count))
        for latency in report.latencies_s:
            metrics.observe_latency(latency)
        if self.ops is not None:
            self.ops.health.note("redis", True)
        if elapsed > SLOW_BATCH_S:
            log.warning("Slow batch %s", kv(records=size, elapsed_s=elapsed))


def _delivered() -> asyncio.Future:
    done: asyncio.Future = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def _merge(total: BatchReport, report: BatchReport) -> None:
    for topic, n in report.processed.items():
        total.processed[topic] = total.processed.get(topic, 0) + n
    for key, n in report.dead_letters.items():
        total.dead_letters[key] = total.dead_letters.get(key, 0) + n
    total.duplicates += report.duplicates
    total.applied += report.applied


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a background task forever: a failure is logged and the task restarted."""
    backoff = Backoff(first=0.5, cap=30.0)
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("Background task failed; restarting %s", kv(task=name, error=repr(exc)[:200]))
            await backoff.wait()


def owned_partitions(app: faust.App, settings: Settings) -> set[int]:
    """Partitions of the event topics this worker owns now (all share one partitioner)."""
    topic = settings.topic("canvass")
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


async def sweep_on_model_change(app: faust.App, worker: ScoringWorker) -> None:
    """Re-score every owned voter whenever the population models move on."""
    settings = worker.settings
    assert worker.store is not None
    sweeper = Sweeper(
        worker.store,
        partitions=settings.partitions,
        owned=lambda: owned_partitions(app, settings),
        lock=worker.lock,
        max_rate=settings.sweep_rate or None,
        events_flowing=worker.events_flowing,
        share=settings.sweep_share,
    )
    swept_version = -1
    while True:
        models = worker.follower.models
        if models.version != swept_version and models.version > 0:
            await sweeper.sweep(
                models, progress=lambda r: metrics.set_sweep_progress(r.rescored, r.seen)
            )
            swept_version = models.version
        await asyncio.sleep(settings.sweep_interval_s)


def _acker(events: Sequence[Any]) -> Callable[[], None]:
    def ack() -> None:
        for event in events:
            event.ack()

    return ack


def to_record(event: Any) -> Record:
    message = event.message
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=int(message.timestamp * 1000),
    )


class QuietMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping.

    votescore counts what ops need in its own Prometheus metrics; Faust's monitor would
    record four timestamps for every record, about a sixth of Faust's cost per record.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None


class OpsWorker(faust.Worker):
    """Faust's worker, logging for ops: no terminal spinner, one format, no floods."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None  # its cursor codes would land in log files
        quiet_library_handlers(logger)


def faust_app(settings: Settings, app_id: str) -> faust.App:
    """A Faust app with the worker's broker, consumer and monitor settings."""
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=False,
        datadir=str(settings.data_dir / app_id),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        autodiscover=False,
        Monitor=QuietMonitor,
    )


def raw_topic(app: faust.App, names: Sequence[str]) -> Any:
    """Topics read as they are: keys and values stay bytes, decoded by votescore."""
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def create_app(settings: Settings) -> tuple[faust.App, ScoringWorker]:
    """Build the Faust app and the worker state its agents use."""
    app = faust_app(settings, settings.app_id)
    worker = ScoringWorker(settings)
    names = [settings.topic(t) for t in topics.EVENT_TOPICS]
    names.append(settings.topic(topics.HOUSEHOLD_EVIDENCE))
    evidence = raw_topic(app, names)

    @app.agent(evidence, name="score")
    async def score(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            # One more reference per event, so that Faust's own ack after this body
            # does not make the offsets committable: that waits for the follow-ups.
            for event in events:
                event.message.incref()
            await worker.process(
                [to_record(event) for event in events], on_delivered=_acker(events)
            )

    @app.task
    async def follow_models() -> None:
        await supervise("model follower", worker.follower.run)

    @app.task
    async def learn() -> None:
        await supervise("learner", worker.learner.run)

    @app.task
    async def ops() -> None:
        # Health answers for the partitions this worker owns, not the whole group.
        worker.ops = await start_ops_server(
            settings, owned=lambda: [(tp.topic, tp.partition) for tp in app.consumer.assignment()]
        )

    @app.task
    async def sweep() -> None:
        await worker.start()
        await supervise("sweep", lambda: sweep_on_model_change(app, worker))

    return app, worker
