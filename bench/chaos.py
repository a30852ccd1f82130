"""Chaos run: crashes, restarts, retries and garbage, and every score still right.

Everything runs on a private Kafka broker and a private Redis (own ports, own data in
a temporary directory), never on the shared ones, because the run restarts both:

1. a voter file is loaded; a stream of simulated events is published at a steady
   rate, with retried duplicates (the same event id 2-10 times) and garbage mixed in;
2. meanwhile the worker is killed with SIGKILL at random moments and restarted, the
   broker is restarted once and Redis is restarted once (it keeps its data: AOF);
3. once the worker has caught up it is stopped, and the state it left is compared
   with an uninterrupted run of the same records: ``votescore replay`` into a second
   Redis namespace. Evidence (event ids, totals, counts) must match exactly. Scores
   are compared after a final re-score of both with one model snapshot, where they
   must match exactly too; the difference before that re-score is the model drift
   (live scores were made with whichever snapshot was newest at the time);
4. Redis is lost (the namespace deleted) and ``votescore replay`` rebuilds it; the
   result must equal the state before the loss.

Run: ``.venv/bin/python bench/chaos.py`` (100,000 events, 5 kills, about 10 minutes on
two cores) or ``--quick`` (3,000 events, 2 kills). Figures print as ``name: value``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    WorkerProcess,
    delete_keys,
    free_port,
    wait_caught_up,
    wait_until,
)
from models.population import SCORES, PopulationModels  # noqa: E402
from streams import topics  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.kafka_admin import ensure_topics  # noqa: E402
from streams.redisio import Keys, RedisStore  # noqa: E402
from streams.sweep import Sweeper  # noqa: E402

KAFKA_LIB = ROOT / ".local" / "kafka" / "lib"


# --- private services ---------------------------------------------------------------


class PrivateKafka:
    """A single-node KRaft broker of our own, in a temporary directory, on free ports."""

    def __init__(self, home: Path, port: int | None = None):
        self.home = home
        self.port = port or free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> PrivateKafka:
        if not (self.home / "data" / "meta.properties").exists():
            self._configure()
        log = open(self.home / "broker.log", "ab")  # noqa: SIM115 - the broker holds it
        self.process = subprocess.Popen(
            [*self._java(), "-Xmx384m", "-XX:+UseG1GC", "kafka.Kafka", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=120, what=f"private Kafka on {self.bootstrap}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    def _java(self) -> list[str]:
        log4j = ROOT / "scripts" / "kafka" / "log4j2.properties"
        return [
            "java",
            "-cp",
            f"{KAFKA_LIB}/*",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
        ]

    def _configure(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.home / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=2",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        subprocess.run(
            [*self._java(), "kafka.tools.StorageTool", "format", "-t", new_cluster_id()]
            + ["-c", str(self.config)],
            check=True,
            capture_output=True,
        )

    def _answers(self) -> bool:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3_000)
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()


def new_cluster_id() -> str:
    """A random KRaft cluster id, as Kafka's own ``random-uuid`` would make it.

    The id is 16 random bytes in URL-safe base64, which may begin with ``-``; the
    storage tool would read such an id as an option and refuse to format, so, like
    Kafka, draw again until it does not.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class PrivateRedis:
    """A Redis server of our own that keeps its data across a restart (AOF, fsync always)."""

    def __init__(self, home: Path, port: int | None = None):
        self.home = home
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.home.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--dir", str(self.home), "--save", "", "--appendonly", "yes"]
            + ["--appendfsync", "always", "--logfile", str(self.home / "redis.log")],
        )
        wait_until(self._answers, timeout=30, what=f"private Redis on {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False


# --- the stream field apps send -------------------------------------------------------


@dataclass
class Stream:
    """What the field apps send: records in order, with retries and garbage among them."""

    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    event_ids: dict[str, set[str]] = field(default_factory=dict)  # voter -> distinct ids
    events: int = 0
    duplicates: int = 0
    garbage: dict[str, int] = field(default_factory=dict)  # expected reason -> count

    @property
    def sent(self) -> int:
        return len(self.records)


def make_stream(
    voters: Any, count: int, *, seed: int, duplicate_rate: float = 0.05, garbage_rate: float = 0.01
) -> Stream:
    """``count`` simulated events; some sent 2-10 times, some garbage records between them."""
    from streams.simulate import stamped_events

    rng = random.Random(seed)
    voter_ids = voters.column("voter_id").to_pylist()
    stream = Stream()
    for event in stamped_events(voters, count, seed=seed, source="chaos"):
        topic = topics.TOPIC_FOR_TYPE[event["type"]]
        record = (topic, event["voter_id"].encode(), orjson.dumps(event))
        copies = rng.randint(2, 10) if rng.random() < duplicate_rate else 1
        stream.records += [record] * copies
        stream.event_ids.setdefault(event["voter_id"], set()).add(event["event_id"])
        stream.events += 1
        stream.duplicates += copies - 1
        if rng.random() < garbage_rate:
            reason, garbage = garbage_record(rng, rng.choice(voter_ids))
            stream.records.append(garbage)
            stream.garbage[reason] = stream.garbage.get(reason, 0) + 1
    return stream


def _canvass(voter: str, **changes: Any) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "type": "canvass",
        "event_id": f"bad-{uuid.uuid4().hex[:12]}",
        "voter_id": voter,
        "ts": datetime.now(UTC).isoformat(),
        "source": "chaos",
        "payload": {"contact": "contacted", "support_id": 2},
    }
    event.update(changes)
    return event


