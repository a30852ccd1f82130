"""What the dashboard reads from Redis, each read a small async function over the reader client.

Every function takes the read-only client; none of them writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from streams.config import Settings
from streams.dashboard import layout
from streams.dashboard.explain import moved_by
from streams.dashboard.layout import BUCKETS, SCORES
from streams.dashboard.segments import Segment, Target

MAX_PAGE = 5_000  # voters fetched per round trip at most while walking a sorted set


async def precinct_hashes(reader: aioredis.Redis, settings: Settings) -> dict[str, dict[str, str]]:
    """Every precinct's aggregate hash, by precinct id."""
    # The reader decodes replies, so every key and value below is text.
    members: Any = await reader.smembers(layout.precincts(settings))
    ids: list[str] = sorted(members)
    async with reader.pipeline(transaction=False) as pipe:
        for precinct_id in ids:
            pipe.hgetall(layout.precinct(settings, precinct_id))
        hashes = await pipe.execute()
    return dict(zip(ids, hashes, strict=True))


def merge_histograms(hashes: Mapping[str, Mapping[str, str]]) -> dict[str, list[int]]:
    """Sum the precincts' 10-point bucket counts into one histogram per score."""
    merged = {score: [0] * BUCKETS for score in SCORES}
    for aggregate in hashes.values():
        for score in SCORES:
            for bucket in range(BUCKETS):
                merged[score][bucket] += int(aggregate.get(f"{score}:h{bucket}", 0))
    return merged


def precinct_row(precinct_id: str, aggregate: Mapping[str, str]) -> dict[str, Any]:
    """One line of the precinct table: voters scored and the mean of each score."""
    row: dict[str, Any] = {"precinct": precinct_id, "voters": 0}
    for score in SCORES:
        count = int(aggregate.get(f"{score}:count", 0))
        total = float(aggregate.get(f"{score}:sum", 0))
        row["voters"] = max(row["voters"], count)
        row[score] = round(total / count, 1) if count else None
    return row


async def select_targets(
    reader: aioredis.Redis, settings: Settings, segment: Segment, limit: int
) -> list[Target]:
    """The segment's voters, highest score first, at most ``limit`` of them.

    Walks the score's sorted set in pages and checks precinct and evidence count on
    each voter's hash, so a narrow precinct filter costs a walk over the score range.
    Pages start at ``limit`` (enough when nothing else filters) and double from there.
    """
    targets: list[Target] = []
    offset, page_size = 0, max(limit, 50)
    while len(targets) < limit:
        page: list[Any] = await reader.zrevrangebyscore(
            layout.scores(settings, segment.score),
            segment.max_score,
            segment.min_score,
            start=offset,
            num=page_size,
            withscores=True,
        )
        if not page:
            break
        targets.extend(await _admitted(reader, settings, segment, page))
        offset += len(page)
        page_size = min(page_size * 2, MAX_PAGE)
    return targets[:limit]


async def _admitted(
    reader: aioredis.Redis, settings: Settings, segment: Segment, page: list[tuple[str, float]]
) -> list[Target]:
    s = segment.score
    async with reader.pipeline(transaction=False) as pipe:
        for voter_id, _ in page:
            pipe.hmget(
                layout.voter(settings, voter_id), "precinct", f"{s}_low", f"{s}_high", f"{s}_n"
            )
        fields = await pipe.execute()

    admitted = []
    for (voter_id, value), (precinct, low, high, n) in zip(page, fields, strict=True):
        evidence = int(n or 0)
        if segment.admits(precinct, evidence):
            score = int(value)
            admitted.append(
                Target(
                    voter_id, score, int(low or score), int(high or score), evidence, precinct or ""
                )
            )
    return admitted


