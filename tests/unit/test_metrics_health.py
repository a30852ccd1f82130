"""Metrics helpers, rolling model quality, and the health verdict (no services)."""

from __future__ import annotations

import asyncio
import doctest
import math
import random

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from sklearn.metrics import log_loss, roc_auc_score

from streams import health, metrics
from streams.lag import LagRow, LagSnapshot, format_table, with_rates


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_worker_calls_show_up_in_the_exposition():
    before = sample("votescore_events_dead_lettered_total", topic="canvass", reason="invalid_field")
    metrics.record_processed("canvass", 3)
    metrics.record_dead_letter("canvass", "invalid_field")
    metrics.observe_latency(0.004)
    metrics.set_sweep_progress(40, 100)
    metrics.set_model_version(7)
    metrics.set_model_quality("support", 0.52, 0.81)
    metrics.set_lag("votescore", "canvass", 2, 15, -3.5)

    after = sample("votescore_events_dead_lettered_total", topic="canvass", reason="invalid_field")
    assert after == before + 1
    assert sample("votescore_sweep_voters_done") == 40
    assert sample("votescore_model_auc", score="support") == 0.81
    assert (
        sample("votescore_consumer_lag_rate", group="votescore", topic="canvass", partition="2")
        == -3.5
    )
    text = metrics.render().decode()
    assert 'votescore_model_info{version="7"} 1.0' in text
    assert 'votescore_consumer_lag{group="votescore",partition="2",topic="canvass"} 15.0' in text


def test_rolling_quality_matches_scikit_learn_on_the_window():
    rng = random.Random(4)
    quality = metrics.RollingQuality(window=200)
    pairs = [(rng.random() < 0.4, round(0.01 + 0.98 * rng.random(), 2)) for _ in range(500)]
    for label, p in pairs:
        quality.observe(label, p)

    labels, probabilities = zip(*pairs[-200:], strict=True)
    assert quality.auc() == pytest.approx(roc_auc_score(labels, probabilities))
    assert quality.log_loss() == pytest.approx(log_loss(labels, probabilities))


def test_rolling_quality_is_nan_without_both_classes():
    quality = metrics.RollingQuality()
    assert math.isnan(quality.log_loss())
    quality.observe(1, 0.7)
    assert math.isnan(quality.auc())


def reading(*rows: tuple[int, int | None, int], at: float = 0.0) -> LagSnapshot:
    return LagSnapshot([LagRow("g", "canvass", p, c, e) for p, c, e in rows], at)


POLICY = health.HealthPolicy(stall_after_s=60, ready_max_lag=10)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_caught_up_worker_is_live_and_ready():
    worker = health.WorkerHealth(POLICY, Clock())
    worker.note("redis", True)
    worker.on_reading(reading((0, 95, 100), (1, 50, 50)))
    report = worker.report()
    assert (report.live, report.ready, report.total_lag) == (True, True, 5)


def test_a_worker_far_behind_is_live_but_not_ready():
    worker = health.WorkerHealth(POLICY, Clock())
    worker.on_reading(reading((0, 10, 100)))
    report = worker.report()
    assert report.live and not report.ready
    assert report.reasons == ["1 partitions over 10 behind"]


def test_an_agent_that_stops_consuming_with_lag_is_reported_stalled():
    clock = Clock()
    worker = health.WorkerHealth(POLICY, clock)
    worker.on_reading(reading((0, 10, 20), (1, 5, 5)))
    clock.now += 30
    worker.on_reading(reading((0, 12, 40), (1, 5, 5)))  # still moving
    clock.now += 59
    worker.on_reading(reading((0, 12, 60), (1, 5, 5)))
    assert worker.report().live

    clock.now += 1
    worker.on_reading(reading((0, 12, 60), (1, 5, 5)))
    report = worker.report()
    # Partition 1 has not moved either, but it has no lag: idle, not stalled.
    assert not report.live and report.stalled == ["g/canvass/0"]


def test_lost_kafka_or_redis_is_not_live():
    worker = health.WorkerHealth(POLICY, Clock())
    worker.on_reading(reading((0, 1, 1)))
    worker.note("redis", False)
    worker.on_reading(None)
    report = worker.report()
    assert not report.live and not report.ready
    assert report.reasons == ["kafka unreachable", "redis unreachable"]


def test_routes_answer_503_with_reasons_when_not_ready():
    worker = health.WorkerHealth(POLICY, Clock())
    app = web.Application()
    health.add_routes(app, worker.report)
    asyncio.run(probe(app))


async def probe(app: web.Application) -> None:
    async with TestClient(TestServer(app)) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
        scraped = await client.get("/metrics")
        assert live.status == 200
        assert ready.status == 503
        assert (await ready.json())["reasons"] == ["no lag reading yet"]
        assert "votescore_consumer_lag" in await scraped.text()


def test_lag_rate_is_the_change_of_lag_per_second_between_readings():
    first = reading((0, 10, 100), (1, None, 5), at=10.0)
    second = with_rates(reading((0, 60, 130), (1, None, 9), at=12.0), first)
    assert [row.rate for row in second.rows] == [-10.0, None]  # 90 -> 70 over 2 s
    assert with_rates(first, None) is first


def test_the_lag_table_shows_dashes_where_kafka_has_no_figure():
    table = format_table(
        with_rates(reading((0, 60, 130), (1, None, 9), at=2), reading((0, 10, 100))).rows
    )
    assert table.splitlines() == [
        "GROUP  TOPIC    PARTITION  COMMITTED  END  LAG  RATE/S",
        "g      canvass  0          60         130  70   -10.0",
        "g      canvass  1          -          9    -    -",
    ]


def test_the_docstring_examples_hold():
    assert doctest.testmod(metrics).failed == 0
