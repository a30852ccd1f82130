"""Batch scoring over a chunk gives every voter the scores one-at-a-time scoring gives."""

from __future__ import annotations

import random

import numpy as np

from models.batch import batch_features, batch_priors, batch_scores
from models.features import voter_features
from models.population import SCORES, PopulationModels
from models.scoring import score_voter
from models.voters import generate_voters, public_attributes


def trained_models(rows: list[dict]) -> PopulationModels:
    models = PopulationModels()
    rng = random.Random(3)
    for row in rows:
        models.learn_one(voter_features(row), {s: rng.randint(0, 1) for s in SCORES})
    return models


def voter_file_rows() -> list[dict]:
    rows = [public_attributes(r) for r in generate_voters(600, seed=11).to_pylist()]
    # Text where numbers belong, as a CSV voter file brings them.
    rows[0]["age"], rows[1]["homeowner"], rows[2]["voted_g2016"] = "abc", "yes", "f"
    rows[3]["commercial_001"], rows[4]["vendor_partisan_score"] = 99.0, "12.5"
    return rows


def test_batch_features_equal_voter_features():
    rows = voter_file_rows()
    features = batch_features(rows)

    for i, row in enumerate(rows):
        expected = voter_features(row)
        for name, column in features.items():
            assert column[i] == expected.get(name, 0.0), (i, name)
        assert set(expected) <= set(features)


def test_batch_scores_equal_score_voter():
    rows = voter_file_rows()
    models = trained_models(rows[:300])
    rng = np.random.default_rng(5)
    successes = {s: rng.choice([0.0, 0.0, 1.0, 2.3], size=len(rows)) for s in SCORES}
    failures = {s: rng.choice([0.0, 0.0, 1.0, 0.15], size=len(rows)) for s in SCORES}

    scores = batch_scores(batch_priors(models, rows), successes, failures)

    for i, row in enumerate(rows):
        totals = {s: (successes[s][i], failures[s][i]) for s in SCORES}
        expected = score_voter(models.predict_one(voter_features(row)), totals, {})
        for s in SCORES:
            got = (scores[s].value[i], scores[s].low[i], scores[s].high[i])
            assert got == (expected[s].value, expected[s].low, expected[s].high), (i, s)
            assert abs(scores[s].probability[i] - expected[s].probability) < 1e-12
