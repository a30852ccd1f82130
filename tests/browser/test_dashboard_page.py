"""The dashboard in headless Chromium, over scores written straight into Redis."""

from __future__ import annotations

import json

import pytest
import redis

from streams.config import Settings
from streams.dashboard import layout
from tests.browser.helpers import ARTIFACTS, seed_voters, write_change, write_voter

pytestmark = pytest.mark.browser


def histogram(page, score: str) -> list[int]:
    return json.loads(page.get_attribute(f"#hist-{score}", "data-counts"))


def test_the_page_draws_every_panel(
    dashboard, admin: redis.Redis, settings: Settings, page
) -> None:
    seed_voters(admin, settings, 120, precincts=3)

    page.goto(dashboard.url)
    page.wait_for_selector("#hist-engagement .main-svg")  # drawn by plotly.js, served locally
    page.wait_for_selector("#targets tbody tr")

    assert sum(histogram(page, "support")) == 120
    assert page.locator("#precincts tbody tr").count() == 3
    assert page.inner_text("#scored-count") == "120 voters scored"
    assert page.errors == []


def test_a_change_shows_in_the_feed_and_moves_the_histogram(
    dashboard, admin: redis.Redis, settings: Settings, page
) -> None:
    seed_voters(admin, settings, 30)
    page.goto(dashboard.url)
    page.wait_for_selector("#feed-status.on")
    page.wait_for_selector("#hist-support[data-counts]", state="attached")
    drawn = page.get_attribute("#hist-support", "data-counts")

    # What the worker does when a new voter is scored: aggregates first, then the feed.
    pipe = admin.pipeline()
    write_voter(pipe, settings, "V0999999", "P00", dict.fromkeys(layout.SCORES, 95))
    pipe.execute()
    write_change(admin, settings, "V0999999", "support", 50, 95)

    page.wait_for_selector("#feed li:has-text('V0999999')")
    page.wait_for_function(
        "([before]) => document.querySelector('#hist-support').dataset.counts !== before",
        arg=[drawn],
    )
    before, after = json.loads(drawn), histogram(page, "support")
    assert after[9] == before[9] + 1 and sum(after) == sum(before) + 1
    page.screenshot(path=ARTIFACTS / "feed-moved-histogram.png", full_page=True)


def test_the_export_guard_refuses_a_small_segment(
    dashboard, admin: redis.Redis, settings: Settings, page
) -> None:
    seed_voters(admin, settings, 200, precincts=4)
    page.goto(dashboard.url)
    page.wait_for_selector("#segment select[name=precinct] option[value=P01]", state="attached")

    page.select_option("#segment select[name=precinct]", "P01")
    page.fill("#segment input[name=min]", "90")
    page.fill("#operator", "field-lead")
    page.click("#export")

    notice = page.wait_for_selector("#export-result.refused")
    assert "exports need at least 50" in notice.inner_text()
    [(_, audit)] = admin.xrange(layout.exports(settings))
    assert audit["operator"] == "field-lead" and audit["outcome"] == "refused"
    page.screenshot(path=ARTIFACTS / "export-refused.png", full_page=True)


def test_voter_lookup_shows_scores_history_and_evidence(
    dashboard, admin: redis.Redis, settings: Settings, page
) -> None:
    seed_voters(admin, settings, 10)
    record = {"type": "canvass", "ts": "2026-12-03T18:04:05Z", "evidence": {"support": [1.0, 0]}}
    admin.hset(layout.evidence(settings, "V0000004"), "c-8f2a", json.dumps(record))
    admin.hset(layout.voter(settings, "V0000004"), "last_event", "c-8f2a")

    page.goto(dashboard.url)
    page.fill("#lookup-id", "V0000004")
    page.click("#lookup-form button")

    page.wait_for_selector("#voter-scores .main-svg")
    page.wait_for_selector("#voter-history .main-svg")
    assert "support +1 for, +0 against" in page.inner_text("#voter-evidence tbody")
    assert "pts by canvass c-8f2a" in page.inner_text("#voter-explain")
    page.screenshot(path=ARTIFACTS / "voter-lookup.png", full_page=True)


def test_an_export_without_an_operator_is_refused(
    dashboard, admin: redis.Redis, settings: Settings, page
) -> None:
    seed_voters(admin, settings, 80)
    page.goto(dashboard.url)

    page.click("#export")

    notice = page.wait_for_selector("#export-result.refused")
    assert "say who is exporting" in notice.inner_text()
    assert admin.xlen(layout.exports(settings)) == 0
