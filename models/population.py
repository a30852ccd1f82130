"""Population models: one online River logistic regression per score, calibrated.

Every labeled event teaches the population what voters like this one tend to do; the
population model's probability is then a voter's *prior*, which that voter's own
evidence updates (see :mod:`models.scoring`).

Choices, each measured by ``bench/quality.py --compare`` against the hidden truth
(30k voters, 50k labels; AUC of the population model, batch refit for reference):

- a River ``LogisticRegression`` on fixed-scale features (see :mod:`models.features`),
  learning one event at a time, no online scaler, so a feature keeps one meaning
  across workers and restores;
- AdaGrad with step 0.03: per-feature step sizes let rare features (a minor party, a
  missing-value flag) learn as fast as common ones. Plain SGD at 0.02 trailed the
  batch refit by 0.05-0.07 AUC and was badly calibrated (ECE 0.11 for support); at
  0.005 it trailed by about 0.02. AdaGrad 0.03 comes within 0.01 AUC of the refit;
- no calibrator by default: AdaGrad's raw outputs measured an ECE of 0.006-0.025,
  and an online Platt calibrator (kept as ``calibrate=True``; fitted prequentially,
  each label first scoring the model that has not yet seen it) did not improve them.
  It does rescue plain SGD (support ECE 0.11 to 0.04), which is why it exists.
- River's mini-batch methods are not used: the worker learns as each event arrives.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import orjson
from river import linear_model, optim

from models.errors import SnapshotError

SCORES = ("support", "turnout", "donor", "engagement")
SNAPSHOT_MAGIC = b"VSPM"
SNAPSHOT_VERSION = 1

_SUPPORT_LABELS = {1: 1, 2: 1, 4: 0, 5: 0}
_WILL_VOTE_LABELS = {"yes": 1, "no": 0}
_DONATE_LABELS = {"pledged": 1, "declined": 0}
_AD_LABELS = {"click": 1, "view": 0, "impression": 0}


_OPTIMIZERS = {
    "sgd": optim.SGD,
    # Steps shrink as 1/sqrt(t): big moves early, fine ones once the model has settled.
    "sgd_decay": lambda lr: optim.SGD(optim.schedulers.InverseScaling(lr, power=0.5)),
    "adagrad": optim.AdaGrad,
}


def labels_from_event(event: dict[str, Any]) -> dict[str, int]:
    """The unbiased 0/1 population labels an event carries, by score.

    Only answers drawn without regard to the answer itself are labels: canvass support
    IDs and will-vote answers, donate asks (pledged or declined), and ad exposures
    (clicked or not). A donation is not a donor label: only donors make them, so
    learning from them alone would teach the model that everyone gives.

    An undecided support ID (3) is one support signal and one oppose signal in the
    simulator's answer model; it becomes a label of either side, picked by a hash of
    the event id so that replays learn the same thing.
    """
    payload = event.get("payload") or {}
    kind = event.get("type")
    if kind == "canvass" and payload.get("contact") == "contacted":
        return _canvass_labels(event, payload)
    if kind == "ad" and payload.get("action") in _AD_LABELS:
        return {"engagement": _AD_LABELS[payload["action"]]}
    return {}


def _canvass_labels(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, int]:
    labels = {}
    support_id = payload.get("support_id")
    if support_id in _SUPPORT_LABELS:
        labels["support"] = _SUPPORT_LABELS[support_id]
    elif support_id == 3 and event.get("event_id"):
        labels["support"] = zlib.crc32(str(event["event_id"]).encode()) & 1
    if payload.get("will_vote") in _WILL_VOTE_LABELS:
        labels["turnout"] = _WILL_VOTE_LABELS[payload["will_vote"]]
    if payload.get("donate_ask") in _DONATE_LABELS:
        labels["donor"] = _DONATE_LABELS[payload["donate_ask"]]
    return labels


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class PlattCalibrator:
    """Online Platt scaling: ``p = sigmoid(a * z + b)`` over a model's raw log-odds ``z``."""

    def __init__(self, lr: float = 0.005, a: float = 1.0, b: float = 0.0) -> None:
        self.lr = lr
        self.a = a
        self.b = b

    def learn_one(self, z: float, label: int) -> None:
        error = self.predict_one(z) - label
        self.a -= self.lr * error * z
        self.b -= self.lr * error

    def predict_one(self, z: float) -> float:
        return _sigmoid(self.a * z + self.b)


