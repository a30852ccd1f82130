"""Per-voter evidence: the Beta pseudo-counts one event adds to one voter's scores.

Evidence is ``score -> (successes, failures)``. Under the simulator's answer models
(see :func:`models.voters.simulate_events`) these counts are the exact likelihoods:

- a support ID of 1 (strong support) is two "support" signals, 2 (lean support) one;
  3 (undecided) one of each; 4 one "oppose"; 5 two;
- will-vote "yes"/"no" is one turnout signal; "maybe" is none;
- a donate ask "pledged"/"declined" is one donor signal; a donation is half a donor
  success. A gift's own likelihood is ``p`` (givers are drawn in proportion to their
  propensity), but every voter who has *not* given is, over the campaign, evidence the
  other way that no event ever carries; counting gifts in full then lifts the givers
  without lowering anyone, and the donor scores drift above the truth. Measured in
  ``bench/quality.py`` terms (30k voters, 50k labels): a full count gave donor ECE
  0.027 and log loss 0.3022, half 0.023 and 0.3013 (also the best AUC), none 0.018
  and 0.3017. Recurring or not, the simulator gives a gift no more meaning;
- an ad click is one engagement success; an impression or view without a click one
  failure.

Knock attempts that reached nobody (not home, refused, moved, wrong address) carry no
evidence about the voter's own scores.

Every count is a multiple of 0.001: the streaming side stores them as integer
thousandths so that removing a retracted event's evidence is exact.
"""

from __future__ import annotations

from typing import Any

Evidence = dict[str, tuple[float, float]]

_SUPPORT = {1: (2.0, 0.0), 2: (1.0, 0.0), 3: (1.0, 1.0), 4: (0.0, 1.0), 5: (0.0, 2.0)}
_WILL_VOTE = {"yes": (1.0, 0.0), "no": (0.0, 1.0)}
_DONATE_ASK = {"pledged": (1.0, 0.0), "declined": (0.0, 1.0)}
_AD = {"click": (1.0, 0.0), "view": (0.0, 1.0), "impression": (0.0, 1.0)}

HOUSEHOLD_WEIGHT = {"support": 0.3, "turnout": 0.3, "donor": 0.0, "engagement": 0.0}
"""The share of one member's evidence that reaches each other member of the household.

Household members share politics and habits of voting, so what one says is weaker
evidence about the others. Measured (30k voters, 50k labels, log loss of live scores
for weights 0 / 0.15 / 0.3 / 0.5): support 0.5950 / 0.5938 / 0.5936 / 0.5942, turnout
0.5701 / 0.5700 / 0.5700 / 0.5701; donor got worse with every share (0.3022 at 0 to
0.3048 at 0.5), so donor evidence stays with the voter; an ad click says nothing
about anyone else's clicks.
"""


def evidence_from_event(event: dict[str, Any]) -> Evidence:
    """The pseudo-counts ``event`` adds to its own voter's scores (maybe none)."""
    payload = event.get("payload") or {}
    kind = event.get("type")
    if kind == "canvass":
        return _canvass_evidence(payload)
    if kind == "donation":
        return {"donor": (0.5, 0.0)}
    if kind == "ad" and payload.get("action") in _AD:
        return {"engagement": _AD[payload["action"]]}
    return {}


def _canvass_evidence(payload: dict[str, Any]) -> Evidence:
    if payload.get("contact") != "contacted":
        return {}
    evidence = {}
    if payload.get("support_id") in _SUPPORT:
        evidence["support"] = _SUPPORT[payload["support_id"]]
    if payload.get("will_vote") in _WILL_VOTE:
        evidence["turnout"] = _WILL_VOTE[payload["will_vote"]]
    if payload.get("donate_ask") in _DONATE_ASK:
        evidence["donor"] = _DONATE_ASK[payload["donate_ask"]]
    return evidence


def household_share(evidence: Evidence) -> Evidence:
    """The weaker evidence the same event adds to each other member of the household."""
    shared = {}
    for score, (successes, failures) in evidence.items():
        weight = HOUSEHOLD_WEIGHT.get(score, 0.0)
        if weight and (successes or failures):
            shared[score] = (_thousandths(successes * weight), _thousandths(failures * weight))
    return shared


def _thousandths(value: float) -> float:
    return round(value * 1000) / 1000
