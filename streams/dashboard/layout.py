"""The Redis keys the dashboard reads, named once, exactly as the README's layout contract.

The part in braces is a Redis Cluster hash tag and is part of the key itself, so
``voter:{V0000042}`` is the literal key of voter V0000042 (before the namespace).
"""

from __future__ import annotations

from streams.config import Settings

SCORES = ("support", "turnout", "donor", "engagement")
BUCKETS = 10  # precinct histograms count 10-point buckets: h0 is 1-10, h9 is 91-100


def voter(settings: Settings, voter_id: str) -> str:
    return settings.key(f"voter:{{{voter_id}}}")


def history(settings: Settings, voter_id: str) -> str:
    return settings.key(f"history:{{{voter_id}}}")


def evidence(settings: Settings, voter_id: str) -> str:
    return settings.key(f"evidence:{{{voter_id}}}")


def scores(settings: Settings, score: str) -> str:
    return settings.key(f"scores:{{{score}}}")


def precinct(settings: Settings, precinct_id: str) -> str:
    return settings.key(f"precinct:{{{precinct_id}}}")


def precincts(settings: Settings) -> str:
    return settings.key("precincts")


def changes(settings: Settings) -> str:
    return settings.key("changes")


def model(settings: Settings) -> str:
    return settings.key("model")


def exports(settings: Settings) -> str:
    """The audit stream of target-list exports (written by the dashboard itself)."""
    return settings.key("exports")
