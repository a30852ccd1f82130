"""Segments: the filter behind top-target lists and CSV exports, parsed from a query string."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from models.errors import VotescoreError
from streams.dashboard.layout import SCORES


class InvalidSegment(VotescoreError):
    """A segment filter that cannot be applied (unknown score, bad range, ...)."""


@dataclass(frozen=True)
class Segment:
    """Voters whose ``score`` lies in [min_score, max_score], optionally in one precinct,
    with at least ``min_evidence`` pieces of evidence behind that score."""

    score: str = "support"
    min_score: int = 1
    max_score: int = 100
    precinct: str | None = None
    min_evidence: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Segment:
        """Parse ``score``, ``min``, ``max``, ``precinct`` and ``min_evidence``."""
        score = query.get("score", "support")
        if score not in SCORES:
            raise InvalidSegment(f"score {score!r} is not one of {', '.join(SCORES)}")
        segment = cls(
            score=score,
            min_score=_int(query, "min", 1),
            max_score=_int(query, "max", 100),
            precinct=query.get("precinct") or None,
            min_evidence=_int(query, "min_evidence", 0),
        )
        segment.check()
        return segment

    def check(self) -> None:
        if not 1 <= self.min_score <= self.max_score <= 100:
            raise InvalidSegment(
                f"score range {self.min_score}-{self.max_score} must lie within 1-100, low first"
            )
        if self.min_evidence < 0:
            raise InvalidSegment("min_evidence must not be negative")

    def admits(self, precinct: str | None, evidence_count: int) -> bool:
        """Whether a voter already in the score range passes the other filters."""
        if self.precinct is not None and precinct != self.precinct:
            return False
        return evidence_count >= self.min_evidence

    def describe(self) -> dict[str, Any]:
        """The filter as flat text fields, for the audit record and the log."""
        return {k: "" if v is None else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Target:
    """One voter of a segment: the score that selected them, its interval and evidence."""

    voter: str
    score: int
    low: int
    high: int
    evidence: int
    precinct: str


CSV_COLUMNS = ("voter", "precinct", "score", "low", "high", "evidence")


def render_csv(segment: Segment, targets: Iterable[Target]) -> str:
    """The target list as CSV; the header names the score so a file explains itself."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["voter", "precinct", segment.score, "low", "high", "evidence"])
    for t in targets:
        writer.writerow([_cell(t.voter), _cell(t.precinct), t.score, t.low, t.high, t.evidence])
    return out.getvalue()


def _cell(text: str) -> str:
    # A cell starting like a formula would run in a spreadsheet: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidSegment(f"{name} must be a whole number, got {raw!r}") from exc
