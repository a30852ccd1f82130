"""Health and readiness: is a worker connected, caught up, and still consuming?

The decision is pure logic over lag readings (:mod:`streams.lag`) and the outcome of
the latest calls to Kafka and Redis, so it is tested without services:

- **live** (``/healthz``): connected to Kafka and Redis, and no partition *stalled*:
  a partition stalls when it has lag but its committed offset has not moved for
  ``stall_after_s``. That catches an agent that silently stopped consuming.
- **ready** (``/readyz``): live, at least one lag reading, and every partition within
  ``ready_max_lag`` records of its end (caught up).

:func:`add_routes` mounts ``/healthz``, ``/readyz`` and ``/metrics`` on an aiohttp
application; both health endpoints answer 200 or 503 with a JSON body saying why.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from streams import metrics
from streams.config import Settings
from streams.lag import Key, LagMonitor, LagRow, LagSnapshot, start_lag_monitor
from streams.logs import get_logger, kv

logger = get_logger(__name__)

SERVICES = ("kafka", "redis")


@dataclass(frozen=True)
class HealthPolicy:
    """How long lag may stand still, and how much lag still counts as caught up."""

    stall_after_s: float = 60.0
    ready_max_lag: int = 1000


@dataclass(frozen=True)
class HealthReport:
    """The verdict, with the reasons ops need when it is not good."""

    live: bool
    ready: bool
    total_lag: int
    reasons: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "ready": self.ready,
            "total_lag": self.total_lag,
            "reasons": self.reasons,
            "stalled": self.stalled,
        }


class ProgressTracker:
    """Remembers when each partition's committed offset last moved (or had no lag)."""

    def __init__(self) -> None:
        self.committed: dict[Key, int | None] = {}
        self.progress_at: dict[Key, float] = {}

    def observe(self, rows: list[LagRow], now: float) -> None:
        for row in rows:
            moved = self.committed.get(row.key, -1) != row.committed
            if moved or not row.lag:
                self.progress_at[row.key] = now
            self.committed[row.key] = row.committed

    def stalled(self, rows: list[LagRow], now: float, stall_after_s: float) -> list[LagRow]:
        """Rows with lag whose committed offset has stood still for ``stall_after_s``."""
        return [
            row
            for row in rows
            if _behind(row) and now - self.progress_at.get(row.key, now) >= stall_after_s
        ]


def _behind(row: LagRow) -> bool:
    # A partition never committed but with records waiting is behind too.
    return row.lag > 0 if row.lag is not None else row.end > 0


def assess(
    snapshot: LagSnapshot | None,
    tracker: ProgressTracker,
    services: dict[str, bool],
    policy: HealthPolicy,
    now: float,
) -> HealthReport:
    """Decide live and ready from the latest lag reading and service outcomes."""
    reasons = [f"{name} unreachable" for name in SERVICES if not services.get(name, True)]
    rows = snapshot.rows if snapshot else []
    stalled = tracker.stalled(rows, now, policy.stall_after_s)
    if stalled:
        reasons.append(f"{len(stalled)} partitions stalled with lag")
    live = not reasons

    total_lag = sum(_lag_or_end(row) for row in rows)
    behind = [row for row in rows if _lag_or_end(row) > policy.ready_max_lag]
    ready_reasons = list(reasons)
    if snapshot is None:
        ready_reasons.append("no lag reading yet")
    if behind:
        ready_reasons.append(f"{len(behind)} partitions over {policy.ready_max_lag} behind")

    names = [f"{row.group}/{row.topic}/{row.partition}" for row in stalled]
    return HealthReport(live, not ready_reasons, total_lag, ready_reasons, names)


def _lag_or_end(row: LagRow) -> int:
    return row.lag if row.lag is not None else row.end


