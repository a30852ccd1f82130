"""Per-voter evidence: the pseudo-counts each event adds, and the household share."""

from __future__ import annotations

import pytest

from models.evidence import HOUSEHOLD_WEIGHT, evidence_from_event, household_share


def _canvass(support_id=None, will_vote=None, donate_ask=None, contact="contacted") -> dict:
    payload = {"contact": contact, "support_id": support_id, "will_vote": will_vote}
    payload["donate_ask"] = donate_ask
    return {"type": "canvass", "payload": payload}


@pytest.mark.parametrize(
    ("support_id", "counts"),
    [(1, (2.0, 0.0)), (2, (1.0, 0.0)), (3, (1.0, 1.0)), (4, (0.0, 1.0)), (5, (0.0, 2.0))],
)
def test_support_ids(support_id: int, counts: tuple) -> None:
    assert evidence_from_event(_canvass(support_id)) == {"support": counts}


def test_a_full_conversation_adds_to_three_scores() -> None:
    evidence = evidence_from_event(_canvass(2, "no", "pledged"))

    assert evidence == {"support": (1.0, 0.0), "turnout": (0.0, 1.0), "donor": (1.0, 0.0)}


@pytest.mark.parametrize("contact", ["not_home", "refused", "moved", "wrong_address"])
def test_no_conversation_no_evidence(contact: str) -> None:
    assert evidence_from_event(_canvass(1, "yes", "pledged", contact=contact)) == {}


def test_maybe_and_unanswered_questions_add_nothing() -> None:
    assert evidence_from_event(_canvass(None, "maybe", None)) == {}


@pytest.mark.parametrize(
    ("event", "evidence"),
    [
        (
            {"type": "donation", "payload": {"amount": 25.0, "recurring": False}},
            {"donor": (0.5, 0.0)},
        ),
        (
            {"type": "donation", "payload": {"amount": 25.0, "recurring": True}},
            {"donor": (0.5, 0.0)},
        ),
        ({"type": "ad", "payload": {"action": "click"}}, {"engagement": (1.0, 0.0)}),
        ({"type": "ad", "payload": {"action": "impression"}}, {"engagement": (0.0, 1.0)}),
        ({"type": "retraction", "payload": {"retracts": "x", "reason": "y"}}, {}),
    ],
)
def test_donations_ads_and_retractions(event: dict, evidence: dict) -> None:
    assert evidence_from_event(event) == evidence


def test_household_share_is_weaker_and_in_exact_thousandths() -> None:
    shared = household_share(
        {"support": (2.0, 0.0), "turnout": (1.0, 1.0), "engagement": (1.0, 0.0)}
    )

    assert shared["support"] == (2.0 * HOUSEHOLD_WEIGHT["support"], 0.0)
    assert shared["support"][0] < 2.0
    assert "engagement" not in shared  # one member's clicks say nothing of the others'
    for successes, failures in shared.values():
        assert round(successes * 1000) == pytest.approx(successes * 1000, abs=1e-9)
        assert round(failures * 1000) == pytest.approx(failures * 1000, abs=1e-9)


def test_household_share_of_odd_weights_rounds_to_thousandths(monkeypatch) -> None:
    monkeypatch.setitem(HOUSEHOLD_WEIGHT, "donor", 1 / 3)

    assert household_share({"donor": (1.0, 2.0)}) == {"donor": (0.333, 0.667)}
