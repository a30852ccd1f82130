"""What Redis holds, read back for the tests' assertions."""

from __future__ import annotations

from collections import Counter

import redis

from models.population import SCORES
from streams.redisio import Keys


def precinct_aggregates_from_voters(client: redis.Redis, keys: Keys, voters: list[str]) -> dict:
    """Each precinct's count, sum and histogram recomputed from the voters' own scores."""
    expected: dict[str, Counter] = {}
    for voter_id in voters:
        voter = client.hgetall(keys.voter(voter_id))
        totals = expected.setdefault(voter[b"precinct"].decode(), Counter())
        for name in SCORES:
            value = int(voter[name.encode()])
            totals[f"{name}:count"] += 1
            totals[f"{name}:sum"] += value
            totals[f"{name}:h{min(9, (value - 1) // 10)}"] += 1
    return {p: {k: v for k, v in c.items() if v} for p, c in expected.items()}


def stored_aggregates(client: redis.Redis, keys: Keys, precincts: list[str]) -> dict:
    out = {}
    for precinct in precincts:
        raw = client.hgetall(keys.precinct(precinct))
        out[precinct] = {k.decode(): int(v) for k, v in raw.items() if int(v)}
    return out
