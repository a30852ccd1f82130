"""Helpers for the dashboard's tests: where artifacts go, and scores written straight into
Redis in the README's layout for tests that need a scored population but not the worker."""

from __future__ import annotations

import random
import time
import urllib.request
from pathlib import Path

import orjson
import redis

from streams.config import Settings
from streams.dashboard import layout
from streams.dashboard.layout import SCORES

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


def seed_voters(
    client: redis.Redis, settings: Settings, count: int, precincts: int = 4
) -> list[str]:
    """Write ``count`` scored voters spread over ``precincts``; return their ids."""
    rng = random.Random(7)
    voter_ids = [f"V{i:07d}" for i in range(count)]
    pipe = client.pipeline(transaction=False)
    for i, voter_id in enumerate(voter_ids):
        precinct = f"P{i % precincts:02d}"
        scores = {s: rng.randint(1, 100) for s in SCORES}
        write_voter(pipe, settings, voter_id, precinct, scores, evidence=i % 3)
    pipe.execute()
    return voter_ids


def write_voter(
    pipe: redis.client.Pipeline,
    settings: Settings,
    voter_id: str,
    precinct: str,
    scores: dict[str, int],
    evidence: int = 0,
) -> None:
    now_ms = int(time.time() * 1000)
    fields: dict[str, object] = {"precinct": precinct, "updated_at": now_ms, "model_version": 1}
    for s, value in scores.items():
        fields |= {s: value, f"{s}_low": max(1, value - 8), f"{s}_high": min(100, value + 8)}
        fields[f"{s}_n"] = evidence
        pipe.zadd(layout.scores(settings, s), {voter_id: value})
        pipe.hincrby(layout.precinct(settings, precinct), f"{s}:count", 1)
        pipe.hincrby(layout.precinct(settings, precinct), f"{s}:sum", value)
        pipe.hincrby(layout.precinct(settings, precinct), f"{s}:h{min(9, (value - 1) // 10)}", 1)
    pipe.hset(layout.voter(settings, voter_id), mapping=fields)
    pipe.sadd(layout.precincts(settings), precinct)
    pipe.lpush(
        layout.history(settings, voter_id),
        orjson.dumps({"ts": now_ms, "event": "seed", "scores": scores}),
    )


def write_change(
    client: redis.Redis, settings: Settings, voter_id: str, score: str, old: int, new: int
) -> str:
    """Append one change to the feed, as the worker would."""
    entry = {
        "voter": voter_id,
        "score": score,
        "old": old,
        "new": new,
        "cause": "e-seed",
        "ts": int(time.time() * 1000),
    }
    return client.xadd(layout.changes(settings), entry)


def dashboard_answers(url: str) -> bool:
    """Whether a dashboard at ``url`` (no trailing slash) answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
