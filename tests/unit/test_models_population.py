"""Population models: labels, learning, calibration on a known case, snapshots, explanations."""

from __future__ import annotations

import math
import random

import pytest

from models.errors import SnapshotError
from models.population import SCORES, SNAPSHOT_MAGIC, PopulationModels, labels_from_event


def _canvass(support_id=None, will_vote=None, donate_ask=None, contact="contacted", **extra):
    payload = {"contact": contact, "support_id": support_id, "will_vote": will_vote}
    payload["donate_ask"] = donate_ask
    return {"type": "canvass", "event_id": extra.get("event_id", "c-1"), "payload": payload}


@pytest.mark.parametrize(
    ("event", "labels"),
    [
        (_canvass(1, "yes", "pledged"), {"support": 1, "turnout": 1, "donor": 1}),
        (_canvass(2), {"support": 1}),
        (_canvass(4, "no", "declined"), {"support": 0, "turnout": 0, "donor": 0}),
        (_canvass(5, "maybe"), {"support": 0}),
        (_canvass(1, "yes", contact="not_home"), {}),
        ({"type": "ad", "payload": {"action": "click"}}, {"engagement": 1}),
        ({"type": "ad", "payload": {"action": "impression"}}, {"engagement": 0}),
        ({"type": "ad", "payload": {"action": "view"}}, {"engagement": 0}),
        ({"type": "donation", "payload": {"amount": 50.0, "recurring": False}}, {}),
        ({"type": "retraction", "payload": {"retracts": "c-1", "reason": "typo"}}, {}),
    ],
)
def test_labels_from_event(event: dict, labels: dict) -> None:
    assert labels_from_event(event) == labels


def test_an_undecided_id_is_either_label_the_same_way_every_replay() -> None:
    sides = [labels_from_event(_canvass(3, event_id=f"c-{i}"))["support"] for i in range(400)]

    assert sides == [
        labels_from_event(_canvass(3, event_id=f"c-{i}"))["support"] for i in range(400)
    ]
    assert 150 < sum(sides) < 250  # both sides, about equally


def _known_stream(n: int, seed: int = 1):
    """Labels drawn from a known logistic model: p = sigmoid(1.5 x - 0.5)."""
    rng = random.Random(seed)
    for _ in range(n):
        x = rng.uniform(-2, 2)
        p = 1 / (1 + math.exp(-(1.5 * x - 0.5)))
        yield {"x": x}, {"support": int(rng.random() < p)}


def test_learns_a_known_logistic_model_calibrated() -> None:
    models = PopulationModels()
    for features, labels in _known_stream(20_000):
        models.learn_one(features, labels)

    for x in (-1.5, 0.0, 1.5):
        truth = 1 / (1 + math.exp(-(1.5 * x - 0.5)))
        assert models.predict_one({"x": x})["support"] == pytest.approx(truth, abs=0.04)


def test_version_and_labels_seen_count_learning() -> None:
    models = PopulationModels()
    models.learn_one({"x": 1.0}, {"support": 1, "turnout": 0})
    models.learn_one({"x": 1.0}, {})

    assert (models.version, models.labels_seen) == (1, 2)


def test_a_score_learns_only_from_its_own_labels() -> None:
    models = PopulationModels()
    before = models.predict_one({"x": 1.0})
    for _ in range(200):
        models.learn_one({"x": 1.0}, {"support": 1})
    after = models.predict_one({"x": 1.0})

    assert after["support"] > before["support"] + 0.2
    assert {s: after[s] for s in SCORES if s != "support"} == {
        s: before[s] for s in SCORES if s != "support"
    }


@pytest.mark.parametrize("settings", [{}, {"optimizer": "sgd", "calibrate": True, "l2": 1e-3}])
def test_snapshot_round_trip_predicts_and_learns_identically(settings: dict) -> None:
    models = PopulationModels(**settings)
    stream = list(_known_stream(2_000))
    for features, labels in stream[:1_000]:
        models.learn_one(features, labels)

    restored = PopulationModels.from_snapshot(models.to_snapshot())
    probes = [{"x": x / 10} for x in range(-20, 21)] + [{"never_seen": 1.0}]
    assert [restored.predict_one(p) for p in probes] == [models.predict_one(p) for p in probes]
    assert (restored.version, restored.labels_seen) == (models.version, models.labels_seen)

    for features, labels in stream[1_000:]:
        models.learn_one(features, labels)
        restored.learn_one(features, labels)
    assert [restored.predict_one(p) for p in probes] == [models.predict_one(p) for p in probes]


def test_snapshot_is_compact_and_versioned() -> None:
    models = PopulationModels()
    for i, (features, labels) in enumerate(_known_stream(500)):
        models.learn_one({**features, **{f"f{j}": 0.1 for j in range(i % 80)}}, labels)
    data = models.to_snapshot()

    assert data.startswith(SNAPSHOT_MAGIC) and data[len(SNAPSHOT_MAGIC)] == 1
    assert len(data) < 8_000


def test_unknown_snapshot_versions_and_garbage_are_refused() -> None:
    data = PopulationModels().to_snapshot()
    future = SNAPSHOT_MAGIC + bytes([99]) + data[len(SNAPSHOT_MAGIC) + 1 :]

    with pytest.raises(SnapshotError, match="format 99"):
        PopulationModels.from_snapshot(future)
    with pytest.raises(SnapshotError, match="magic"):
        PopulationModels.from_snapshot(b"pickle?")
    with pytest.raises(SnapshotError, match="does not decode"):
        PopulationModels.from_snapshot(SNAPSHOT_MAGIC + bytes([1]) + b"\x00garbage")


def test_explain_names_the_attribute_that_moved_the_score() -> None:
    models = PopulationModels()
    rng = random.Random(3)
    for _ in range(3_000):
        strong = rng.random() < 0.5
        label = int(rng.random() < (0.9 if strong else 0.2))
        models.learn_one(
            {"party=DEM": float(strong), "noise": rng.gauss(0, 0.1)}, {"support": label}
        )

    explanation = models.explain_one({"party=DEM": 1.0, "noise": 0.05}, "support", top=2)
    assert explanation[0][0] == "party=DEM" and explanation[0][1] > 10
    assert len(explanation) <= 2
