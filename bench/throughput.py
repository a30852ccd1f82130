"""Throughput and latency of votescore on the real broker and Redis, beside their raw limits.

Every figure prints as ``name: value unit``. Each is set beside the raw limit that bounds
it, measured in the same run, so the overhead shows as a ratio:

- raw limits: River learn and predict alone (the population models), Redis pipelined
  score writes alone, Kafka produce and consume alone (aiokafka, as the worker uses),
  Faust alone (an agent that does nothing with its batches);
- the scoring pipeline in-process (decode, evidence script, scores, writes; no Kafka);
- sustained events per second of one worker, then of two workers, draining a backlog;
- event-to-Redis latency at fixed offered rates (500, 2000, 5000 events/s), from the
  producer's timestamp (the Kafka record time) to the change-feed entry's write time;
- for one million voters: load rate, sweep rate (every voter re-scored by new models)
  and Redis memory per voter, with and without evidence.

Run: ``.venv/bin/python bench/throughput.py`` (about 10 minutes) or ``--quick`` (smaller
backlogs, 100k voters for the sweep; about 3 minutes). Needs ``make up``. Everything is
written under a topic prefix and Redis namespace of its own and removed at the end.

The machine is shared: Kafka, Redis, the workers and this script all run on the same
cores, so "two workers on two cores" also share those cores with the broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient, KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    WorkerProcess,
    delete_keys,
    figure,
    free_port,
    load_average,
    wait_until,
)
from models.features import voter_features  # noqa: E402
from models.population import SCORES, PopulationModels, labels_from_event  # noqa: E402
from models.voters import generate_voters, public_attributes, simulate_events  # noqa: E402
from streams import topics  # noqa: E402
from streams.commands import voter_rows  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.kafka_admin import delete_topics, ensure_topics  # noqa: E402
from streams.logs import configure_logging  # noqa: E402
from streams.pipeline import Record, ScoringPipeline  # noqa: E402
from streams.redisio import Keys, RedisStore  # noqa: E402
from streams.replay import FixedModels  # noqa: E402
from streams.sweep import Sweeper  # noqa: E402

EVENT_TOPICS = [topics.TOPIC_FOR_TYPE[kind] for kind in ("canvass", "donation", "ad")]


@dataclass
class Plan:
    """How much of everything one run does."""

    voters: int = 100_000
    backlog: int = 200_000
    latency_seconds: float = 15.0
    rates: tuple[int, ...] = (500, 2_000, 5_000)
    sweep_voters: int = 1_000_000


QUICK = Plan(voters=20_000, backlog=40_000, latency_seconds=6.0, sweep_voters=100_000)


# --- what the field sends -------------------------------------------------------------


def event_records(
    voters: Any, count: int, *, seed: int, tag: str
) -> list[tuple[str, bytes, bytes]]:
    """``count`` simulated events as (topic, key, value), with ids unique to this run."""
    out = []
    for event in simulate_events(voters, count, seed=seed):
        if event["type"] == "retraction":
            continue  # a retraction of an event from another batch would only dead-letter
        event["event_id"] = f"{tag}-{event['event_id']}"
        event["source"] = "bench"
        event["ts"] = "2026-01-01T00:00:00+00:00"
        topic = topics.TOPIC_FOR_TYPE[event["type"]]
        out.append((topic, event["voter_id"].encode(), orjson.dumps(event)))
    return out


def producer(settings: Settings, linger_ms: int = 5) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
    )


def publish_all(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> float:
    """Send every record as fast as the producer goes; returns records per second."""
    kafka = producer(settings)
    started = time.perf_counter()
    for topic, key, value in records:
        kafka.send(settings.topic(topic), value, key=key)
    kafka.flush(timeout=300)
    elapsed = time.perf_counter() - started
    kafka.close()
    return len(records) / elapsed


def publish_at(settings: Settings, records: list[tuple[str, bytes, bytes]], rate: float) -> float:
    """Send the records paced at ``rate`` a second; returns the rate achieved."""
    kafka = producer(settings, linger_ms=1)
    started = time.perf_counter()
    for sent, (topic, key, value) in enumerate(records, start=1):
        kafka.send(settings.topic(topic), value, key=key)
        ahead = sent / rate - (time.perf_counter() - started)
        if ahead > 0.001:
            time.sleep(ahead)  # pacing to the offered rate
    kafka.flush(timeout=300)
    elapsed = time.perf_counter() - started
    kafka.close()
    return len(records) / elapsed


# --- raw limits -------------------------------------------------------------------------


def river_limits(rows: list[dict], records: list[tuple[str, bytes, bytes]]) -> None:
    """The population models alone: learn on every labeled event, predict every voter."""
    features = {row["voter_id"]: voter_features(row) for row in rows}
    examples = []
    for _topic, _key, value in records[:20_000]:
        event = orjson.loads(value)
        labels = labels_from_event(event)
        if labels:
            examples.append((features[event["voter_id"]], labels))

    models = PopulationModels()
    started = time.perf_counter()
    for voter_features_, labels in examples:
        models.learn_one(voter_features_, labels)
    learn = len(examples) / (time.perf_counter() - started)

    sample = list(features.values())[:20_000]
    started = time.perf_counter()
    for voter_features_ in sample:
        models.predict_one(voter_features_)
    predict = len(sample) / (time.perf_counter() - started)
    figure("raw.river_learn_one", learn, "labeled events/s", "4 logistic models, AdaGrad")
    figure("raw.river_predict_one", predict, "voters/s", "4 scores each")


async def redis_write_limit(settings: Settings, count: int = 50_000) -> float:
    """Score writes alone: per event one voter hash and four rankings, 500 a round trip."""
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace + "raw:")
    fields = {f"{name}{part}": 50 for name in SCORES for part in ("", "_low", "_high", "_n")}
    started = time.perf_counter()
    for start in range(0, count, 500):
        pipe = client.pipeline(transaction=False)
        for n in range(start, start + 500):
            voter_id = f"V{n:07d}"
            pipe.hset(keys.voter(voter_id), mapping={**fields, "updated_at": n})
            for name in SCORES:
                pipe.zadd(keys.scores(name), {voter_id: n % 100})
        await pipe.execute()
    rate = count / (time.perf_counter() - started)
    await client.aclose()
    return rate


async def kafka_consume_limit(settings: Settings, expected: int) -> float:
    """Reading the event topics from the start with aiokafka, doing nothing with them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    partitions = [
        TopicPartition(settings.topic(topic), p)
        for topic in EVENT_TOPICS
        for p in range(settings.partitions)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    seen = 0
    started = time.perf_counter()
    while seen < expected:
        batches = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
        seen += sum(len(batch) for batch in batches.values())
    rate = seen / (time.perf_counter() - started)
    await consumer.stop()
    return rate


def faust_limit(settings: Settings, expected: int) -> float:
    """Faust alone: batches of the event topics handed to an agent that does nothing."""
    names = [settings.topic(topic) for topic in EVENT_TOPICS]
    script = Path(__file__).with_name("faust_limit.py")
    done = subprocess.run(
        [sys.executable, str(script), *names, "--expected", str(expected)],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Faust's worker redirects stdout into its log, so the line may be on either.
    rates = re.findall(r"rate: (\d+)", done.stdout + done.stderr)
    if not rates:
        raise RuntimeError(f"the Faust limit run printed no rate: {done.stderr[-2000:]}")
    return float(rates[0])


# --- the pipeline in-process ------------------------------------------------------------


class DiscardOutbox:
    async def send_many(self, messages: Any) -> None:
        return None


async def pipeline_rate(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> float:
    """The worker's own code on real Redis, fed straight from memory: no Kafka, no Faust."""
    store = await RedisStore.open(settings)
    pipeline = ScoringPipeline(settings, store, FixedModels(PopulationModels()), DiscardOutbox())
    now_ms = int(time.time() * 1000)
    batch: list[Record] = []
    started = time.perf_counter()
    for offset, (topic, key, value) in enumerate(records):
        batch.append(Record(settings.topic(topic), 0, offset, key, value, now_ms))
        if len(batch) == settings.batch_size:
            await pipeline.process(batch)
            batch = []
    if batch:
        await pipeline.process(batch)
    rate = len(records) / (time.perf_counter() - started)
    await store.close()
    return rate


# --- workers ----------------------------------------------------------------------------


class Workers:
    """Worker processes of one consumer group, and their processed counters."""

    def __init__(self, settings: Settings, folder: Path, count: int):
        self.all = [
            WorkerProcess(
                replace(settings, web_port=free_port()),
                folder / f"worker-{uuid.uuid4().hex[:6]}.log",
            ).start()
            for _ in range(count)
        ]

    def processed(self, settings: Settings) -> int:
        """Field events processed by all of them (household shares not counted)."""
        names = {settings.topic(t) for t in EVENT_TOPICS}
        return int(sum(v for w in self.all for t, v in w.processed().items() if t in names))

    def wait_ready(self, settings: Settings) -> None:
        wait_until(lambda: all("Worker ready" in w.log() for w in self.all), timeout=120)
        wait_until(
            lambda: group_members(settings) == len(self.all),
            timeout=120,
            what="every worker in the group",
        )

    def stop(self) -> None:
        for worker in self.all:
            worker.stop()


def group_members(settings: Settings) -> int:
    """Members of the workers' consumer group once it is stable, else 0."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        description = admin.describe_groups([settings.app_id]).get(settings.app_id, {})
    finally:
        admin.close()
    if description.get("group_state") != "Stable":
        return 0
    return len(description.get("members") or [])


def drain_rate(settings: Settings, workers: Workers, records: list, already: int) -> float:
    """Publish a backlog and time the workers through it, first event to last."""
    target = already + len(records)
    publisher = threading.Thread(target=publish_all, args=(settings, records))
    publisher.start()
    first = wait_until(
        lambda: workers.processed(settings) > already and time.perf_counter(),
        timeout=120,
        interval=0.02,
    )
    # Polled gently: every poll is a metrics page the worker renders.
    wait_until(lambda: workers.processed(settings) >= target, timeout=1_200, interval=0.25)
    done = time.perf_counter()
    publisher.join()
    return len(records) / (done - first)


def sustained(settings: Settings, voters: Any, plan: Plan, folder: Path, count: int) -> float:
    """Events per second of ``count`` workers draining a backlog of ``plan.backlog`` events."""
    group = phase(settings, f"drain{count}")
    workers = Workers(group, folder, count)
    try:
        workers.wait_ready(group)
        warm = event_records(voters, 2_000, seed=90 + count, tag=f"warm{count}")
        drain_rate(group, workers, warm, 0)  # connections, caches, first snapshot
        backlog = event_records(voters, plan.backlog, seed=100 + count, tag=f"drain{count}")
        return drain_rate(group, workers, backlog, len(warm))
    finally:
        workers.stop()


# --- latency ----------------------------------------------------------------------------


def latencies_ms(client: redis.Redis, keys: Keys, tag: str, since: str) -> list[float]:
    """Write time minus Kafka record time of the first feed entry each event caused."""
    first: dict[bytes, float] = {}
    for _id, entry in client.xrange(keys.changes, min=since):
        cause = entry[b"cause"]
        if cause.startswith(tag.encode()) and cause not in first:
            first[cause] = int(entry[b"ts"]) - int(entry[b"event_ts"])
    return list(first.values())


def feed_position(client: redis.Redis, keys: Keys) -> str:
    """The id of the change feed's newest entry; the start when there is no feed yet."""
    try:
        return client.xinfo_stream(keys.changes)["last-generated-id"]
    except redis.ResponseError:
        return "0-0"


def latency_at_rates(settings: Settings, voters: Any, plan: Plan, folder: Path) -> None:
    group = phase(settings, "latency")
    workers = Workers(group, folder, 1)
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace)
    try:
        workers.wait_ready(group)
        processed = 0
        for rate in plan.rates:
            tag = f"lat{rate}"
            records = event_records(voters, int(rate * plan.latency_seconds), seed=rate, tag=tag)
            since = feed_position(client, keys)
            achieved = publish_at(group, records, rate)
            processed += len(records)
            wait_until(lambda p=processed: workers.processed(group) >= p, timeout=600)
            lat = np.array(latencies_ms(client, keys, tag, since))
            for q in (50, 95, 99):
                figure(f"latency.p{q}@{rate}", float(np.percentile(lat, q)), "ms")
            figure(
                f"latency.offered@{rate}",
                achieved,
                "events/s",
                f"{lat.size} events moved a score and were timed",
            )
    finally:
        workers.stop()
        client.close()


# --- a million voters -------------------------------------------------------------------


def voter_batches(count: int, chunk: int = 100_000) -> Iterator[Any]:
    for start in range(0, count, chunk):
        table = generate_voters(min(chunk, count - start), seed=start + 1)
        ids = [f"M{start + i:08d}" for i in range(table.num_rows)]
        yield table.set_column(0, "voter_id", [ids])


async def million_voters(settings: Settings, plan: Plan) -> None:
    """Load ``plan.sweep_voters`` voters, score them, sweep them with new models, weigh them."""
    big = replace(settings, redis_namespace=settings.redis_namespace + "big:")
    client = redis.Redis.from_url(settings.redis_url)
    before = client.info("memory")["used_memory"]
    store = await RedisStore.open(big)

    started = time.perf_counter()
    tables = list(voter_batches(plan.sweep_voters))
    generated = time.perf_counter() - started
    figure("voters.generate", generated, "s", f"{plan.sweep_voters} synthetic voters, one core")

    started = time.perf_counter()
    loaded = 0
    for table in tables:
        loaded += await store.load_voters(voter_rows(table))
    figure("load.voters", loaded / (time.perf_counter() - started), "voters/s", f"{loaded} voters")

    sweeper = Sweeper(store, partitions=big.partitions)
    first = await sweeper.sweep(PopulationModels())
    figure("sweep.first_scores", first.rate, "voters/s", "every voter scored from nothing")
    after_load = client.info("memory")["used_memory"]

    models = trained_models(plan)
    report = await sweeper.sweep(models)
    figure("sweep.rate", report.rate, "voters/s", f"{report.changed} of {report.rescored} changed")
    figure("sweep.elapsed", report.elapsed_s, "s", f"{report.rescored} voters")

    figure("redis.bytes_per_voter", (after_load - before) / loaded, "bytes", "scores, no evidence")
    weigh_keys(client, Keys(big.redis_namespace), loaded)
    await store.close()
    delete_keys(client, big.redis_namespace)
    client.close()


def trained_models(plan: Plan) -> PopulationModels:
    voters = generate_voters(20_000, seed=5)
    rows = {r["voter_id"]: voter_features(public_attributes(r)) for r in voters.to_pylist()}
    models = PopulationModels()
    for event in simulate_events(voters, 30_000, seed=6):
        labels = labels_from_event(event)
        if labels:
            models.learn_one(rows[event["voter_id"]], labels)
    return models


def weigh_keys(client: redis.Redis, keys: Keys, voters: int) -> None:
    """Bytes per voter by key kind, from MEMORY USAGE on a sample."""
    sample = [f"M{n:08d}" for n in range(0, voters, max(1, voters // 200))]
    for kind, key_of in (("attrs", keys.attrs), ("voter_hash", keys.voter)):
        sizes = [client.memory_usage(key_of(v), samples=0) or 0 for v in sample]
        figure(f"redis.bytes.{kind}", statistics.mean(sizes), "bytes/voter", "sampled")
    for name in SCORES:
        per_entry = (client.memory_usage(keys.scores(name), samples=0) or 0) / voters
        figure(f"redis.bytes.ranking_{name}", per_entry, "bytes/voter")
    per_entry = (client.memory_usage(keys.voters, samples=0) or 0) / voters
    figure("redis.bytes.voter_index", per_entry, "bytes/voter", "the sweep's walk in id order")


def evidence_weight(settings: Settings, voters: Any) -> None:
    """Bytes of one voter's evidence hash and history, for voters the benchmarks touched."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace)
    with_evidence = [v for v in voters.column("voter_id").to_pylist()[:2_000]]
    for kind, key_of in (("evidence", keys.evidence), ("history", keys.history)):
        sizes = [client.memory_usage(key_of(v), samples=0) for v in with_evidence]
        sizes = [s for s in sizes if s]
        events = [client.hlen(keys.evidence(v)) for v in with_evidence if client.exists(key_of(v))]
        note = f"{len(sizes)} voters, {statistics.mean(events or [0]):.1f} events each"
        figure(f"redis.bytes.{kind}", statistics.mean(sizes or [0]), "bytes/voter", note)
    client.close()


# --- the run ----------------------------------------------------------------------------


PHASES: list[Settings] = []


def isolated() -> Settings:
    """Settings of this run: its own Redis namespace; each phase has its own topics."""
    tag = uuid.uuid4().hex[:8]
    return Settings.from_env(
        topic_prefix=f"bench{tag}-",
        redis_namespace=f"bench{tag}:",
        app_id=f"bench{tag}",
        data_dir=Path(tempfile.mkdtemp(prefix="votescore-bench-")),
        # Big enough that a latency run's feed entries are all still there to read.
        change_feed_maxlen=1_000_000,
    )


def phase(settings: Settings, name: str) -> Settings:
    """Topics and a consumer group for one phase, sharing the run's voters in Redis."""
    own = replace(
        settings, topic_prefix=f"{settings.topic_prefix}{name}-", app_id=f"{settings.app_id}-{name}"
    )
    ensure_topics(own)
    PHASES.append(own)
    return own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller backlogs and voter file")
    parser.add_argument("--skip-million", action="store_true", help="no load/sweep/memory part")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    configure_logging("WARNING")
    settings = isolated()
    folder = settings.data_dir
    print(f"# load average at start: {load_average():.2f}; logs in {folder}", flush=True)

    voters = generate_voters(plan.voters, seed=3)
    rows = voter_rows(voters)
    try:
        asyncio.run(load(settings, rows))
        records = event_records(voters, plan.backlog, seed=1, tag="raw")
        raw_limits(phase(settings, "raw"), rows, records)

        one = sustained(settings, voters, plan, folder, 1)
        figure("worker.sustained_1", one, "events/s", "one worker process")
        two = sustained(settings, voters, plan, folder, 2)
        figure("worker.sustained_2", two, "events/s", f"two processes; {two / one:.2f}x one")

        latency_at_rates(settings, voters, plan, folder)
        evidence_weight(settings, voters)
        if not args.skip_million:
            asyncio.run(million_voters(settings, plan))
    finally:
        cleanup(settings)
    print(f"# load average at end: {load_average():.2f}", flush=True)
    return 0


async def load(settings: Settings, rows: list[dict]) -> None:
    store = await RedisStore.open(settings)
    await store.load_voters(rows)
    await Sweeper(store, partitions=settings.partitions).sweep(PopulationModels())
    await store.close()


def raw_limits(settings: Settings, rows: list[dict], records: list) -> None:
    river_limits(rows, records)
    writes = asyncio.run(redis_write_limit(settings))
    figure("raw.redis_pipelined_writes", writes, "events/s", "a hash and 4 rankings each")
    produced = publish_all(settings, records)
    figure("raw.kafka_produce", produced, "records/s", "kafka-python, acks=all")
    consumed = asyncio.run(kafka_consume_limit(settings, len(records)))
    figure("raw.kafka_consume", consumed, "records/s", "aiokafka, no processing")
    handed = faust_limit(settings, len(records))
    figure("raw.faust_take_events", handed, "events/s", "one Faust agent doing nothing")
    in_process = asyncio.run(pipeline_rate(settings, records[:50_000]))
    figure("pipeline.in_process", in_process, "events/s", "real Redis, no Kafka, no learner")


def cleanup(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    delete_keys(client, settings.redis_namespace)
    client.close()
    for each in PHASES:
        delete_topics(each)


if __name__ == "__main__":
    sys.exit(main())
