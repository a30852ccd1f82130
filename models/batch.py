"""Batch scoring: a chunk of voters at a time, with numpy, for the re-score sweep.

The sweep re-scores the whole voter file whenever the population models change. Done
one voter at a time (:func:`models.features.voter_features`, then
:meth:`~models.population.PopulationModels.predict_one`, then
:func:`models.scoring.score_voter`) it spends its time building feature dicts and
calling ``betaincinv`` once per quantile. Here each step runs over a whole chunk:

- :func:`batch_features` builds the same features as ``voter_features``, column by
  column, into one float matrix;
- :func:`batch_priors` takes the matrix product with each score's weights;
- :func:`batch_scores` computes every Beta posterior, value and 80% interval as arrays.

The results equal the one-at-a-time functions' up to float summation order (the last
bit of a log-odds); ``bench/throughput.py`` counts any score that differs.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaincinv

from models.features import (
    _CATEGORIES,
    _COMMERCIAL_CLIP,
    _NUMBERS,
    _VENDOR_SCORES,
    _number,
    _truthy,
)
from models.population import SCORES, PopulationModels
from models.scoring import _EPSILON, PRIOR_STRENGTH
from models.voters import COMMERCIAL_PREFIX, CURRENT_YEAR, ELECTION_CYCLES

Rows = Sequence[Mapping[str, Any]]
# The 80% credible interval of models.scoring; the equality check in the unit tests
# and bench/throughput.py catches any drift between the two.
_INTERVAL = (0.1, 0.9)


@dataclass(frozen=True)
class BatchScores:
    """One score of a chunk of voters: arrays of probability, value, low and high."""

    probability: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


def batch_features(rows: Rows) -> dict[str, np.ndarray]:
    """Feature name -> one float per voter, as :func:`voter_features` (absent is 0.0)."""
    features: dict[str, np.ndarray] = {}
    _add_categories(features, rows)
    _add_numbers(features, rows)
    _add_history(features, rows)
    _add_vendor_scores(features, rows)
    _add_commercial(features, rows)
    _add_interactions(features, rows)
    return features


def batch_priors(models: PopulationModels, rows: Rows) -> dict[str, np.ndarray]:
    """The population prior of every voter in ``rows``, by score (as ``predict_one``)."""
    features = batch_features(rows)
    priors = {}
    for score in SCORES:
        # The models' own state, read once per chunk: weights by feature name.
        model = models._models[score]
        weights = model._weights
        z = np.zeros(len(rows))
        for name, column in features.items():
            weight = weights.get(name, 0.0)
            if weight:
                z += weight * column
        z += model.intercept
        if models.calibrate:
            calibrator = models._calibrators[score]
            z = calibrator.a * z + calibrator.b
        priors[score] = _sigmoid(z)
    return priors


def batch_scores(
    priors: Mapping[str, np.ndarray],
    successes: Mapping[str, np.ndarray],
    failures: Mapping[str, np.ndarray],
) -> dict[str, BatchScores]:
    """Every score of a chunk of voters, as :func:`models.scoring.score_voter` gives it."""
    return {
        name: _score(name, mean, successes[name], failures[name]) for name, mean in priors.items()
    }


def _score(
    name: str, prior: np.ndarray, successes: np.ndarray, failures: np.ndarray
) -> BatchScores:
    strength = PRIOR_STRENGTH.get(name, 4.0)
    mean = np.clip(prior, _EPSILON, 1.0 - _EPSILON)
    alpha = mean * strength + np.maximum(successes, 0.0)
    beta = (1.0 - mean) * strength + np.maximum(failures, 0.0)
    probability = alpha / (alpha + beta)
    value = _points(probability)

    low = _points(betaincinv(alpha, beta, _INTERVAL[0]))
    high = _points(betaincinv(alpha, beta, _INTERVAL[1]))
    return BatchScores(probability, value, np.minimum(low, value), np.maximum(high, value))


def _points(probability: np.ndarray) -> np.ndarray:
    # np.round rounds halves to even, as Python's round() does in score_voter.
    return np.clip(np.round(100.0 * probability), 1, 100).astype(np.int64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # The two stable forms, as models.population._sigmoid picks them.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _column(rows: Rows, name: str) -> list[Any]:
    return [row.get(name) for row in rows]


def _numbers(rows: Rows, name: str) -> np.ndarray:
    """A column as floats, NaN where missing or unreadable (as ``_number`` reads it)."""
    values = _column(rows, name)
    try:
        numbers = np.array(values, dtype=float)
    except (TypeError, ValueError):  # text that is not a number: the careful way
        numbers = np.array([np.nan if (n := _number(v)) is None else n for v in values])
    return numbers


def _add_categories(features: dict[str, np.ndarray], rows: Rows) -> None:
    for name, allowed in _CATEGORIES.items():
        values = np.array(_column(rows, name), dtype=object)
        known = np.zeros(len(rows), dtype=bool)
        for value in allowed:
            matches = values == value
            if matches.any():
                features[f"{name}={value}"] = matches.astype(float)
                known |= matches
        if not known.all():
            features[f"{name}_missing"] = (~known).astype(float)


def _add_numbers(features: dict[str, np.ndarray], rows: Rows) -> None:
    for name, (centre, spread) in _NUMBERS.items():
        numbers = _numbers(rows, name)
        missing = np.isnan(numbers)
        features[f"{name}_missing"] = missing.astype(float)
        features[name] = (np.where(missing, centre, numbers) - centre) / spread

    homeowner = _column(rows, "homeowner")
    features["homeowner_missing"] = np.array([v is None for v in homeowner], dtype=float)
    features["homeowner"] = np.array([v is not None and _truthy(v) for v in homeowner], dtype=float)

    registered = _numbers(rows, "registration_year")
    years = np.where(np.isnan(registered), 8.0, CURRENT_YEAR - registered)
    features["years_registered"] = np.clip(years, 0.0, 60.0) / 10.0


def _add_history(features: dict[str, np.ndarray], rows: Rows) -> None:
    for kind in ("g", "p"):
        voted = np.zeros(len(rows))
        eligible = np.zeros(len(rows))
        for year in ELECTION_CYCLES:
            signs = np.array([_vote_sign(v) for v in _column(rows, f"voted_{kind}{year}")])
            features[f"voted_{kind}{year}"] = signs
            eligible += signs != 0.0
            voted += signs > 0.0
        features[f"{kind}_rate"] = (voted + 0.5) / (eligible + 1.0) - 0.5
        features[f"{kind}_eligible"] = eligible / len(ELECTION_CYCLES)


def _vote_sign(value: Any) -> float:
    """1.0 voted, -1.0 did not, 0.0 unknown (no feature in ``voter_features``)."""
    if value is None:
        return 0.0
    return 1.0 if _truthy(value) else -1.0


def _add_vendor_scores(features: dict[str, np.ndarray], rows: Rows) -> None:
    for name in _VENDOR_SCORES:
        scores = _numbers(rows, name)
        missing = np.isnan(scores)
        p = np.clip(np.where(missing, 50.0, scores), 0.5, 99.5) / 100.0
        features[f"{name}_missing"] = missing.astype(float)
        # math.log, not np.log: numpy's may differ in the last bit, and so a score.
        logit = np.array([math.log(odds) for odds in (p / (1.0 - p)).tolist()])
        features[name] = np.where(missing, 0.0, logit / 2.0)


def _add_commercial(features: dict[str, np.ndarray], rows: Rows) -> None:
    columns = set().union(*rows)  # rows of one file share their columns: cheap
    names = sorted(name for name in columns if name.startswith(COMMERCIAL_PREFIX))
    if not names:
        return
    numbers = _number_block(rows, names)
    clipped = np.where(
        np.isnan(numbers), 0.0, np.clip(numbers, -_COMMERCIAL_CLIP, _COMMERCIAL_CLIP)
    )
    for k, name in enumerate(names):
        features[name] = clipped[:, k]


def _number_block(rows: Rows, names: list[str]) -> np.ndarray:
    """Hundreds of numeric columns at once: one row of floats per voter, NaN where missing."""
    take = operator.itemgetter(*names)  # one C call per voter instead of one per cell
    try:
        cells = [take(row) for row in rows]
    except KeyError:  # a row without some column: the careful way
        cells = [[row.get(name) for name in names] for row in rows]
    try:
        block = np.array(cells, dtype=float)
    except (TypeError, ValueError):  # text that is not a number
        block = np.array(
            [[np.nan if (n := _number(v)) is None else n for v in _cells(c)] for c in cells]
        )
    return block.reshape(len(rows), len(names))


def _cells(cells: Any) -> tuple:
    # itemgetter of one name gives the value itself, of several a tuple.
    return cells if isinstance(cells, (tuple, list)) else (cells,)


def _add_interactions(features: dict[str, np.ndarray], rows: Rows) -> None:
    age = _numbers(rows, "age")  # NaN compares False: a missing age is in no group
    urbanicity = np.array(_column(rows, "urbanicity"), dtype=object)
    education = np.array(_column(rows, "education"), dtype=object)
    degree = (education == "bachelors") | (education == "graduate")
    features["young_urban"] = ((age < 30) & (urbanicity == "urban")).astype(float)
    features["under40_degree"] = ((age < 40) & degree).astype(float)
    features["senior_rural"] = ((age >= 65) & (urbanicity == "rural")).astype(float)

    strength = np.abs(features["vendor_partisan_score"])
    income = _numbers(rows, "income_band")
    features["partisan_strength"] = strength
    features["partisan_strength_rich"] = np.where(income >= 7, strength, 0.0)
