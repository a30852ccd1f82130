"""The dashboard's HTTP API against the real Redis: read-only access, exports, the feed."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import redis
import redis.asyncio as aioredis

from streams.config import Settings
from streams.dashboard import access, layout
from tests.browser.helpers import seed_voters, write_change

pytestmark = pytest.mark.integration


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_the_dashboard_user_cannot_write(settings: Settings, admin: redis.Redis) -> None:
    seed_voters(admin, settings, 5)

    async def attempt() -> list[str]:
        async with aioredis.Redis.from_url(settings.redis_url) as root:
            user, password = await access.create_reader(root, settings)
        reader = access.connect_as(settings.redis_url, user, password)
        refused = []
        assert await reader.hget(layout.voter(settings, "V0000001"), "precinct") == "P01"
        writes = [
            reader.hset(layout.voter(settings, "V0000001"), "support", 99),
            reader.xadd(layout.changes(settings), {"voter": "V0000001"}),
            reader.delete(layout.scores(settings, "support")),
            reader.zadd(layout.scores(settings, "support"), {"V9": 1}),
            reader.flushdb(),
            reader.get("outside-the-namespace"),
        ]
        for write in writes:
            with pytest.raises(redis.exceptions.NoPermissionError) as caught:
                await write
            refused.append(str(caught.value))
        await reader.aclose()
        return refused

    assert len(asyncio.run(attempt())) == 6
    assert admin.hget(layout.voter(settings, "V0000001"), "support") != "99"


def test_summary_merges_the_precinct_histograms(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 40, precincts=4)

    status, body, _ = get(f"{dashboard.url}/api/summary")

    summary = json.loads(body)
    assert status == 200
    assert sum(summary["histograms"]["support"]) == 40
    assert [p["voters"] for p in summary["precincts"]] == [10, 10, 10, 10]


def test_targets_apply_every_filter(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 200, precincts=4)

    query = "score=turnout&min=40&max=80&precinct=P02&min_evidence=1"
    status, body, _ = get(f"{dashboard.url}/api/targets?{query}")

    targets = json.loads(body)["targets"]
    assert status == 200 and targets
    assert all(t["precinct"] == "P02" and 40 <= t["score"] <= 80 for t in targets)
    assert all(t["evidence"] >= 1 for t in targets)
    assert [t["score"] for t in targets] == sorted((t["score"] for t in targets), reverse=True)


def test_a_bad_filter_is_a_clear_400(dashboard) -> None:
    status, body, _ = get(f"{dashboard.url}/api/targets?score=charisma")

    assert status == 400
    assert "charisma" in json.loads(body)["error"]


def test_export_refuses_a_small_segment_and_audits_it(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 200, precincts=4)
    query = "score=support&min=95&max=100&precinct=P01"

    status, body, _ = get(f"{dashboard.url}/api/export?{query}", {"X-Votescore-Operator": "ana"})

    assert status == 403
    assert "at least 50" in json.loads(body)["error"]
    [(_, audit)] = admin.xrange(layout.exports(settings))
    assert audit["operator"] == "ana" and audit["outcome"] == "refused"
    assert audit["segment_precinct"] == "P01" and audit["segment_min_score"] == "95"


def test_export_of_a_large_segment_is_csv_and_audited(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 200, precincts=2)
    basic = "Basic YmVuOnNlY3JldA=="  # ben:secret

    status, body, headers = get(f"{dashboard.url}/api/export?score=donor", {"Authorization": basic})

    lines = body.decode().splitlines()
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert lines[0] == "voter,precinct,donor,low,high,evidence"
    assert len(lines) == 201
    [(_, audit)] = admin.xrange(layout.exports(settings))
    assert audit["operator"] == "ben" and audit["outcome"] == "exported" and audit["rows"] == "200"


def test_export_names_who_is_exporting(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 60)

    status, body, _ = get(f"{dashboard.url}/api/export?score=support")

    assert status == 401
    assert admin.xlen(layout.exports(settings)) == 0


def test_voter_lookup(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 3)
    admin.hset(
        layout.evidence(settings, "V0000002"),
        "c-1",
        json.dumps({"type": "canvass", "ts": 1, "evidence": {"support": [1.0, 0.0]}}),
    )

    status, body, _ = get(f"{dashboard.url}/api/voter/V0000002")
    missing, _, _ = get(f"{dashboard.url}/api/voter/V9999999")

    voter = json.loads(body)
    assert status == 200 and missing == 404
    assert voter["precinct"] == "P02"
    assert voter["scores"]["support"]["low"] <= voter["scores"]["support"]["value"]
    assert voter["evidence"] == [
        {
            "event": "c-1",
            "contribution": {"type": "canvass", "ts": 1, "evidence": {"support": [1.0, 0.0]}},
        }
    ]
    assert len(voter["history"]) == 1


def test_the_feed_streams_a_change_as_a_server_sent_event(dashboard, admin, settings) -> None:
    seed_voters(admin, settings, 3)
    response = urllib.request.urlopen(f"{dashboard.url}/api/feed", timeout=15)

    # The stream starts at "now": write the change once the server holds the stream open.
    entry_id = write_change(admin, settings, "V0000001", "support", 40, 61)
    event = read_sse_event(response, deadline=time.monotonic() + 15)
    response.close()

    assert event["id"] == entry_id
    assert json.loads(event["data"])["new"] == 61


def read_sse_event(response, deadline: float) -> dict[str, str]:
    event: dict[str, str] = {}
    while time.monotonic() < deadline:
        line = response.readline().decode().rstrip("\n")
        if line == "" and "data" in event:
            return event
        name, _, value = line.partition(": ")
        if name in ("id", "event", "data"):
            event[name] = value
    raise AssertionError("no event before the deadline")


def test_plotly_comes_from_the_installed_package_and_nothing_else_leaks(dashboard) -> None:
    from importlib import resources

    shipped = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()

    status, body, _ = get(f"{dashboard.url}/static/plotly.min.js")
    hidden, _, _ = get(f"{dashboard.url}/static/__init__.py")

    assert status == 200 and body == shipped
    assert hidden == 404