async def voter_view(
    reader: aioredis.Redis, settings: Settings, voter_id: str
) -> dict[str, Any] | None:
    """Everything the voter lookup shows, or None for a voter with no scores."""
    async with reader.pipeline(transaction=False) as pipe:
        pipe.hgetall(layout.voter(settings, voter_id))
        pipe.lrange(layout.history(settings, voter_id), 0, 199)
        pipe.hgetall(layout.evidence(settings, voter_id))
        current, history, evidence = await pipe.execute()
    if not current:
        return None
    records = {event_id: _json(raw) for event_id, raw in evidence.items()}
    return {
        "voter": voter_id,
        "precinct": current.get("precinct"),
        "updated_at": _number(current.get("updated_at")),
        "model_version": current.get("model_version"),
        "last_event": current.get("last_event"),
        "scores": current_scores(current),
        # Stored newest first; a chart reads oldest first.
        "history": [_json(item) for item in reversed(history)],
        "evidence": evidence_items(records),
        "moved_by": moved_by(current, records),
        "explain": _json(current["explain"]) if current.get("explain") else None,
    }


def current_scores(current: Mapping[str, str]) -> dict[str, dict[str, int | None]]:
    """Each score with its 80% interval and evidence count, from a ``voter:{V}`` hash."""
    return {
        score: {
            "value": _int_or_none(current.get(score)),
            "low": _int_or_none(current.get(f"{score}_low")),
            "high": _int_or_none(current.get(f"{score}_high")),
            "n": _int_or_none(current.get(f"{score}_n")),
        }
        for score in SCORES
    }


def evidence_items(records: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Decoded ``evidence:{V}`` records as a list of {event, contribution}, oldest first."""
    items = [{"event": event_id, "contribution": record} for event_id, record in records.items()]
    return sorted(items, key=lambda item: str(_field(item["contribution"], "ts") or ""))


async def recent_changes(
    reader: aioredis.Redis, settings: Settings, count: int = 50
) -> list[dict[str, Any]]:
    """The newest ``count`` entries of the change feed, oldest first."""
    entries: Any = await reader.xrevrange(layout.changes(settings), count=count)
    return [change_record(entry_id, fields) for entry_id, fields in reversed(entries)]


async def last_change_id(reader: aioredis.Redis, settings: Settings) -> str:
    """The id of the newest change, or ``0-0`` before the first: where "from now" starts."""
    newest: Any = await reader.xrevrange(layout.changes(settings), count=1)
    return str(newest[0][0]) if newest else "0-0"


async def next_changes(
    reader: aioredis.Redis, settings: Settings, after: str, block_ms: int
) -> list[dict[str, Any]]:
    """Change-feed entries after ``after`` (an entry id or ``$``), waiting up to ``block_ms``."""
    reply: Any = await reader.xread({layout.changes(settings): after}, count=200, block=block_ms)
    if not reply:
        return []
    _, entries = reply[0]
    return [change_record(entry_id, fields) for entry_id, fields in entries]


def change_record(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": entry_id,
        "voter": fields.get("voter"),
        "score": fields.get("score"),
        "old": _int_or_none(fields.get("old")),
        "new": _int_or_none(fields.get("new")),
        "cause": fields.get("cause"),
        "ts": _number(fields.get("ts")),
    }


async def feed_stats(reader: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Counters for the throughput panel: change-feed entries ever added, and the model."""
    model = await reader.hgetall(layout.model(settings))
    try:
        info = await reader.xinfo_stream(layout.changes(settings))
    except aioredis.ResponseError:  # no change yet: the stream does not exist
        info = {}
    return {
        "changes_added": int(info.get("entries-added", 0)),
        "changes_kept": int(info.get("length", 0)),
        "last_change": info.get("last-generated-id"),
        "model": model,
    }


def _json(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # shown as text rather than hidden: an operator can still read it


def _field(document: Any, name: str) -> Any:
    return document.get(name) if isinstance(document, dict) else None


def _int_or_none(raw: str | None) -> int | None:
    return None if raw is None or raw == "" else int(float(raw))


def _number(raw: str | None) -> float | str | None:
    # Times are epoch numbers by contract; anything else is passed on as text.
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return raw
