"""The voter lookup's "what moved it": events ranked by how many points they moved a score."""

from __future__ import annotations

import pytest

from models.scoring import explain_evidence, score_voter
from streams.dashboard.explain import moved_by, recovered_prior

RECORDS = {
    "c-1": {"type": "canvass", "ts": "2026-12-01T10:00:00Z", "evidence": {"support": [1.0, 0.0]}},
    "d-2": {"type": "donation", "ts": "2026-12-02T10:00:00Z", "evidence": {"support": [0.3, 0.0]}},
    "a-3": {"type": "ad", "ts": "2026-12-03T10:00:00Z", "evidence": {"support": [0.0, 0.6]}},
}


def stored_hash(prior: float) -> dict[str, str]:
    """The voter hash the worker would write for RECORDS on top of ``prior``."""
    successes, failures = 1.3, 0.6
    score = score_voter({"support": prior}, {"support": (successes, failures)}, {"support": 3})
    value = score["support"].value
    return {"support": str(value), "support_a": "1300", "support_b": "600", "support_n": "3"}


@pytest.mark.parametrize("prior", [0.12, 0.5, 0.83])
def test_the_prior_is_recovered_to_within_a_point(prior: float) -> None:
    assert recovered_prior(stored_hash(prior), "support") == pytest.approx(prior, abs=0.01)


def test_events_are_ranked_by_the_points_they_moved() -> None:
    explained = moved_by(stored_hash(0.4), RECORDS)["support"]

    assert [item["event"] for item in explained] == ["c-1", "a-3", "d-2"]
    assert explained[0]["points"] > 0 > explained[1]["points"]
    assert explained[0]["type"] == "canvass"


def test_the_points_match_the_models_own_explanation() -> None:
    evidence = {event: {"support": tuple(r["evidence"]["support"])} for event, r in RECORDS.items()}
    exact = dict(explain_evidence(evidence, {"support": 0.4}, "support"))

    shown = {
        item["event"]: item["points"] for item in moved_by(stored_hash(0.4), RECORDS)["support"]
    }

    assert shown == pytest.approx(exact, abs=0.5)


def test_a_voter_without_evidence_or_score_has_nothing_to_explain() -> None:
    assert moved_by({"support": "40"}, {}) == {}
    assert moved_by({}, RECORDS) == {}
    assert moved_by(stored_hash(0.4), {"odd": "not json"}) == {}


def test_scores_no_event_touched_are_left_out() -> None:
    assert list(moved_by(stored_hash(0.4), RECORDS)) == ["support"]
