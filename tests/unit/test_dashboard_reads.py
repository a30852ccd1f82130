"""How the dashboard turns the Redis layout into what a page shows (no Redis needed)."""

from __future__ import annotations

from streams.dashboard.queries import (
    change_record,
    current_scores,
    evidence_items,
    merge_histograms,
    precinct_row,
)


def test_precinct_histograms_add_up_bucket_by_bucket() -> None:
    hashes = {
        "P1": {"support:h0": "2", "support:h9": "1", "donor:h4": "3"},
        "P2": {"support:h0": "5", "turnout:h3": "1"},
    }

    merged = merge_histograms(hashes)

    assert merged["support"] == [7, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert merged["donor"][4] == 3 and sum(merged["donor"]) == 3
    assert merged["turnout"][3] == 1
    assert merged["engagement"] == [0] * 10


def test_a_precinct_row_shows_means() -> None:
    row = precinct_row("P1", {"support:count": "4", "support:sum": "250"})

    assert row == {
        "precinct": "P1",
        "voters": 4,
        "support": 62.5,
        "turnout": None,
        "donor": None,
        "engagement": None,
    }


def test_current_scores_carry_interval_and_evidence_count() -> None:
    current = {"support": "61", "support_low": "52", "support_high": "70", "support_n": "3"}

    scores = current_scores(current)

    assert scores["support"] == {"value": 61, "low": 52, "high": 70, "n": 3}
    assert scores["donor"] == {"value": None, "low": None, "high": None, "n": None}


def test_evidence_is_listed_oldest_first_and_unreadable_records_stay_visible() -> None:
    evidence = {
        "late": {"type": "donation", "ts": "2026-12-03T10:00:00Z"},
        "early": {"type": "canvass", "ts": "2026-12-01T10:00:00Z"},
        "odd": "not json",
    }

    items = evidence_items(evidence)

    assert [item["event"] for item in items] == ["odd", "early", "late"]
    assert items[0]["contribution"] == "not json"


def test_a_change_record_reads_the_feed_fields() -> None:
    fields = {"voter": "V1", "score": "support", "old": "", "new": "64", "cause": "c-1", "ts": "17"}

    record = change_record("17-0", fields)

    assert record == {
        "id": "17-0",
        "voter": "V1",
        "score": "support",
        "old": None,
        "new": 64,
        "cause": "c-1",
        "ts": 17.0,
    }
