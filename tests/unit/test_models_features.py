"""Voter features: every row, however incomplete, becomes finite floats."""

from __future__ import annotations

import math

from models.features import voter_features
from models.voters import generate_voters, public_attributes


def test_an_empty_row_gives_missing_indicators_not_errors() -> None:
    features = voter_features({"voter_id": "V1"})

    assert features["age_missing"] == 1.0 and features["party_missing"] == 1.0
    assert all(isinstance(v, float) and math.isfinite(v) for v in features.values())


def test_text_values_from_csv_or_json_read_as_numbers_and_flags() -> None:
    typed = voter_features({"age": 30, "homeowner": True, "voted_g2024": True, "party": "DEM"})
    text = voter_features({"age": "30", "homeowner": "true", "voted_g2024": "yes", "party": "DEM"})

    assert text == typed
    assert typed["party=DEM"] == 1.0 and "party=REP" not in typed


def test_unreadable_numbers_and_unknown_categories_count_as_missing() -> None:
    features = voter_features({"age": "old", "party": "WHIG", "commercial_001": "n/a"})

    assert features["age_missing"] == 1.0 and features["age"] == 0.0
    assert features["party_missing"] == 1.0
    assert "commercial_001" not in features


def test_extreme_commercial_values_are_clipped() -> None:
    assert voter_features({"commercial_007": 1e9})["commercial_007"] == 5.0


def test_vote_history_rates_count_only_elections_the_voter_could_vote_in() -> None:
    veteran = voter_features({f"voted_g{y}": True for y in (2016, 2018, 2020, 2022, 2024)})
    newcomer = voter_features({"voted_g2024": True})

    assert veteran["g_rate"] > newcomer["g_rate"] > 0
    assert newcomer["g_eligible"] == 0.2


def test_every_generated_voter_has_finite_features() -> None:
    for row in generate_voters(300, seed=2).to_pylist():
        features = voter_features(public_attributes(row))
        assert all(math.isfinite(value) for value in features.values())