def garbage_record(rng: random.Random, voter_id: str) -> tuple[str, tuple[str, bytes, bytes]]:
    """One bad record a phone might send, and the dead-letter reason it must get."""
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    donation = {"amount": -5.0, "recurring": False}
    kinds: list[tuple[str, str, bytes]] = [
        ("malformed_json", "canvass", b'{"schema_version": 1, "type": '),
        ("unknown_schema_version", "canvass", orjson.dumps(_canvass(voter_id, schema_version=7))),
        ("missing_voter_id", "canvass", orjson.dumps(_canvass(voter_id, voter_id=""))),
        ("unknown_voter", "canvass", orjson.dumps(_canvass("V-NOBODY-" + voter_id))),
        ("invalid_field", "canvass", orjson.dumps(_canvass(voter_id, payload={"contact": 3}))),
        (
            "invalid_field",
            "canvass",
            orjson.dumps(_canvass(voter_id, payload={"contact": "contacted", "support_id": 9})),
        ),
        (
            "invalid_field",
            "donations",
            orjson.dumps(_canvass(voter_id, type="donation", payload=donation)),
        ),
        ("ts_in_future", "canvass", orjson.dumps(_canvass(voter_id, ts=future))),
        ("oversized", "canvass", orjson.dumps(_canvass(voter_id, source="x" * 20_000))),
        ("not_utf8", "canvass", b'{"voter_id": "\xff\xfe"}'),
    ]
    reason, topic, value = rng.choice(kinds)
    key = b"" if reason == "missing_voter_id" else voter_id.encode()
    if reason == "unknown_voter":
        key = b"V-NOBODY-" + voter_id.encode()
    return reason, (topic, key or None, value)


def publish_stream(
    settings: Settings, stream: Stream, *, rate: float, stop: threading.Event | None = None
) -> int:
    """Send every record at about ``rate`` a second; the producer rides out broker restarts."""
    ensure_topics(settings)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        delivery_timeout_ms=300_000,
        max_block_ms=300_000,
    )
    started = time.monotonic()
    sent = 0
    try:
        for topic, key, value in stream.records:
            if stop is not None and stop.is_set():
                break
            producer.send(settings.topic(topic), value, key=key)
            sent += 1
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0.005:
                time.sleep(ahead)  # pacing to the offered rate
        producer.flush(timeout=300)
    finally:
        producer.close()
    return sent


# --- Redis state, captured for comparison -------------------------------------------

