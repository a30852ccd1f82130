"""End to end: the real worker, Kafka and Redis behind the dashboard, in headless Chromium.

An event published to Kafka is scored by `votescore worker`, written to Redis, streamed
to the page by the dashboard (`votescore dashboard`, read-only Redis user) and moves
the histogram; the export guard refuses a small segment; the lag panel reads the
worker's consumer group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer

from streams import topics
from streams.config import Settings
from streams.dashboard import layout
from streams.schemas import new_event
from tests.browser.helpers import ARTIFACTS, dashboard_answers
from tests.conftest import ROOT, free_port, votescore, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WAIT_MS = 90_000  # the worker's first batch includes Faust's start-up and a rebalance


@pytest.fixture
def population(settings: Settings, tmp_path: Path) -> Path:
    """200 generated voters, loaded and scored by the population model."""
    voter_file = tmp_path / "voters.parquet"
    votescore(settings, "voters", "generate", "--count", "200", "--out", str(voter_file))
    votescore(settings, "voters", "load", str(voter_file))
    return voter_file


@pytest.fixture
def dashboard_url(settings: Settings, admin: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """`votescore dashboard` in a subprocess, on a free loopback port."""
    port = free_port()
    log_path = tmp_path / "dashboard.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "dashboard", "--port", str(port)],
            env={**os.environ, **settings.to_env()},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: dashboard_answers(url) or process.poll() is not None, timeout=60)
        assert process.poll() is None, log_path.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def voter_at_a_bucket_edge(admin: redis.Redis, settings: Settings) -> str:
    """A voter whose support sits at the top of a 10-point bucket (40, 50, ...), so any
    rise moves them into the next bucket of the histogram."""
    ranked = admin.zrange(layout.scores(settings, "support"), 0, -1, withscores=True)
    edge = [voter for voter, score in ranked if int(score) % 10 == 0 and score < 90]
    assert edge, "no voter at a bucket edge in the generated population"
    return edge[0]


def publish_canvass(settings: Settings, voter_id: str) -> str:
    event_id = f"e-{uuid.uuid4().hex[:12]}"
    payload = {"contact": "contacted", "support_id": 1, "will_vote": "yes"}
    event = new_event("canvass", voter_id, payload, event_id=event_id, source="e2e-test")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    topic = settings.topic(topics.TOPIC_FOR_TYPE["canvass"])
    producer.send(topic, event.to_bytes(), key=voter_id.encode()).get(timeout=30)
    producer.close()
    return event_id


def stored_histogram(admin: redis.Redis, settings: Settings) -> list[int]:
    """Support scores in Redis, counted in the page's 10-point buckets."""
    counts = [0] * 10
    for _, score in admin.zrange(layout.scores(settings, "support"), 0, -1, withscores=True):
        counts[min(9, (int(score) - 1) // 10)] += 1
    return counts


def histogram(page, score: str) -> list[int]:
    return json.loads(page.get_attribute(f"#hist-{score}", "data-counts"))


def test_a_published_event_reaches_the_page(
    settings: Settings,
    admin: redis.Redis,
    population: Path,
    start_worker: Callable,
    dashboard_url: str,
    page,
) -> None:
    voter_id = voter_at_a_bucket_edge(admin, settings)
    old_support = int(admin.zscore(layout.scores(settings, "support"), voter_id))
    start_worker()
    page.goto(dashboard_url)
    page.wait_for_selector("#feed-status.on")
    page.wait_for_selector("#hist-support[data-counts]", state="attached")
    drawn = page.get_attribute("#hist-support", "data-counts")
    page.screenshot(path=ARTIFACTS / "live-before.png", full_page=True)
    page.fill("#feed-filter", voter_id)  # model sweeps may re-score every voter meanwhile

    event_id = publish_canvass(settings, voter_id)

    page.wait_for_selector(
        f"#feed li[data-voter='{voter_id}'][data-cause='{event_id}']", timeout=WAIT_MS
    )
    page.wait_for_function(
        "([before]) => document.querySelector('#hist-support').dataset.counts !== before",
        arg=[drawn],
        timeout=WAIT_MS,
    )
    new_support = int(admin.zscore(layout.scores(settings, "support"), voter_id))
    assert new_support > old_support  # from the top of a bucket into the next one

    # Other voters may move too (the canvass reaches the household; a model sweep may
    # run): the page settles on exactly what Redis holds.
    after = wait_for(
        lambda: (
            histogram(page, "support") == stored_histogram(admin, settings)
            and histogram(page, "support")
        ),
        timeout=30,
        what="the page's histogram to match Redis",
    )
    assert after != json.loads(drawn) and sum(after) == 200
    page.screenshot(path=ARTIFACTS / "live-after-event.png", full_page=True)


def test_the_export_guard_and_the_lag_panel_with_the_worker(
    settings: Settings,
    admin: redis.Redis,
    population: Path,
    start_worker: Callable,
    dashboard_url: str,
    page,
) -> None:
    start_worker()
    voter_id = admin.zrange(layout.scores(settings, "support"), 0, 0)[0]
    publish_canvass(settings, voter_id)  # gives the worker's group an offset to commit
    page.goto(dashboard_url)

    page.wait_for_selector("#segment select[name=precinct] option:nth-child(2)", state="attached")
    page.select_option("#segment select[name=precinct]", index=1)
    page.fill("#segment input[name=min]", "95")
    page.fill("#operator", "e2e-operator")
    page.click("#export")

    notice = page.wait_for_selector("#export-result.refused")
    assert "exports need at least 50" in notice.inner_text()
    [(_, audit)] = admin.xrange(layout.exports(settings))
    assert audit["operator"] == "e2e-operator" and audit["outcome"] == "refused"
    # The worker's group reads every evidence topic; canvass is the one just published to.
    page.wait_for_selector("#lag tbody tr:has-text('canvass')", timeout=WAIT_MS)
    page.screenshot(path=ARTIFACTS / "live-export-refused.png", full_page=True)
