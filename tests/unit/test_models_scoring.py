"""Scoring: Beta posterior arithmetic against hand-computed cases, bounds, explanations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import scoring
from models.scoring import Score, explain_evidence, score_voter


@pytest.fixture(autouse=True)
def hand_strengths(monkeypatch) -> None:
    # Hand-computed cases use round strengths, whatever the tuned values are.
    monkeypatch.setattr(scoring, "PRIOR_STRENGTH", {"support": 4.0, "turnout": 10.0})


def _beta_4_2_quantile(q: float) -> float:
    """Beta(4, 2) has CDF 5x^4 - 4x^5; solve CDF(x) = q by bisection."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if 5 * middle**4 - 4 * middle**5 < q else (low, middle)
    return low


def test_strong_support_on_an_even_prior() -> None:
    # Beta(0.5*4, 0.5*4) + (2, 0) = Beta(4, 2): mean 4/6.
    score = score_voter({"support": 0.5}, {"support": (2.0, 0.0)}, {"support": 1})["support"]

    assert score.probability == pytest.approx(4 / 6)
    assert score.value == 67
    assert score.low == round(100 * _beta_4_2_quantile(0.1))
    assert score.high == round(100 * _beta_4_2_quantile(0.9))
    assert score.evidence == 1


def test_no_evidence_keeps_the_prior() -> None:
    score = score_voter({"turnout": 0.3}, {}, {})["turnout"]

    assert score.probability == pytest.approx(0.3)  # Beta(3, 7)
    assert (score.value, score.evidence) == (30, 0)
    assert score.low < 30 < score.high


def test_strong_oppose_on_a_low_prior() -> None:
    # Beta(0.8, 3.2) + (0, 2) = Beta(0.8, 5.2): mean 0.8 / 6.
    score = score_voter({"support": 0.2}, {"support": (0.0, 2.0)}, {"support": 1})["support"]

    assert score.probability == pytest.approx(0.8 / 6)
    assert score.value == 13


def test_household_share_moves_less_than_own_evidence() -> None:
    own = score_voter({"support": 0.5}, {"support": (2.0, 0.0)}, {"support": 1})["support"]
    shared = score_voter({"support": 0.5}, {"support": (0.6, 0.0)}, {"support": 1})["support"]

    assert 50 < shared.value < own.value


def test_removing_an_events_counts_restores_the_score_exactly() -> None:
    # The stream side keeps thousandths as integers; sums and removals are exact.
    events = {"a": (2000, 0), "b": (300, 0), "c": (0, 1000)}
    totals = [sum(counts[i] for counts in events.values()) for i in (0, 1)]
    without_b = (totals[0] - events["b"][0], totals[1] - events["b"][1])

    after_retraction = score_voter(
        {"support": 0.4}, {"support": tuple(t / 1000 for t in without_b)}, {}
    )
    never_arrived = score_voter({"support": 0.4}, {"support": (2.0, 1.0)}, {})
    assert after_retraction == never_arrived


def test_explain_evidence_is_leave_one_out_in_points() -> None:
    records = {
        "a": {"support": (2.0, 0.0)},
        "b": {"support": (0.0, 1.0)},
        "c": {"turnout": (1.0, 0.0)},
    }

    # With both: Beta(4, 3), mean 4/7. Without a: 2/5. Without b: 4/6.
    explained = explain_evidence(records, {"support": 0.5, "turnout": 0.5}, "support")
    assert explained == [
        ("a", round(100 * (4 / 7 - 2 / 5), 2)),
        ("b", round(100 * (4 / 7 - 4 / 6), 2)),
    ]


probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
thousandths = st.integers(min_value=0, max_value=2_000_000).map(lambda n: n / 1000)


@settings(max_examples=300, deadline=None)
@given(
    prior=st.fixed_dictionaries({"support": probabilities, "turnout": probabilities}),
    successes=thousandths,
    failures=thousandths,
    count=st.integers(min_value=0, max_value=10_000),
)
def test_scores_stay_in_range_with_intervals_around_them(prior, successes, failures, count):
    scores = score_voter(prior, {"support": (successes, failures)}, {"support": count})

    for score in scores.values():
        assert isinstance(score, Score)
        assert 1 <= score.low <= score.value <= score.high <= 100
        assert 0.0 <= score.probability <= 1.0
    assert scores["support"].evidence == count
