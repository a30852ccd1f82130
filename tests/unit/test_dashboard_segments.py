"""Segment filters and the CSV a target-list export carries."""

from __future__ import annotations

import pytest

from streams.dashboard.segments import InvalidSegment, Segment, Target, render_csv


def test_a_query_becomes_a_segment() -> None:
    query = {"score": "donor", "min": "40", "max": "90", "precinct": "P7", "min_evidence": "2"}

    segment = Segment.from_query(query)

    assert segment == Segment("donor", 40, 90, "P7", 2)


def test_an_empty_query_is_every_supporter_scored() -> None:
    assert Segment.from_query({}) == Segment("support", 1, 100, None, 0)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"score": "charisma"}, "charisma"),
        ({"min": "ten"}, "whole number"),
        ({"min": "80", "max": "20"}, "80-20"),
        ({"max": "101"}, "1-100"),
        ({"min_evidence": "-1"}, "negative"),
    ],
)
def test_a_bad_query_says_what_is_wrong(query: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidSegment, match=says):
        Segment.from_query(query)


def test_precinct_and_evidence_filters() -> None:
    segment = Segment(precinct="P1", min_evidence=2)

    assert segment.admits("P1", 2)
    assert not segment.admits("P2", 5)
    assert not segment.admits("P1", 1)
    assert Segment().admits(None, 0)


def test_csv_names_the_score_and_defuses_formulas() -> None:
    targets = [Target("V1", 88, 80, 95, 3, "P1"), Target("V2", 70, 61, 79, 0, "=HYPERLINK()")]

    text = render_csv(Segment(score="turnout"), targets)

    assert text.splitlines() == [
        "voter,precinct,turnout,low,high,evidence",
        "V1,P1,88,80,95,3",
        "V2,'=HYPERLINK(),70,61,79,0",
    ]


def test_the_audit_description_is_flat_text() -> None:
    described = Segment(score="donor", precinct=None).describe()

    assert described == {
        "score": "donor",
        "min_score": 1,
        "max_score": 100,
        "precinct": "",
        "min_evidence": 0,
    }
