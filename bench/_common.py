"""Helpers the benchmarks share: printing figures, worker subprocesses, clean-up."""

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
from typing import Any

import redis

from streams.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def figure(name: str, value: float, unit: str) -> None:
    """Print one figure as ``name: value unit``, the format every benchmark uses."""
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    print(f"{name}: {shown} {unit}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], *, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {condition.__name__}")
        time.sleep(interval)


class Worker:
    """A `votescore worker` subprocess, read through its /metrics endpoint."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings = settings
        self.log_path = log_path
        env = {**os.environ, **settings.to_env()}
        self.log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def processed(self) -> dict[str, float]:
        """Events processed so far, by topic (empty until the ops server answers)."""
        url = f"http://127.0.0.1:{self.settings.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        pattern = r'^votescore_events_processed_total\{topic="([^"]+)"\} (\S+)$'
        return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log_file.close()


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
