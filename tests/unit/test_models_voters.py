"""The voter file: generator, schema, CSV/Parquet loading with clear errors, simulation."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.errors import VoterFileError
from models.voters import (
    TRUTH_COLUMNS,
    VOTER_COLUMNS,
    generate_voters,
    public_attributes,
    read_voters,
    simulate_events,
    write_voters,
)
from streams.schemas import new_event


@pytest.fixture(scope="module")
def voters() -> pa.Table:
    return generate_voters(3_000, seed=11, extra_columns=10)


def test_generated_file_has_every_documented_column_and_the_truth(voters: pa.Table) -> None:
    names = set(voters.column_names)

    assert {column.name for column in VOTER_COLUMNS} <= names
    assert set(TRUTH_COLUMNS) <= names
    assert voters.column("voter_id")[42].as_py() == "V0000042"
    for truth in TRUTH_COLUMNS:
        values = voters.column(truth).to_numpy()
        assert values.min() > 0.0 and values.max() < 1.0


def test_generator_is_deterministic_and_scales_to_many_columns() -> None:
    assert generate_voters(200, seed=3).equals(generate_voters(200, seed=3))
    assert not generate_voters(200, seed=3).equals(generate_voters(200, seed=4))

    wide = generate_voters(100, seed=1, extra_columns=500)
    assert wide.num_columns >= 500 and "commercial_500" in wide.column_names


def test_turnout_by_age_group_follows_the_census_figures() -> None:
    table = generate_voters(60_000, seed=5, extra_columns=0)
    age = table.column("age").to_numpy()
    turnout = table.column("true_turnout").to_numpy()

    for low, high, expected in ((18, 24, 0.514), (25, 34, 0.596), (45, 64, 0.719), (65, 95, 0.745)):
        members = (age >= low) & (age <= high)
        assert turnout[members].mean() == pytest.approx(expected, abs=0.01)


def test_household_members_share_support_more_than_strangers(voters: pa.Table) -> None:
    support = voters.column("true_support").to_numpy()
    households = defaultdict(list)
    for position, household in enumerate(voters.column("household_id").to_pylist()):
        households[household].append(position)
    pairs = [(m[0], m[1]) for m in households.values() if len(m) >= 2]
    first, second = (np.array(side) for side in zip(*pairs, strict=True))

    within = np.corrcoef(support[first], support[second])[0, 1]
    strangers = np.corrcoef(support[first], support[np.roll(second, 7)])[0, 1]
    assert within > 0.3 and abs(strangers) < 0.1


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_keeps_every_value_and_null(voters: pa.Table, tmp_path: Path, suffix: str):
    path = tmp_path / f"voters{suffix}"
    write_voters(voters, path)

    loaded = read_voters(path)
    assert loaded.equals(voters)
    assert loaded.column("education").null_count > 0  # missing values are not errors


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        ("voter_id,age\nV1,40\nV2,41\nV3,forty\n", 3, "age"),
        ("voter_id,voted_g2020\nV1,true\nV2,maybe\n", 2, "voted_g2020"),
        ("voter_id,commercial_001\nV1,0.5\nV2,1e3\nV3,high\n", 3, "commercial_001"),
        ("voter_id,age\nV1,40\nV2,7\n", 2, "age"),
        ("voter_id,age\nV1,40\nV1,41\n", 2, "voter_id"),
        ("voter_id,age\nV1,40\n,41\n", 2, "voter_id"),
    ],
)
def test_bad_csv_values_name_their_row_and_column(tmp_path: Path, text: str, row: int, column):
    with pytest.raises(VoterFileError) as caught:
        read_voters(_csv(tmp_path, text))

    assert (caught.value.row, caught.value.column) == (row, column)
    assert f"row {row}" in str(caught.value)


def test_missing_values_and_unknown_columns_load(tmp_path: Path) -> None:
    text = "voter_id,age,homeowner,precinct_note,score_x\nV1,,NA,corner,1.5\nV2,33,yes,,\n"
    table = read_voters(_csv(tmp_path, text))

    assert table.column("age").to_pylist() == [None, 33]
    assert table.column("homeowner").to_pylist() == [None, True]
    assert table.column("precinct_note").to_pylist() == ["corner", None]
    assert table.column("score_x").type == pa.float64()


def test_bad_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(VoterFileError, match="voter_id"):
        read_voters(_csv(tmp_path, "age\n40\n"))
    with pytest.raises(VoterFileError, match="does not exist"):
        read_voters(tmp_path / "absent.csv")
    with pytest.raises(VoterFileError, match=r"\.csv or \.parquet"):
        read_voters(_csv(tmp_path, "x").rename(tmp_path / "voters.xlsx"))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(VoterFileError, match="not a readable Parquet"):
        read_voters(garbage)


def test_parquet_with_text_in_a_number_column_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "voters.parquet"
    pq.write_table(pa.table({"voter_id": ["V1", "V2"], "income_band": ["3", "rich"]}), path)

    with pytest.raises(VoterFileError) as caught:
        read_voters(path)
    assert (caught.value.row, caught.value.column) == (2, "income_band")


def test_public_attributes_strip_the_hidden_truth(voters: pa.Table) -> None:
    row = voters.slice(0, 1).to_pylist()[0]
    public = public_attributes(row)

    assert not set(TRUTH_COLUMNS) & set(public)
    assert public["voter_id"] == row["voter_id"]


def test_simulated_events_are_valid_schema_v1_events(voters: pa.Table) -> None:
    events = list(simulate_events(voters, 3_000, seed=2))

    for event in events:
        new_event(event["type"], event["voter_id"], event["payload"], event_id=event["event_id"])
    kinds = Counter(event["type"] for event in events)
    assert set(kinds) == {"canvass", "ad", "donation", "retraction"}
    assert len(events) == 3_000


def test_retractions_name_an_earlier_event_of_the_same_voter(voters: pa.Table) -> None:
    seen: dict[str, str] = {}
    retractions = 0
    for event in simulate_events(voters, 3_000, seed=2):
        if event["type"] == "retraction":
            assert seen[event["payload"]["retracts"]] == event["voter_id"]
            retractions += 1
        seen[event["event_id"]] = event["voter_id"]
    assert retractions > 30


def test_simulated_answers_follow_the_hidden_truth(voters: pa.Table) -> None:
    truth = dict(
        zip(voters.column("voter_id").to_pylist(), voters.column("true_turnout").to_pylist())
    )
    answers = [
        (truth[e["voter_id"]], e["payload"]["will_vote"] == "yes")
        for e in simulate_events(voters, 20_000, seed=4)
        if e["type"] == "canvass" and e["payload"]["will_vote"] in ("yes", "no")
    ]
    expected, said_yes = (np.array(side) for side in zip(*answers, strict=True))

    assert said_yes.mean() == pytest.approx(expected.mean(), abs=0.03)


def test_empty_and_ragged_csv_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VoterFileError, match="no header"):
        read_voters(_csv(tmp_path, ""))
    with pytest.raises(VoterFileError, match="not a readable CSV"):
        read_voters(_csv(tmp_path, "voter_id,age\nV1,40,extra\n"))
