"""Which events moved a voter's scores, and by how many points.

Uses the scoring model's own leave-one-out explanation
(:func:`models.scoring.explain_evidence`). The voter's population prior is not stored
in Redis, so it is recovered from the stored score and evidence totals; the score is
rounded to whole points, which leaves the prior off by well under a point's worth and
each event's effect off by less than that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.scoring import explain_evidence, posterior
from streams.dashboard.layout import SCORES

TOP = 5  # events listed per score


def moved_by(current: Mapping[str, str], records: Mapping[str, Any]) -> dict[str, list[dict]]:
    """Per score, the events that moved it most: ``{event, points, type, ts}``, biggest first."""
    evidence = {
        event_id: {s: tuple(pair) for s, pair in record["evidence"].items()}
        for event_id, record in records.items()
        if isinstance(record, dict) and isinstance(record.get("evidence"), dict)
    }
    explained: dict[str, list[dict]] = {}
    for score in SCORES:
        prior = recovered_prior(current, score)
        if prior is None or not evidence:
            continue
        effects = explain_evidence(evidence, {score: prior}, score)[:TOP]
        if not effects:
            continue  # no event carried evidence about this score
        explained[score] = [
            {"event": event_id, "points": points, **_about(records[event_id])}
            for event_id, points in effects
        ]
    return explained


def recovered_prior(current: Mapping[str, str], score: str) -> float | None:
    """The prior mean that, with the voter's evidence totals, gives the stored score."""
    if not current.get(score):
        return None
    successes = int(current.get(f"{score}_a", 0)) / 1000  # totals are kept in thousandths
    failures = int(current.get(f"{score}_b", 0)) / 1000
    alpha, beta = posterior(score, 0.5, 0.0, 0.0)
    strength = alpha + beta  # the prior's weight in pseudo-observations
    mean = int(current[score]) / 100
    prior = (mean * (strength + successes + failures) - successes) / strength
    return min(max(prior, 0.01), 0.99)


def _about(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": record.get("type"), "ts": record.get("ts")}
