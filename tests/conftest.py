"""Shared fixtures: real Kafka and Redis, isolated per test by prefixes and namespaces."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from bench._common import WorkerProcess, delete_keys, free_port, wait_until
from streams.config import Settings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    try:
        return wait_until(condition, timeout=timeout, interval=interval, what=what)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


def isolated_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with a topic prefix, consumer group and Redis namespace of their own."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "topic_prefix": f"t{tag}-",
        "redis_namespace": f"t{tag}:",
        "app_id": f"vs-t{tag}",
        "partitions": 2,
        "data_dir": tmp_path / "worker",
        "web_port": free_port(),
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings.from_env(**values)


def cleanup(settings: Settings) -> None:
    """Remove the test's Redis keys and Kafka topics."""
    from streams.kafka_admin import delete_topics

    client = redis.Redis.from_url(settings.redis_url)
    delete_keys(client, settings.redis_namespace)
    client.close()
    try:
        delete_topics(settings)
    except Exception:  # a broker test may have left Kafka down; its topics die with the run
        pass


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = isolated_settings(tmp_path)
    yield settings
    cleanup(settings)


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    client.close()


def votescore(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the votescore CLI in a subprocess with these settings."""
    env = {**os.environ, **settings.to_env()}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(worker_settings: Settings | None = None) -> WorkerProcess:
        n = len(started)
        worker = WorkerProcess(worker_settings or settings, tmp_path / f"worker{n}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def voter_file(tmp_path: Path) -> Path:
    from models.voters import generate_voters, write_voters

    path = tmp_path / "voters.parquet"
    write_voters(generate_voters(300, seed=7, extra_columns=10), path)
    return path


@pytest.fixture
def loaded_voters(settings: Settings, voter_file: Path) -> Path:
    from models.voters import read_voters
    from streams.commands import _load_and_score

    asyncio.run(_load_and_score(settings, read_voters(voter_file)))
    return voter_file