EVIDENCE_FIELDS = ["seq"] + [f"{s}_{part}" for s in SCORES for part in ("a", "b", "n")]
SCORE_FIELDS = [f"{s}{part}" for s in SCORES for part in ("", "_low", "_high")]


@dataclass
class State:
    evidence: dict[str, dict[str, Any]]  # voter -> evidence ids (and retracted) + totals
    scores: dict[str, dict[str, int]]  # voter -> score, low, high per score
    precincts: dict[str, dict[str, str]]  # precinct -> aggregate hash


def capture(client: redis.Redis, keys: Keys, voter_ids: list[str]) -> State:
    """Every voter's evidence and scores and every precinct's aggregates."""
    evidence, scores = {}, {}
    for start in range(0, len(voter_ids), 2_000):
        chunk = voter_ids[start : start + 2_000]
        pipe = client.pipeline(transaction=False)
        for voter_id in chunk:
            pipe.hmget(keys.voter(voter_id), EVIDENCE_FIELDS + SCORE_FIELDS)
            pipe.hgetall(keys.evidence(voter_id))
        replies = pipe.execute()
        for voter_id, fields, ids in zip(chunk, replies[::2], replies[1::2]):
            totals = dict(zip(EVIDENCE_FIELDS, (int(v or 0) for v in fields)))
            totals["ids"] = {_text(k): "retracted_by" in _text(v) for k, v in ids.items()}
            evidence[voter_id] = totals
            values = fields[len(EVIDENCE_FIELDS) :]
            scores[voter_id] = dict(zip(SCORE_FIELDS, (int(v or 0) for v in values)))
    precincts = {}
    for precinct in sorted(client.smembers(keys.precincts)):
        name = precinct.decode() if isinstance(precinct, bytes) else precinct
        # A bucket that emptied again reads "0"; one never filled is absent: the same.
        counts = client.hgetall(keys.precinct(name))
        precincts[name] = {_text(k): int(v) for k, v in counts.items() if int(v)}
    return State(evidence, scores, precincts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def evidence_differences(a: State, b: State) -> int:
    return sum(1 for v in a.evidence if a.evidence[v] != b.evidence.get(v))


def max_score_difference(a: State, b: State) -> int:
    return max((abs(a.scores[v][n] - b.scores[v][n]) for v in a.scores for n in SCORES), default=0)


def lost_events(state: State, stream: Stream) -> int:
    """Events sent but applied to no voter's evidence."""
    return sum(len(ids - set(state.evidence[v]["ids"])) for v, ids in stream.event_ids.items())


def rescore(settings: Settings, models: PopulationModels) -> None:
    """Re-score every voter with one model snapshot (what a sweep does)."""

    async def run() -> None:
        store = await RedisStore.open(settings)
        try:
            await Sweeper(store, partitions=settings.partitions).sweep(models)
        finally:
            await store.close()

    asyncio.run(run())


def newest_models(settings: Settings) -> PopulationModels:
    from streams.modelsync import read_latest_snapshot

    latest = asyncio.run(read_latest_snapshot(settings))
    return latest[0] if latest else PopulationModels()


def delete_namespace(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    delete_keys(client, settings.redis_namespace)
    client.close()


# --- the run --------------------------------------------------------------------------


@dataclass
class ChaosReport:
    sent: int = 0
    events: int = 0
    duplicates_sent: int = 0
    garbage_sent: int = 0
    applied: int = 0
    dead_lettered: int = 0
    dead_letter_copies: int = 0
    duplicates_suppressed: int = 0
    lost: int = 0
    evidence_mismatches: int = 0
    max_score_diff_before_rescore: int = 0
    max_score_diff: int = 0
    aggregates_equal: bool = False
    replay_after_loss_equal: bool = False
    kills: int = 0
    broker_restarts: int = 0
    redis_restarts: int = 0
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def dead_letter_counts(settings: Settings) -> tuple[int, int]:
    """Dead letters on the topic: (distinct bad records, records in all).

    A dead letter names the record it stands for (topic, partition, offset headers); a
    worker killed after sending one but before committing its batch sends it again.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3_000,
    )
    try:
        topic = settings.topic(topics.DEAD_LETTERS)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        origins, total = set(), 0
        for record in consumer:
            headers = dict(record.headers)
            origins.add((headers["topic"], headers["partition"], headers["offset"]))
            total += 1
        return len(origins), total
    finally:
        consumer.close()


def run_worker_under_fire(
    start_worker: Callable[[], Any],
    publisher: threading.Thread,
    *,
    kills: int,
    rng: random.Random,
    disruptions: list[Callable[[], None]],
    report: ChaosReport,
) -> Any:
    """Kill the worker at random moments while the publisher runs; returns the last worker."""
    worker = start_worker()
    plan = ["kill"] * kills + ["disrupt"] * len(disruptions)
    rng.shuffle(plan)
    disruptions = list(disruptions)
    for step in plan:
        wait_until(
            lambda w=worker: "Worker ready" in w.log(), timeout=120, what="the worker to start"
        )
        time.sleep(rng.uniform(1.0, 10.0))  # a random moment of processing, not a condition
        if step == "kill":
            worker.kill()
            report.kills += 1
            worker = start_worker()
        else:
            disruptions.pop(0)()
    publisher.join()
    return worker


def chaos_run(
    settings: Settings,
    voters_path: Path,
    *,
    count: int,
    kills: int,
    rate: float,
    seed: int,
    start_worker: Callable[[], Any],
    kafka: PrivateKafka | None = None,
    redis_server: PrivateRedis | None = None,
    rebuild: Callable[[Settings], None] | None = None,
    catch_up_timeout: float = 600,
) -> ChaosReport:
    """The whole scenario of the module docstring; returns its figures."""
    from models.voters import read_voters
    from streams.commands import _load_and_score
    from streams.replay import replay

    started = time.perf_counter()
    report = ChaosReport()
    rng = random.Random(seed)
    voters = read_voters(voters_path)
    voter_ids = voters.column("voter_id").to_pylist()
    asyncio.run(_load_and_score(settings, voters))

    stream = make_stream(voters, count, seed=seed)
    report.sent, report.events = stream.sent, stream.events
    report.duplicates_sent, report.garbage_sent = stream.duplicates, sum(stream.garbage.values())
    publisher = threading.Thread(
        target=publish_stream, args=(settings, stream), kwargs={"rate": rate}
    )
    publisher.start()

    disruptions = []
    if kafka is not None:
        disruptions.append(lambda: (kafka.restart(), _count(report, "broker_restarts")))
    if redis_server is not None:
        disruptions.append(lambda: (redis_server.restart(), _count(report, "redis_restarts")))
    worker = run_worker_under_fire(
        start_worker, publisher, kills=kills, rng=rng, disruptions=disruptions, report=report
    )
    wait_caught_up(settings, catch_up_timeout)
    worker.stop()

    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace)
    live_drifting = capture(client, keys, voter_ids)
    models = newest_models(settings)
    rescore(settings, models)
    live = capture(client, keys, voter_ids)

    # The uninterrupted run: the same records, once through, into a namespace of its own.
    reference_settings = _replace(settings, redis_namespace=settings.redis_namespace + "ref:")
    asyncio.run(replay(reference_settings, voters=voters, models=models, show_progress=False))
    reference = capture(client, Keys(reference_settings.redis_namespace), voter_ids)
    delete_namespace(reference_settings)

    report.applied = sum(v["seq"] for v in live.evidence.values())
    report.dead_lettered, copies = dead_letter_counts(settings)
    report.dead_letter_copies = copies - report.dead_lettered
    report.lost = lost_events(live, stream)
    report.duplicates_suppressed = stream.duplicates
    report.evidence_mismatches = evidence_differences(live, reference)
    report.max_score_diff_before_rescore = max_score_difference(live_drifting, reference)
    report.max_score_diff = max_score_difference(live, reference)
    report.aggregates_equal = live.precincts == reference.precincts

    # Redis lost: rebuild from Kafka alone and compare with the state before the loss.
    delete_namespace(settings)
    if rebuild is not None:
        rebuild(settings)
    else:
        asyncio.run(replay(settings, voters=voters, show_progress=False))
    rebuilt = capture(client, keys, voter_ids)
    report.replay_after_loss_equal = (
        evidence_differences(live, rebuilt) == 0
        and max_score_difference(live, rebuilt) == 0
        and live.precincts == rebuilt.precincts
    )
    client.close()
    report.elapsed_s = time.perf_counter() - started
    return report


def _count(report: ChaosReport, name: str) -> None:
    setattr(report, name, getattr(report, name) + 1)


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)


def print_report(report: ChaosReport, args: argparse.Namespace) -> None:
    print(f"events_sent: {report.sent} records")
    print(f"distinct_events: {report.events} events")
    print(f"retried_copies_sent: {report.duplicates_sent} records")
    print(f"garbage_sent: {report.garbage_sent} records")
    print(f"applied: {report.applied} evidence items (events and household shares)")
    print(f"dead_lettered: {report.dead_lettered} records (limit: garbage_sent)")
    print(f"dead_letters_sent_again: {report.dead_letter_copies} records (after kills)")
    print(f"duplicates_suppressed: {report.duplicates_suppressed} retried copies (at least)")
    print(f"lost: {report.lost} events (limit: 0)")
    print(f"evidence_mismatches: {report.evidence_mismatches} voters (limit: 0)")
    print(f"aggregates_equal: {int(report.aggregates_equal)} (limit: 1)")
    print(f"max_score_diff_live_models: {report.max_score_diff_before_rescore} points")
    print(f"max_score_diff: {report.max_score_diff} points (one snapshot; limit: 0)")
    print(f"replay_after_loss_equal: {int(report.replay_after_loss_equal)} (limit: 1)")
    print(f"worker_kills: {report.kills} (asked: {args.kills})")
    print(f"broker_restarts: {report.broker_restarts}")
    print(f"redis_restarts: {report.redis_restarts}")
    print(f"elapsed: {report.elapsed_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 events, 2 kills")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--voters", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--rate", type=float, default=250.0, help="events per second offered")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.events, args.voters, args.kills, args.rate = 3_000, 1_000, 2, 150.0

    from models.voters import generate_voters, write_voters

    # Faust's default session timeout is 60 s: a killed worker's partitions would wait
    # that long for the restarted one. Ten seconds keeps the run short.
    os.environ.setdefault("BROKER_SESSION_TIMEOUT", "10")
    home = Path(tempfile.mkdtemp(prefix="votescore-chaos-"))
    kafka = PrivateKafka(home / "kafka").start()
    redis_server = PrivateRedis(home / "redis").start()
    workers: list[WorkerProcess] = []
    try:
        voters_path = home / "voters.parquet"
        write_voters(generate_voters(args.voters, seed=args.seed, extra_columns=10), voters_path)
        settings = Settings.from_env(
            kafka_bootstrap=kafka.bootstrap,
            redis_url=redis_server.url,
            topic_prefix="chaos-",
            redis_namespace="chaos:",
            app_id="vs-chaos",
            data_dir=home / "worker",
            web_port=free_port(),
        )

        def start_worker() -> WorkerProcess:
            worker = WorkerProcess(settings, home / f"worker{len(workers)}.log").start()
            workers.append(worker)
            return worker

        report = chaos_run(
            settings,
            voters_path,
            count=args.events,
            kills=args.kills,
            rate=args.rate,
            seed=args.seed,
            start_worker=start_worker,
            kafka=kafka,
            redis_server=redis_server,
        )
        print_report(report, args)
        ok = report.lost == 0 and report.evidence_mismatches == 0 and report.max_score_diff == 0
        return 0 if ok and report.aggregates_equal and report.replay_after_loss_equal else 1
    finally:
        for worker in workers:
            worker.stop()
        redis_server.stop()
        kafka.stop()
        if os.environ.get("CHAOS_KEEP") is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
