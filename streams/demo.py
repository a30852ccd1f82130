"""`votescore demo`: the whole loop on the local default, with scores changing live.

Loads a synthetic voter file, starts a worker (and the dashboard), streams simulated
field evidence in the background, and every couple of seconds knocks on one of a few
watched voters' doors, printing how their scores move and how long the change took
to reach Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaProducer

from models.population import SCORES
from models.voters import generate_voters, read_voters, write_voters
from streams import topics
from streams.commands import _load_and_score
from streams.config import Settings
from streams.redisio import Keys
from streams.schemas import new_event
from streams.simulate import publish

# Door-knock answers the demo cycles through, from delighted to hostile.
KNOCKS = [
    {"contact": "contacted", "support_id": 1, "will_vote": "yes", "donate_ask": "pledged"},
    {"contact": "contacted", "support_id": 2, "will_vote": "yes"},
    {"contact": "contacted", "support_id": 4, "will_vote": "maybe"},
    {"contact": "contacted", "support_id": 5, "will_vote": "no", "donate_ask": "declined"},
]


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline locally and watch scores move"
    )
    demo.add_argument("--voters", type=int, default=5_000, help="size of the synthetic voter file")
    demo.add_argument("--seconds", type=float, default=30.0, help="how long to stream evidence")
    demo.add_argument("--rate", type=float, default=300.0, help="background events per second")
    demo.add_argument("--keep-running", action="store_true", help="leave worker and dashboard up")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    folder = settings.data_dir.parent / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    voter_file = _voter_file(folder, args.voters)

    print(f"loading {args.voters} voters into Redis at {settings.redis_url} ...")
    asyncio.run(_load_and_score(settings, read_voters(voter_file)))
    children = [_spawn(settings, folder, "worker"), _spawn(settings, folder, "dashboard")]
    print(f"worker log: {folder / 'worker.log'}")
    print(f"dashboard:  http://127.0.0.1:{settings.dashboard_port}/")
    try:
        latencies = _watch_scores(settings, voter_file, args)
        _summarise(latencies)
        if args.keep_running:
            print("worker and dashboard keep running; Ctrl-C to stop them")
            _wait_forever()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
    return 0


def _voter_file(folder: Path, count: int) -> Path:
    path = folder / f"voters-{count}.parquet"
    if not path.exists():
        print(f"generating a synthetic voter file of {count} voters ...")
        write_voters(generate_voters(count, seed=2026), path)
    return path


def _spawn(settings: Settings, folder: Path, command: str) -> subprocess.Popen:
    log = open(folder / f"{command}.log", "ab")  # noqa: SIM115 - the child owns it
    env = {**os.environ, **settings.to_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", command],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _watch_scores(settings: Settings, voter_file: Path, args: argparse.Namespace) -> list[float]:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    keys = Keys(settings.redis_namespace)
    watched = random.sample(read_voters(voter_file).column("voter_id").to_pylist(), 4)

    # A first knock before any background traffic: it waits for the worker to start
    # and join its group, so its time is start-up, not scoring, and is not counted.
    print("waiting for the worker to join its consumer group ...")
    if _knock(client, producer, keys, settings, watched[0], KNOCKS[0], timeout=90.0) is None:
        return []

    background = threading.Thread(
        target=publish,
        args=(settings, read_voters(voter_file)),
        kwargs={
            "count": int(args.rate * args.seconds),
            "rate": args.rate,
            "seed": random.randrange(1 << 30),
        },
        daemon=True,
    )
    background.start()
    print(f"\nstreaming ~{args.rate:.0f} simulated events/s; knocking on {len(watched)} doors:\n")

    latencies: list[float] = []
    deadline = time.monotonic() + args.seconds
    knock = 1
    while time.monotonic() < deadline:
        time.sleep(2.0)  # a pause between doors, so a reader can follow
        voter_id = watched[knock % len(watched)]
        answer = KNOCKS[knock % len(KNOCKS)]
        latency = _knock(client, producer, keys, settings, voter_id, answer, timeout=10.0)
        if latency is not None:
            latencies.append(latency)
        knock += 1
    background.join()
    producer.close()
    return latencies


def _knock(
    client, producer, keys, settings, voter_id: str, answer: dict, timeout: float
) -> float | None:
    before = client.hgetall(keys.voter(voter_id))
    event = new_event(
        "canvass", voter_id, answer, source="demo", event_id=f"demo-{uuid.uuid4().hex[:10]}"
    )
    topic = settings.topic(topics.TOPIC_FOR_TYPE["canvass"])
    sent = time.perf_counter()
    producer.send(topic, event.to_bytes(), key=voter_id.encode()).get(timeout=30)

    after = _wait_scored(client, keys.voter(voter_id), event.event_id, timeout=timeout)
    if after is None:
        print(f"  {voter_id}: no score change within {timeout:.0f} s (see the worker log)")
        return None
    latency = time.perf_counter() - sent
    moves = "  ".join(f"{n} {before.get(n, '?')}->{after[n]}" for n in SCORES)
    label = f"support_id {answer['support_id']}, will_vote {answer.get('will_vote')}"
    print(
        f"  {voter_id}  canvass ({label}):  {moves}{_model_moved(before, after)}"
        f"   [{latency * 1000:.0f} ms to Redis]"
    )
    return latency


def _model_moved(before: dict, after: dict) -> str:
    # Between two knocks the population models may have moved on too, and then a
    # score moves for both reasons: say so, or a supporter's falling score puzzles.
    old, new = before.get("model_version"), after.get("model_version")
    return f"  (and models v{old}->v{new})" if old and old != new else ""


def _wait_scored(client, key: str, event_id: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voter = client.hgetall(key)
        if voter.get("last_event") == event_id:
            return voter
        time.sleep(0.002)
    return None


def _summarise(latencies: list[float]) -> None:
    if not latencies:
        print("\nno score changes observed")
        return
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"\npublish -> Redis: median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms "
        f"over {len(ms)} door knocks"
    )


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