class PopulationModels:
    """One online, calibrated model per score in :data:`SCORES`.

    Parameters
    ----------
    optimizer
        ``"adagrad"`` or ``"sgd"``, for the weights of the logistic regressions.
    lr
        The optimizer's step size.
    intercept_lr
        The intercept's (constant) step size.
    l2
        L2 penalty of the logistic regressions.
    calibrate
        Whether to put an online Platt calibrator on each model's output.
    """

    def __init__(
        self,
        *,
        optimizer: str = "adagrad",
        lr: float = 0.03,
        intercept_lr: float = 0.02,
        l2: float = 0.0,
        calibrate: bool = False,
    ) -> None:
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, not {optimizer!r}")
        self.optimizer = optimizer
        self.lr = lr
        self.intercept_lr = intercept_lr
        self.l2 = l2
        self.calibrate = calibrate
        self.version = 0
        self.labels_seen = 0
        self._models = {score: self._new_model() for score in SCORES}
        self._calibrators = {score: PlattCalibrator() for score in SCORES}

    def _new_model(self) -> linear_model.LogisticRegression:
        return linear_model.LogisticRegression(
            optimizer=_OPTIMIZERS[self.optimizer](self.lr),
            l2=self.l2,
            intercept_lr=self.intercept_lr,
        )

    def learn_one(self, features: dict[str, float], labels: dict[str, int]) -> None:
        """Learn from one event's labels (score -> 0/1); scores without a label are untouched."""
        for score, label in labels.items():
            model = self._models[score]
            if self.calibrate:  # prequential: the calibrator sees the not-yet-taught model
                self._calibrators[score].learn_one(model._raw_dot_one(features), label)
            model.learn_one(features, bool(label))
            self.labels_seen += 1
        if labels:
            self.version += 1

    def predict_one(self, features: dict[str, float]) -> dict[str, float]:
        """Calibrated probabilities, by score."""
        return {score: self._probability(score, features) for score in SCORES}

    def _probability(self, score: str, features: dict[str, float], shift: float = 0.0) -> float:
        z = self._models[score]._raw_dot_one(features) - shift
        if self.calibrate:
            return self._calibrators[score].predict_one(z)
        return _sigmoid(z)

    def explain_one(
        self, features: dict[str, float], score: str, top: int = 5
    ) -> list[tuple[str, float]]:
        """The features that moved ``score`` most, with their effect in points (1-100 scale).

        A feature's effect is how far the probability would fall (or rise) were its
        contribution to the log-odds removed, times 100.
        """
        weights = self._models[score]._weights
        probability = self._probability(score, features)
        effects = []
        for name, value in features.items():
            contribution = weights.get(name, 0.0) * value
            if contribution:
                without = self._probability(score, features, shift=contribution)
                effects.append((name, round(100.0 * (probability - without), 2)))
        effects.sort(key=lambda item: abs(item[1]), reverse=True)
        return effects[:top]

    def to_snapshot(self) -> bytes:
        """A compact, versioned snapshot: magic, format version, zlib-compressed JSON."""
        state = {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "intercept_lr": self.intercept_lr,
            "l2": self.l2,
            "calibrate": self.calibrate,
            "version": self.version,
            "labels_seen": self.labels_seen,
            "scores": {score: self._score_state(score) for score in SCORES},
        }
        body = zlib.compress(orjson.dumps(state), 6)
        return SNAPSHOT_MAGIC + bytes([SNAPSHOT_VERSION]) + body

    def _score_state(self, score: str) -> dict[str, Any]:
        model, calibrator = self._models[score], self._calibrators[score]
        return {
            "weights": dict(model._weights.to_dict()),
            "intercept": model.intercept,
            "iterations": model.optimizer.n_iterations,
            "g2": dict(getattr(model.optimizer, "g2", {})),
            "platt": [calibrator.a, calibrator.b],
        }

    @classmethod
    def from_snapshot(cls, data: bytes) -> PopulationModels:
        """Rebuild models from :meth:`to_snapshot` bytes; they predict identically."""
        state = _decode_snapshot(data)
        settings = ("optimizer", "lr", "intercept_lr", "l2", "calibrate")
        models = cls(**{name: state[name] for name in settings})
        models.version = state["version"]
        models.labels_seen = state["labels_seen"]
        for score in SCORES:
            models._restore_score(score, state["scores"][score])
        return models

    def _restore_score(self, score: str, state: dict[str, Any]) -> None:
        model = self._models[score]
        for name, weight in state["weights"].items():
            model._weights[name] = weight
        model.intercept = state["intercept"]
        model.optimizer.n_iterations = state["iterations"]
        if hasattr(model.optimizer, "g2"):  # AdaGrad's per-feature step sizes
            model.optimizer.g2.update(state["g2"])
        self._calibrators[score].a, self._calibrators[score].b = state["platt"]


def _decode_snapshot(data: bytes) -> dict[str, Any]:
    if not data.startswith(SNAPSHOT_MAGIC) or len(data) < len(SNAPSHOT_MAGIC) + 1:
        raise SnapshotError("not a votescore population snapshot (bad magic bytes)")
    version = data[len(SNAPSHOT_MAGIC)]
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"population snapshot format {version} is not supported (this build reads "
            f"{SNAPSHOT_VERSION})"
        )
    try:
        state = orjson.loads(zlib.decompress(data[len(SNAPSHOT_MAGIC) + 1 :]))
        _ = [state["scores"][score]["weights"] for score in SCORES]
    except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise SnapshotError(f"population snapshot does not decode: {exc}") from exc
    return state
