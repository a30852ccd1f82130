"""Scoring a voter: the population prior, updated by that voter's own evidence.

A score is a Beta posterior. The population model's probability ``m`` is the prior
mean, held with a pseudo-count strength ``k`` (:data:`PRIOR_STRENGTH`): the prior is
``Beta(m k, (1 - m) k)``. The voter's evidence adds its successes and failures, so with
totals ``s`` and ``f`` the posterior is ``Beta(m k + s, (1 - m) k + f)``, its mean
``(m k + s) / (k + s + f)``. The shown value is that mean times 100, rounded and kept
within 1-100; the 80% credible interval runs from the posterior's 10th to its 90th
percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.special import betaincinv

PRIOR_STRENGTH = {"support": 6.0, "turnout": 12.0, "donor": 10.0, "engagement": 30.0}
"""How many observations the population prior is worth, by score.

The smaller it is, the further one voter's own evidence moves the score. Set from the
spread of the hidden truth around the population prior in simulation: if true
propensities scatter around prior means ``m`` with mean squared distance ``v``, the
matching Beta has ``k = mean(m (1 - m)) / v - 1``; ``bench/quality.py`` prints it as
``<score>.fit.strength`` (at 50k labels: support 6.0, turnout 13.2, donor 9.5,
engagement 30.4). Turnout and engagement are well explained by the voter file (vote
history, age), so one answer moves them less than one support ID moves support.
"""

_INTERVAL = (0.1, 0.9)
_EPSILON = 1e-6


@dataclass(frozen=True)
class Score:
    """One score of one voter, ready to show."""

    probability: float
    value: int
    low: int
    high: int
    evidence: int


def score_voter(
    prior: dict[str, float],
    totals: dict[str, tuple[float, float]],
    counts: dict[str, int],
) -> dict[str, Score]:
    """Every score in ``prior``, updated by the evidence ``totals`` (successes, failures).

    ``counts`` is the number of evidence events behind each score, shown beside it.
    """
    return {
        name: _score(name, mean, totals.get(name, (0.0, 0.0)), counts.get(name, 0))
        for name, mean in prior.items()
    }


def posterior(name: str, prior_mean: float, successes: float, failures: float) -> tuple:
    """The Beta posterior's parameters ``(alpha, beta)`` for one score."""
    strength = PRIOR_STRENGTH.get(name, 4.0)
    mean = min(max(prior_mean, _EPSILON), 1.0 - _EPSILON)
    return mean * strength + max(successes, 0.0), (1.0 - mean) * strength + max(failures, 0.0)


def _score(name: str, prior_mean: float, total: tuple[float, float], count: int) -> Score:
    alpha, beta = posterior(name, prior_mean, *total)
    probability = alpha / (alpha + beta)
    value = _points(probability)

    low, high = (_points(float(betaincinv(alpha, beta, q))) for q in _INTERVAL)
    # A very skewed Beta can have its mean outside its central 80%: widen, never hide.
    return Score(probability, value, min(low, value), max(high, value), count)


def _points(probability: float) -> int:
    return min(100, max(1, round(100.0 * probability)))


def explain_evidence(
    records: dict[str, dict[str, tuple[float, float]]],
    prior: dict[str, float],
    score: str,
) -> list[tuple[str, float]]:
    """Event ids that moved ``score`` most, with how far, in points, biggest first.

    ``records`` maps event id -> that event's evidence. An event's effect is the score
    with all the evidence minus the score without that event's evidence (leave one out),
    so it is what retracting the event would undo.
    """
    totals = _sum_evidence(records, score)
    with_all = _mean(score, prior[score], *totals)
    effects = []
    for event_id, evidence in records.items():
        successes, failures = evidence.get(score, (0.0, 0.0))
        if not (successes or failures):
            continue
        without = _mean(score, prior[score], totals[0] - successes, totals[1] - failures)
        effects.append((event_id, round(100.0 * (with_all - without), 2)))
    effects.sort(key=lambda item: abs(item[1]), reverse=True)
    return effects


def _sum_evidence(records: dict[str, dict[str, tuple[float, float]]], score: str) -> tuple:
    successes = sum(evidence.get(score, (0.0, 0.0))[0] for evidence in records.values())
    failures = sum(evidence.get(score, (0.0, 0.0))[1] for evidence in records.values())
    return successes, failures


def _mean(score: str, prior_mean: float, successes: float, failures: float) -> float:
    alpha, beta = posterior(score, prior_mean, successes, failures)
    return alpha / (alpha + beta)
