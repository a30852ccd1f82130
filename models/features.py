"""Voter features: one voter-file row becomes a River feature dict of floats.

Every feature is on a unit-ish scale, fixed in advance rather than learned, so that the
population models need no online scaler (one less moving part, and a feature means the
same thing on every worker and after every restore). Missing values are normal: a
missing category is its own indicator, a missing number becomes its population centre
plus an ``<name>_missing`` indicator. Besides the raw columns, a few interactions a
campaign analyst would add by hand (young and urban, young graduates, rural seniors,
partisan strength by income) let the linear population models see them.
"""

from __future__ import annotations

import math
from typing import Any

from models.voters import (
    COMMERCIAL_PREFIX,
    CURRENT_YEAR,
    EDUCATION,
    ELECTION_CYCLES,
    GENDERS,
    PARTIES,
    RACES,
    URBANICITY,
)

_CATEGORIES = {
    "gender": GENDERS,
    "race": RACES,
    "education": EDUCATION,
    "urbanicity": URBANICITY,
    "party": PARTIES,
}
# name -> (centre, spread): value becomes (value - centre) / spread
_NUMBERS = {
    "age": (50.0, 18.0),
    "income_band": (5.0, 2.0),
    "household_size": (2.5, 1.3),
}
_VENDOR_SCORES = ("vendor_partisan_score", "vendor_turnout_score", "vendor_donor_score")
_COMMERCIAL_CLIP = 5.0


def voter_features(attrs: dict[str, Any]) -> dict[str, float]:
    """The feature dict of one voter; ``attrs`` is a voter-file row (truth already removed)."""
    features: dict[str, float] = {}
    _add_categories(features, attrs)
    _add_numbers(features, attrs)
    _add_history(features, attrs)
    _add_vendor_scores(features, attrs)
    _add_commercial(features, attrs)
    _add_interactions(features, attrs)
    return features


def _number(value: Any) -> float | None:
    """A float, or None for missing or unreadable values (text from CSV or JSON too)."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _add_categories(features: dict[str, float], attrs: dict[str, Any]) -> None:
    for name, values in _CATEGORIES.items():
        value = attrs.get(name)
        if value in values:
            features[f"{name}={value}"] = 1.0
        else:
            features[f"{name}_missing"] = 1.0


def _add_numbers(features: dict[str, float], attrs: dict[str, Any]) -> None:
    for name, (centre, spread) in _NUMBERS.items():
        number = _number(attrs.get(name))
        if number is None:
            features[f"{name}_missing"] = 1.0
            number = centre
        features[name] = (number - centre) / spread

    homeowner = attrs.get("homeowner")
    if homeowner is None:
        features["homeowner_missing"] = 1.0
    else:
        features["homeowner"] = 1.0 if _truthy(homeowner) else 0.0

    registered = _number(attrs.get("registration_year"))
    years = CURRENT_YEAR - registered if registered is not None else 8.0
    features["years_registered"] = min(max(years, 0.0), 60.0) / 10.0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "t", "yes", "y", "1")
    return bool(value)


def _add_history(features: dict[str, float], attrs: dict[str, Any]) -> None:
    # Rates over the elections the voter could vote in: a young voter with a perfect
    # record of one election is not the same as a 40-year veteran, hence the counts.
    for kind in ("g", "p"):
        voted = eligible = 0
        for year in ELECTION_CYCLES:
            value = attrs.get(f"voted_{kind}{year}")
            if value is None:
                continue
            eligible += 1
            voted += _truthy(value)
            features[f"voted_{kind}{year}"] = 1.0 if _truthy(value) else -1.0
        features[f"{kind}_rate"] = (voted + 0.5) / (eligible + 1.0) - 0.5
        features[f"{kind}_eligible"] = eligible / len(ELECTION_CYCLES)


def _logit_of_score(score: float) -> float:
    p = min(max(score, 0.5), 99.5) / 100.0
    return math.log(p / (1.0 - p))


def _add_vendor_scores(features: dict[str, float], attrs: dict[str, Any]) -> None:
    for name in _VENDOR_SCORES:
        score = _number(attrs.get(name))
        if score is None:
            features[f"{name}_missing"] = 1.0
        else:
            features[name] = _logit_of_score(score) / 2.0


def _add_commercial(features: dict[str, float], attrs: dict[str, Any]) -> None:
    # The hot loop of scoring: hundreds of columns per voter, so floats take a fast path.
    clip = _COMMERCIAL_CLIP
    for name, value in attrs.items():
        if not name.startswith(COMMERCIAL_PREFIX):
            continue
        number = value if type(value) is float and value == value else _number(value)
        if number is not None:  # missing: the column's centre, 0, adds nothing
            features[name] = -clip if number < -clip else clip if number > clip else number


def _add_interactions(features: dict[str, float], attrs: dict[str, Any]) -> None:
    age = _number(attrs.get("age"))
    young = age is not None and age < 30
    under_40 = age is not None and age < 40
    senior = age is not None and age >= 65
    urban = attrs.get("urbanicity")
    degree = attrs.get("education") in ("bachelors", "graduate")
    features["young_urban"] = 1.0 if young and urban == "urban" else 0.0
    features["under40_degree"] = 1.0 if under_40 and degree else 0.0
    features["senior_rural"] = 1.0 if senior and urban == "rural" else 0.0

    partisan = features.get("vendor_partisan_score", 0.0)
    strength = abs(partisan)
    income = _number(attrs.get("income_band"))
    features["partisan_strength"] = strength
    features["partisan_strength_rich"] = strength if income is not None and income >= 7 else 0.0
