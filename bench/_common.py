"""Helpers the benchmarks (and the tests) share: figures, worker processes, waiting."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams import topics
from streams.config import Settings

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def figure(name: str, value: float, unit: str, note: str = "") -> None:
    """Print one figure as ``name: value unit``, the format every benchmark uses."""
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    print(f"{name}: {shown} {unit}" + (f" ({note})" if note else ""), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


class WorkerProcess:
    """A `votescore worker` subprocess; its log is kept in a file."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.to_env()}
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log_file.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processed(self) -> dict[str, float]:
        """Records processed so far, by topic (empty until the ops server answers)."""
        url = f"http://127.0.0.1:{self.settings.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        pattern = r'^votescore_events_processed_total\{topic="([^"]+)"\} (\S+)$'
        return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def consumer_lag(settings: Settings) -> int | None:
    """Records of the worker's topics its consumer group has not committed yet."""
    from streams.lag import _end_offsets

    names = [settings.topic(t) for t in topics.EVENT_TOPICS]
    names.append(settings.topic(topics.HOUSEHOLD_EVIDENCE))
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    except KafkaError:
        return None
    try:
        group = settings.app_id
        committed = admin.list_group_offsets(group).get(group, {})
        partitions = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = _end_offsets(admin, partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return sum(end - done.get(tp, 0) for tp, end in ends.items())
    except KafkaError:
        return None
    finally:
        admin.close()
        consumer.close()


def wait_caught_up(settings: Settings, timeout: float) -> None:
    """Until the worker's group has committed everything, twice in a row."""
    streak = [0]

    def caught_up() -> bool:
        lag = consumer_lag(settings)
        streak[0] = streak[0] + 1 if lag == 0 else 0
        return streak[0] >= 2

    wait_until(caught_up, timeout=timeout, interval=1.0, what="the worker to catch up")


def delete_keys(client: redis.Redis, namespace: str) -> int:
    """Delete every key under ``namespace``; returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{namespace}*", count=5_000):
        batch.append(key)
        if len(batch) >= 5_000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def load_average() -> float:
    """The one-minute load average: the machine is shared, so figures depend on it."""
    return os.getloadavg()[0]