class WorkerHealth:
    """Live state for one worker: the latest lag reading and service outcomes.

    Pass :meth:`on_reading` to :func:`streams.lag.start_lag_monitor`; call
    :meth:`note` after Redis calls (``note("redis", ok)``). Thread-safe, since the
    lag monitor runs in its own thread.
    """

    def __init__(
        self,
        policy: HealthPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        owned: Callable[[], Iterable[tuple[str, int]]] | None = None,
    ):
        self.policy = policy or HealthPolicy()
        self.clock = clock
        # With several workers in a group, each answers for its own partitions only.
        self.owned = owned
        self.tracker = ProgressTracker()
        self.snapshot: LagSnapshot | None = None
        self.services: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._was_live = True

    def on_reading(self, snapshot: LagSnapshot | None) -> None:
        """Take one lag reading; ``None`` means Kafka did not answer."""
        with self._lock:
            self.services["kafka"] = snapshot is not None
            if snapshot is not None:
                self.snapshot = snapshot
                self.tracker.observe(snapshot.rows, self.clock())
        self.report()

    def note(self, service: str, ok: bool) -> None:
        """Record whether the latest call to ``service`` succeeded."""
        with self._lock:
            self.services[service] = ok

    def report(self) -> HealthReport:
        with self._lock:
            snapshot = self._mine(self.snapshot)
            report = assess(snapshot, self.tracker, self.services, self.policy, self.clock())
        self._log_change(report)
        return report

    def _mine(self, snapshot: LagSnapshot | None) -> LagSnapshot | None:
        if snapshot is None or self.owned is None:
            return snapshot
        owned = {(topic, partition) for topic, partition in self.owned()}
        rows = [row for row in snapshot.rows if (row.topic, row.partition) in owned]
        return LagSnapshot(rows, snapshot.taken_at)

    def _log_change(self, report: HealthReport) -> None:
        # One line when the verdict flips, not one per probe.
        if report.live != self._was_live:
            level = logger.info if report.live else logger.warning
            level(
                "Worker health changed. %s",
                kv(
                    live=report.live,
                    reasons=";".join(report.reasons) or "none",
                    stalled=",".join(report.stalled) or "none",
                ),
            )
            self._was_live = report.live


def add_routes(app: web.Application, report: Callable[[], HealthReport]) -> None:
    """Mount ``/healthz``, ``/readyz`` and ``/metrics`` on ``app``."""

    async def healthz(request: web.Request) -> web.Response:
        verdict = report()
        return web.json_response(verdict.to_dict(), status=200 if verdict.live else 503)

    async def readyz(request: web.Request) -> web.Response:
        verdict = report()
        return web.json_response(verdict.to_dict(), status=200 if verdict.ready else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text exposition of every votescore metric."""
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` in the running loop; stop with ``runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class OpsServer:
    """A worker's ops endpoints: lag monitor, health verdict and metrics on one port."""

    def __init__(self, health: WorkerHealth, monitor: LagMonitor, runner: web.AppRunner):
        self.health = health
        self.monitor = monitor
        self.runner = runner

    async def stop(self) -> None:
        await self.runner.cleanup()
        await asyncio.to_thread(self.monitor.stop)


async def start_ops_server(
    settings: Settings,
    groups: Sequence[str] | None = None,
    *,
    policy: HealthPolicy | None = None,
    owned: Callable[[], Iterable[tuple[str, int]]] | None = None,
    interval_s: float = 5.0,
) -> OpsServer:
    """Start lag monitoring and serve ``/healthz``, ``/readyz``, ``/metrics``.

    Listens on ``settings.web_host:settings.web_port``; ``groups`` defaults to the
    app id (the worker's consumer group). Call ``server.health.note("redis", ok)``
    after Redis calls and ``await server.stop()`` at shutdown.
    """
    worker = WorkerHealth(policy, owned=owned)
    monitor = start_lag_monitor(
        settings, groups or [settings.app_id], interval_s=interval_s, on_reading=worker.on_reading
    )
    app = web.Application()
    add_routes(app, worker.report)
    runner = await serve(app, settings.web_host, settings.web_port)
    logger.info("Ops endpoints serving. %s", kv(host=settings.web_host, port=settings.web_port))
    return OpsServer(worker, monitor, runner)
