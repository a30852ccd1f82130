"""The voter file: its schema, a synthetic generator with hidden truth, and file I/O.

A campaign's voter file holds one row per registered voter: geography, demographics,
party registration, vote history over several cycles, a household id, and a long tail
of modeled and commercial attributes. :data:`VOTER_COLUMNS` documents the fixed part;
any number of extra numeric columns named ``commercial_NNN`` may follow (the
generator writes 50 by default and supports 500 or more). Missing values are normal:
a null cell means "unknown", never an error.

The synthetic generator also writes four hidden truth columns, ``true_support``,
``true_turnout``, ``true_donor`` and ``true_engagement``: the probabilities the
simulator draws field answers from. :func:`public_attributes` strips them, so they
never reach scoring or Redis; only benchmarks read them.

How the hidden truth is built (log-odds, then the logistic function):

- every score has a household effect shared by all members (support, turnout and
  donor correlate within a household) and an individual effect no attribute explains;
- interactions a linear model cannot see from the raw columns alone: age by education
  for support, young by urban for turnout, partisanship strength by income for donor,
  and a product of two commercial columns for engagement;
- turnout is calibrated, per age group, to the reported voting rates of the U.S.
  Census Bureau's Current Population Survey, November 2020 Voting and Registration
  Supplement (Table 1, citizen voting-age population, percent reported voted):
  18-24: 51.4%, 25-34: 59.6%, 35-44: 66.5%, 45-64: 71.9%, 65 and over: 74.5%
  (66.8% overall). The truth is "votes in a presidential general election"; the
  simulated history is lower in midterms and far lower in primaries, as in the
  same supplement's midterm tables and in primary turnout generally.
- the age mix follows the adult citizen population in the same supplement, roughly
  18-24: 12%, 25-34: 17%, 35-44: 16%, 45-64: 33%, 65+: 22%.
- household sizes follow the Census Bureau's America's Families and Living
  Arrangements tables (one person 28%, two 35%, three 15%, four 13%, five+ 9%).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from models.errors import VoterFileError


@dataclass(frozen=True)
class Column:
    """One documented voter-file column."""

    name: str
    type: pa.DataType
    description: str
    required: bool = False


ELECTION_CYCLES = (2016, 2018, 2020, 2022, 2024)
CURRENT_YEAR = 2026
PARTIES = ("DEM", "REP", "IND", "LIB", "GRN", "UNR")
EDUCATION = ("hs_or_less", "some_college", "bachelors", "graduate")
RACES = ("white", "black", "hispanic", "asian", "other")
URBANICITY = ("urban", "suburban", "rural")
GENDERS = ("F", "M", "X")
TRUTH_COLUMNS = ("true_support", "true_turnout", "true_donor", "true_engagement")
COMMERCIAL_PREFIX = "commercial_"

VOTER_COLUMNS: tuple[Column, ...] = (
    Column("voter_id", pa.string(), "State voter id, e.g. V0000042", required=True),
    Column("household_id", pa.string(), "Household id shared by voters at one address"),
    Column("state", pa.string(), "Two-letter state code"),
    Column("county", pa.string(), "County name or FIPS code"),
    Column("precinct", pa.string(), "Precinct id, unique within the file"),
    Column("age", pa.int64(), "Age in years (18-110)"),
    Column("gender", pa.string(), "F, M or X"),
    Column("race", pa.string(), "Modeled race/ethnicity: " + ", ".join(RACES)),
    Column("education", pa.string(), "Modeled education: " + ", ".join(EDUCATION)),
    Column("income_band", pa.int64(), "Modeled household income band, 1 (lowest) to 9"),
    Column("homeowner", pa.bool_(), "Modeled homeowner flag"),
    Column("urbanicity", pa.string(), "urban, suburban or rural"),
    Column("household_size", pa.int64(), "Registered voters in the household"),
    Column("party", pa.string(), "Party registration: " + ", ".join(PARTIES)),
    Column("registration_year", pa.int64(), "Year of first registration at this address"),
    *(
        Column(f"voted_{kind}{year}", pa.bool_(), f"Voted in the {year} {label}")
        for year in ELECTION_CYCLES
        for kind, label in (("g", "general election"), ("p", "primary"))
    ),
    Column("vendor_partisan_score", pa.float64(), "Commercial partisanship model, 0-100"),
    Column("vendor_turnout_score", pa.float64(), "Commercial turnout model, 0-100"),
    Column("vendor_donor_score", pa.float64(), "Commercial donor model, 0-100"),
)
"""The documented columns. Only ``voter_id`` is required; extra columns are kept."""

COLUMN_TYPES: dict[str, pa.DataType] = {column.name: column.type for column in VOTER_COLUMNS}
_AGE_GROUPS = ((18, 24, 0.12, 0.514), (25, 34, 0.17, 0.596), (35, 44, 0.16, 0.665))
_AGE_GROUPS += ((45, 64, 0.33, 0.719), (65, 95, 0.22, 0.745))
_HOUSEHOLD_SIZES = (1, 2, 3, 4, 5)
_HOUSEHOLD_SHARES = (0.28, 0.35, 0.15, 0.13, 0.09)
_INFORMATIVE_COMMERCIAL = 6  # the first few commercial columns carry real signal


# --- the synthetic generator -------------------------------------------------------


def generate_voters(n: int, *, seed: int = 0, extra_columns: int = 50) -> pa.Table:
    """A synthetic voter file of ``n`` voters with hidden truth columns.

    Vectorised throughout: a million voters with 50 commercial columns take a few
    seconds on one core. The same seed gives the same file.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    people = _people(n, rng)
    truth = _hidden_truth(people, rng)
    columns = _public_columns(people, truth, rng)
    columns.update(_commercial_columns(people, extra_columns, rng))
    columns.update({name: pa.array(truth[name]) for name in TRUTH_COLUMNS})
    return pa.table(columns)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _people(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Households, geography and demographics, as numpy arrays (codes, not strings)."""
    sizes = rng.choice(_HOUSEHOLD_SIZES, p=_HOUSEHOLD_SHARES, size=n)
    household = np.repeat(np.arange(n), sizes)[:n]
    n_households = int(household[-1]) + 1
    n_precincts = max(1, n // 500)
    precinct_of_household = rng.integers(0, n_precincts, size=n_households)
    precinct = precinct_of_household[household]

    group = rng.choice(len(_AGE_GROUPS), p=[g[2] for g in _AGE_GROUPS], size=n)
    low = np.array([g[0] for g in _AGE_GROUPS])[group]
    high = np.array([g[1] for g in _AGE_GROUPS])[group]
    age = rng.integers(low, high + 1)
    return {
        "n": n,
        "household": household,
        "household_size": np.bincount(household)[household],
        "n_households": n_households,
        "precinct": precinct,
        "n_precincts": n_precincts,
        "urbanicity": (rng.random(n_precincts) * 3).astype(np.int64)[precinct],
        "age": age,
        "age_group": group,
        "education": rng.choice(4, p=(0.38, 0.27, 0.22, 0.13), size=n),
        "income_band": np.clip(rng.normal(5, 2, n_households).round(), 1, 9).astype(np.int64)[
            household
        ],
        "homeowner": (rng.random(n_households) < 0.65)[household],
        "commercial": rng.standard_normal((_INFORMATIVE_COMMERCIAL, n)),
    }


def _hidden_truth(people: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The four hidden propensities, plus the latents the public columns are drawn from."""
    n, household = people["n"], people["household"]

    def household_effect(sd: float) -> np.ndarray:
        return rng.normal(0.0, sd, people["n_households"])[household]

    def noise(sd: float) -> np.ndarray:
        return rng.normal(0.0, sd, n)

    precinct_lean = rng.normal(0.0, 0.5, people["n_precincts"])[people["precinct"]]
    partisan = precinct_lean + household_effect(0.8) + noise(0.6)
    support = _support_logit(people, partisan) + household_effect(0.5) + noise(0.5)
    turnout = _turnout_logit(people, partisan) + household_effect(0.7) + noise(0.6)
    donor = _donor_logit(people, partisan) + household_effect(0.5) + noise(0.5)
    engagement = _engagement_logit(people) + household_effect(0.4) + noise(0.4)

    turnout += _per_group_shift(turnout, people["age_group"], [g[3] for g in _AGE_GROUPS])
    return {
        "partisan": partisan,
        "turnout_logit": turnout,
        "true_support": _sigmoid(support + _shift_to_mean(support, 0.48)),
        "true_turnout": _sigmoid(turnout),
        "true_donor": _sigmoid(donor + _shift_to_mean(donor, 0.10)),
        "true_engagement": _sigmoid(engagement + _shift_to_mean(engagement, 0.06)),
    }


def _support_logit(people: dict[str, Any], partisan: np.ndarray) -> np.ndarray:
    age, education, urban, c = (people[k] for k in ("age", "education", "urbanicity", "commercial"))
    young_graduate = (education >= 2) & (age < 40)
    rural_senior = (urban == 2) & (age >= 65)
    return (
        1.1 * partisan + 0.6 * young_graduate - 0.5 * rural_senior + 0.35 * c[0] + 0.3 * c[1] * c[2]
    )


def _turnout_logit(people: dict[str, Any], partisan: np.ndarray) -> np.ndarray:
    age, education, urban = people["age"], people["education"], people["urbanicity"]
    young_urban = (age < 30) & (urban == 0)
    strength = np.minimum(np.abs(partisan), 2.0)
    return (
        0.35 * (education - 1.5)
        + 0.4 * people["homeowner"]
        + 0.25 * strength
        - 0.6 * young_urban
        + 0.01 * (age - 45)
    )


def _donor_logit(people: dict[str, Any], partisan: np.ndarray) -> np.ndarray:
    income, c = people["income_band"], people["commercial"]
    rich_partisan = np.abs(partisan) * (income >= 7)
    return 0.3 * (income - 5) + 0.5 * rich_partisan + 0.3 * (people["age"] >= 55) + 0.4 * c[3]


def _engagement_logit(people: dict[str, Any]) -> np.ndarray:
    c = people["commercial"]
    urban = people["urbanicity"] == 0
    return -0.025 * (people["age"] - 45) + 0.4 * urban + 0.35 * c[4] + 0.3 * c[4] * c[5]


def _shift_to_mean(logit: np.ndarray, target: float) -> float:
    """The constant that, added to ``logit``, makes the mean probability ``target``."""
    sample = logit[:: max(1, logit.size // 200_000)]
    low, high = -12.0, 12.0
    for _ in range(40):  # bisection: the mean probability grows with the shift
        middle = (low + high) / 2
        if _sigmoid(sample + middle).mean() < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _per_group_shift(logit: np.ndarray, group: np.ndarray, targets: list[float]) -> np.ndarray:
    shift = np.zeros_like(logit)
    for index, target in enumerate(targets):
        members = group == index
        if members.any():
            shift[members] = _shift_to_mean(logit[members], target)
    return shift


def _public_columns(
    people: dict[str, Any], truth: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, pa.Array]:
    """The columns a campaign would hold, each with a realistic share of nulls."""
    n = people["n"]

    def missing(share: float) -> np.ndarray:
        return rng.random(n) < share

    def labels(values: tuple[str, ...], codes: np.ndarray, share: float) -> pa.Array:
        return pa.array(np.array(values, dtype=object)[codes], mask=missing(share))

    columns: dict[str, pa.Array] = {
        "voter_id": pa.array(np.char.add("V", np.char.zfill(np.arange(n).astype(str), 7))),
        "household_id": pa.array(
            np.char.add("H", np.char.zfill(people["household"].astype(str), 7))
        ),
    }
    columns.update(_geography(people))
    columns.update(
        {
            "age": pa.array(people["age"]),
            "gender": labels(GENDERS, rng.choice(3, p=(0.52, 0.47, 0.01), size=n), 0.02),
            "race": labels(RACES, rng.choice(5, p=(0.62, 0.12, 0.14, 0.06, 0.06), size=n), 0.08),
            "education": labels(EDUCATION, people["education"], 0.15),
            "income_band": pa.array(people["income_band"], mask=missing(0.10)),
            "homeowner": pa.array(people["homeowner"], mask=missing(0.20)),
            "urbanicity": labels(URBANICITY, people["urbanicity"], 0.0),
            "household_size": pa.array(people["household_size"]),
            "party": labels(PARTIES, _party_codes(truth["partisan"], rng), 0.0),
        }
    )
    columns.update(_vote_history(people, truth["turnout_logit"], rng))
    columns.update(_vendor_scores(truth, rng, missing))
    return columns


def _geography(people: dict[str, Any]) -> dict[str, pa.Array]:
    states = np.array(["PA", "WI", "MI", "AZ", "GA", "NC", "NV"], dtype=object)
    precinct = people["precinct"]
    county = precinct % 60  # 60 counties spread over 7 states
    county_names = np.array([f"{states[k % 7]}-{k:03d}" for k in range(60)], dtype=object)
    precinct_names = pa.array(
        [f"{county_names[p % 60]}-P{p:05d}" for p in range(people["n_precincts"])]
    )
    return {
        "state": pa.array(states[county % 7]),
        "county": pa.array(county_names[county]),
        "precinct": precinct_names.take(pa.array(precinct)),
    }


def _party_codes(partisan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Registration is a coarse, noisy view of the partisan latent: strong partisans
    # register with a party, the middle splits among independents and minor parties.
    noisy = partisan + rng.normal(0.0, 0.4, partisan.size)
    middle = rng.choice([2, 3, 4, 5], p=(0.45, 0.08, 0.07, 0.40), size=partisan.size)
    return np.where(noisy > 0.45, 0, np.where(noisy < -0.45, 1, middle))


def _vote_history(
    people: dict[str, Any], turnout_logit: np.ndarray, rng: np.random.Generator
) -> dict[str, pa.Array]:
    """Voted flags per cycle: drawn from the turnout latent; null when too young to vote."""
    n, age = people["n"], people["age"]
    years_registered = rng.exponential(6.0, n).astype(np.int64)
    registration_year = np.minimum(CURRENT_YEAR - age + 18 + years_registered, CURRENT_YEAR)
    columns = {"registration_year": pa.array(registration_year)}
    midterm, primary = -0.9, -1.8  # midterms and primaries draw fewer voters
    for year in ELECTION_CYCLES:
        too_young = age - (CURRENT_YEAR - year) < 18
        registered = registration_year <= year
        offset = 0.0 if year % 4 == 0 else midterm
        for kind, extra in (("g", 0.0), ("p", primary)):
            voted = registered & (rng.random(n) < _sigmoid(turnout_logit + offset + extra))
            columns[f"voted_{kind}{year}"] = pa.array(voted, mask=too_young)
    return columns


def _vendor_scores(
    truth: dict[str, np.ndarray], rng: np.random.Generator, missing: Callable[[float], np.ndarray]
) -> dict[str, pa.Array]:
    # Vendors model the same behaviour from other data: informative, noisy, sometimes absent.
    def score(latent: np.ndarray, noise: float) -> pa.Array:
        value = 100 * _sigmoid(latent + rng.normal(0.0, noise, latent.size))
        return pa.array(value.round(1), mask=missing(0.05))

    def logit(p: np.ndarray) -> np.ndarray:
        return np.log(p / (1 - p))

    return {
        "vendor_partisan_score": score(truth["partisan"], 0.6),
        "vendor_turnout_score": score(truth["turnout_logit"], 0.9),
        "vendor_donor_score": score(logit(truth["true_donor"]) + 2.0, 0.9),
    }


def _commercial_columns(
    people: dict[str, Any], count: int, rng: np.random.Generator
) -> dict[str, pa.Array]:
    """``count`` numeric columns: the first few carry signal, the rest are noise."""
    n = people["n"]
    columns = {}
    for index in range(count):
        if index < _INFORMATIVE_COMMERCIAL:
            values = people["commercial"][index]
        else:
            values = rng.standard_normal(n, dtype=np.float32).astype(np.float64)
        mask = rng.random(n, dtype=np.float32) < 0.10
        columns[f"{COMMERCIAL_PREFIX}{index + 1:03d}"] = pa.array(values.round(3), mask=mask)
    return columns


# --- reading and writing voter files -----------------------------------------------

_NULL_TEXT = ["", "NA", "N/A", "NULL", "null", "None", "nan", "NaN"]
_TRUE_TEXT = ("true", "t", "yes", "y", "1")
_FALSE_TEXT = ("false", "f", "no", "n", "0")
_PATTERNS = {
    pa.int64(): r"^\s*[+-]?\d+\s*$",
    pa.float64(): r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$",
}
_RANGES = {
    "age": (18, 120),
    "income_band": (1, 9),
    "household_size": (1, 100),
    "registration_year": (1900, CURRENT_YEAR),
    "vendor_partisan_score": (0, 100),
    "vendor_turnout_score": (0, 100),
    "vendor_donor_score": (0, 100),
}


def write_voters(table: pa.Table, path: str | Path) -> None:
    """Write a voter file as CSV or Parquet, chosen by the file's suffix."""
    path = Path(path)
    if _format_of(path) == "csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path, compression="zstd")


def read_voters(path: str | Path) -> pa.Table:
    """Read and check a CSV or Parquet voter file.

    Known columns are converted to their documented types; ``commercial_*`` columns
    and other columns whose every value is numeric become float64, the rest stay text.
    A value that does not fit raises :class:`VoterFileError` naming its 1-based data
    row (the header is not counted) and its column. Empty cells are nulls, not errors.
    """
    path = Path(path)
    if not path.exists():
        raise VoterFileError(f"voter file {path} does not exist")
    raw = _read_csv_text(path) if _format_of(path) == "csv" else _read_parquet(path)
    table = pa.table({name: _convert_column(raw, name) for name in raw.column_names})
    _check_ids(table)
    _check_ranges(table)
    return table


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise VoterFileError(f"voter file {path.name} must end in .csv or .parquet")


def _read_csv_text(path: Path) -> pa.Table:
    # Read every column as text first, so that a bad value is found by us, with its row
    # and column, rather than by the CSV parser's type inference.
    names = _csv_header(path)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=_NULL_TEXT,
        strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise VoterFileError(f"{path.name} is not a readable CSV file: {exc}") from exc


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return next(csv.reader(file))
    except StopIteration as exc:
        raise VoterFileError(f"{path.name} is empty: it has no header row") from exc
    except UnicodeDecodeError as exc:
        raise VoterFileError(f"{path.name} is not UTF-8 text") from exc


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise VoterFileError(f"{path.name} is not a readable Parquet file: {exc}") from exc


def _target_type(name: str, column: pa.ChunkedArray) -> pa.DataType:
    if name in COLUMN_TYPES:
        return COLUMN_TYPES[name]
    if name.startswith(COMMERCIAL_PREFIX):
        return pa.float64()
    if pa.types.is_string(column.type) and _all_match(column, _PATTERNS[pa.float64()]):
        return pa.float64()
    return column.type


def _all_match(column: pa.ChunkedArray, pattern: str) -> bool:
    matches = pc.match_substring_regex(column, pattern)
    return bool(pc.all(pc.or_kleene(pc.is_null(column), matches)).as_py())


def _convert_column(raw: pa.Table, name: str) -> pa.ChunkedArray:
    column = raw.column(name)
    target = _target_type(name, column)
    if column.type == target:
        return column
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _convert_text(column, name, target)
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        row = _first_uncastable_row(column, target)
        raise _bad_value(name, row, column[row].as_py(), target) from exc


def _convert_text(column: pa.ChunkedArray, name: str, target: pa.DataType) -> pa.ChunkedArray:
    text = pc.utf8_trim_whitespace(column)
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(text)
        valid = pc.or_(pc.is_null(lowered), pc.is_in(lowered, pa.array(_TRUE_TEXT + _FALSE_TEXT)))
        _raise_on_invalid(column, valid, name, target)
        return _null_preserving_bool(lowered)
    if target in _PATTERNS:
        _raise_on_invalid(column, pc.match_substring_regex(text, _PATTERNS[target]), name, target)
        return pc.cast(text, target)
    return pc.cast(text, target)


def _null_preserving_bool(lowered: pa.ChunkedArray) -> pa.ChunkedArray:
    is_true = pc.is_in(lowered, pa.array(_TRUE_TEXT))
    return pc.if_else(pc.is_null(lowered), pa.scalar(None, pa.bool_()), is_true)


def _raise_on_invalid(
    column: pa.ChunkedArray, valid: pa.ChunkedArray, name: str, target: pa.DataType
) -> None:
    invalid = pc.invert(pc.fill_null(valid, True))
    if not pc.any(invalid).as_py():
        return
    row = pc.index(invalid, True).as_py()
    raise _bad_value(name, row, column[row].as_py(), target)


def _first_uncastable_row(column: pa.ChunkedArray, target: pa.DataType) -> int:
    for row, value in enumerate(column):
        try:
            pc.cast(pa.array([value.as_py()], type=column.type), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return row
    return 0


def _bad_value(name: str, row: int, value: Any, target: pa.DataType) -> VoterFileError:
    expected = {pa.int64(): "a whole number", pa.float64(): "a number", pa.bool_(): "true/false"}
    wanted = expected.get(target, str(target))
    return VoterFileError(
        f"row {row + 1}, column {name!r}: {value!r} is not {wanted}", row=row + 1, column=name
    )


def _check_ids(table: pa.Table) -> None:
    if "voter_id" not in table.column_names:
        raise VoterFileError("the voter file has no 'voter_id' column", column="voter_id")
    ids = table.column("voter_id")
    if ids.null_count:
        row = pc.index(pc.is_null(ids), True).as_py()
        raise VoterFileError(f"row {row + 1}: voter_id is empty", row=row + 1, column="voter_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        row = _first_duplicate(ids)
        message = f"row {row + 1}: voter_id {ids[row].as_py()!r} appears twice"
        raise VoterFileError(message, row=row + 1, column="voter_id")


def _first_duplicate(ids: pa.ChunkedArray) -> int:
    seen: set[str] = set()
    for row, voter_id in enumerate(ids.to_pylist()):
        if voter_id in seen:
            return row
        seen.add(voter_id)
    return 0


def _check_ranges(table: pa.Table) -> None:
    for name, (low, high) in _RANGES.items():
        if name not in table.column_names:
            continue
        column = table.column(name)
        outside = pc.or_(pc.less(column, low), pc.greater(column, high))
        if pc.any(outside).as_py():
            row = pc.index(outside, True).as_py()
            value = column[row].as_py()
            message = f"row {row + 1}, column {name!r}: {value!r} is outside {low}-{high}"
            raise VoterFileError(message, row=row + 1, column=name)


def public_attributes(row: dict[str, Any]) -> dict[str, Any]:
    """The voter-file row without the hidden truth, safe to store and to score."""
    return {name: value for name, value in row.items() if name not in TRUTH_COLUMNS}


# --- simulated field evidence ------------------------------------------------------

_EVENT_MIX = (("canvass", 0.45), ("ad", 0.45), ("donation", 0.07), ("retraction", 0.03))
_CONTACTS = (("contacted", 0.55), ("not_home", 0.30), ("refused", 0.09))
_CONTACTS += (("moved", 0.03), ("wrong_address", 0.03))
_PLATFORMS = ("facebook", "youtube", "ctv", "search")
_RECENT_EVENTS = 2_000


def simulate_events(voters_table: pa.Table, n: int, *, seed: int = 0) -> Iterator[dict]:
    """Yield ``n`` schema-v1 event dicts drawn from the voters' hidden truth.

    The answer models are the ones under which :mod:`models.evidence` is exact:

    - support: half of the conversations are *firm*: the voter gives two independent
      signals, each "support" with probability ``true_support``; both support is a
      1 (strong support), both oppose a 5, one of each a 3. The other half are
      *hesitant*: one signal, reported as 2 (lean support) or 4 (lean oppose).
    - will_vote is "yes" with probability ``true_turnout`` (10% answer "maybe");
      ``donate_ask`` (a quarter of contacts) is "pledged" with probability ``true_donor``.
    - an ad exposure yields one event at the furthest action it reached: a click with
      probability ``true_engagement``, else a view (25%) or just the impression.
    - donations come from voters chosen in proportion to ``true_donor`` (a biased
      sample, so they are evidence about that voter but never population labels).
    - retractions name a recent earlier event of the same voter.

    Events carry ``schema_version``, ``type``, ``event_id``, ``voter_id`` and
    ``payload``; the streaming side adds ``ts`` and ``source``.
    """
    rng = random.Random(seed)
    voter_ids = voters_table.column("voter_id").to_pylist()
    truth = {name: voters_table.column(name).to_pylist() for name in TRUTH_COLUMNS}
    donor_weights = np.cumsum(truth["true_donor"])
    recent: list[tuple[str, str]] = []
    retracted: set[str] = set()
    kinds, weights = zip(*_EVENT_MIX, strict=True)
    for index in range(n):
        event_id = f"sim{seed}-{index:08d}"
        kind = rng.choices(kinds, weights)[0]
        if kind == "retraction":
            event = _retraction(recent, retracted, rng)
            if event is not None:
                yield {"event_id": event_id, **event}
                continue
            kind = "canvass"  # nothing left to retract yet
        if kind == "donation":
            target = float(rng.random() * donor_weights[-1])
            voter = int(np.searchsorted(donor_weights, target))
        else:
            voter = rng.randrange(len(voter_ids))
        payload = _PAYLOADS[kind](truth, voter, rng)
        event = _event(kind, event_id, voter_ids[voter], payload)
        recent.append((event_id, voter_ids[voter]))
        if len(recent) > _RECENT_EVENTS:
            recent.pop(0)
        yield event


def _event(kind: str, event_id: str, voter_id: str, payload: dict) -> dict:
    return {
        "schema_version": 1,
        "type": kind,
        "event_id": event_id,
        "voter_id": voter_id,
        "payload": payload,
    }


def _retraction(
    recent: list[tuple[str, str]], retracted: set[str], rng: random.Random
) -> dict | None:
    candidates = [item for item in recent[-50:] if item[0] not in retracted]
    if not candidates:
        return None
    event_id, voter_id = rng.choice(candidates)
    retracted.add(event_id)
    payload = {"retracts": event_id, "reason": "entered in error"}
    return {"schema_version": 1, "type": "retraction", "voter_id": voter_id, "payload": payload}


def _canvass(truth: dict[str, list], voter: int, rng: random.Random) -> dict:
    contact = rng.choices([c[0] for c in _CONTACTS], [c[1] for c in _CONTACTS])[0]
    payload: dict[str, Any] = {"contact": contact, "support_id": None, "will_vote": None}
    payload["donate_ask"] = None
    if contact != "contacted":
        return payload
    support = truth["true_support"][voter]
    if rng.random() < 0.9:
        payload["support_id"] = _support_id(support, rng)
    if rng.random() < 0.8:
        turnout = truth["true_turnout"][voter]
        answer = "yes" if rng.random() < turnout else "no"
        payload["will_vote"] = "maybe" if rng.random() < 0.1 else answer
    if rng.random() < 0.25:
        pledged = rng.random() < truth["true_donor"][voter]
        payload["donate_ask"] = "pledged" if pledged else "declined"
    return payload


def _support_id(support: float, rng: random.Random) -> int:
    first = rng.random() < support
    if rng.random() < 0.5:  # hesitant: one signal
        return 2 if first else 4
    second = rng.random() < support
    if first and second:
        return 1
    return 5 if not (first or second) else 3


def _donation(truth: dict[str, list], voter: int, rng: random.Random) -> dict:
    amount = round(min(1_000_000.0, rng.lognormvariate(3.5, 1.1)), 2)
    return {"amount": max(amount, 1.0), "recurring": rng.random() < 0.2}


def _ad(truth: dict[str, list], voter: int, rng: random.Random) -> dict:
    if rng.random() < truth["true_engagement"][voter]:
        action = "click"
    else:
        action = "view" if rng.random() < 0.25 else "impression"
    platform = rng.choice(_PLATFORMS)
    return {"platform": platform, "campaign": f"{platform}-gotv", "action": action}


_PAYLOADS = {"canvass": _canvass, "donation": _donation, "ad": _ad}
