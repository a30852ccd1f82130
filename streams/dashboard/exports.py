"""Target-list exports: refused below a minimum segment size, and every attempt audited.

The minimum size keeps the tool from serving microtargeting of a handful of people;
the audit (a Redis stream plus a log line) says who exported what, and when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from streams.config import Settings
from streams.dashboard import layout
from streams.dashboard.queries import select_targets
from streams.dashboard.segments import Segment, render_csv
from streams.logs import get_logger, kv

log = get_logger(__name__)

AUDIT_MAXLEN = 100_000  # audit entries kept; trimming is approximate, never below this


@dataclass(frozen=True)
class ExportPolicy:
    min_size: int = 50  # smallest segment that may leave the dashboard as a list
    max_rows: int = 100_000  # largest list one export may carry


@dataclass(frozen=True)
class ExportResult:
    segment: Segment
    rows: int
    refused: bool
    reason: str = ""
    csv: str = ""


async def export_segment(
    reader: aioredis.Redis,
    auditor: aioredis.Redis,
    settings: Settings,
    segment: Segment,
    operator: str,
    policy: ExportPolicy,
) -> ExportResult:
    """Select the segment, refuse it when too small, and audit the attempt either way."""
    targets = await select_targets(reader, settings, segment, policy.max_rows + 1)

    if len(targets) < policy.min_size:
        reason = f"segment has {len(targets)} voters; exports need at least {policy.min_size}"
        result = ExportResult(segment, len(targets), refused=True, reason=reason)
    elif len(targets) > policy.max_rows:
        reason = f"segment has over {policy.max_rows} voters; narrow it"
        result = ExportResult(segment, len(targets), refused=True, reason=reason)
    else:
        result = ExportResult(
            segment, len(targets), refused=False, csv=render_csv(segment, targets)
        )

    await audit(auditor, settings, operator, result)
    return result


async def audit(
    auditor: aioredis.Redis, settings: Settings, operator: str, result: ExportResult
) -> str:
    """Record one export attempt in the ``exports`` stream and the log; return the entry id."""
    outcome = "refused" if result.refused else "exported"
    record: dict[Any, Any] = {
        "operator": operator,
        "outcome": outcome,
        "rows": result.rows,
        "ts": int(time.time() * 1000),
        **{f"segment_{k}": v for k, v in result.segment.describe().items()},
    }
    entry_id = await auditor.xadd(
        layout.exports(settings), record, maxlen=AUDIT_MAXLEN, approximate=True
    )
    log.info("Target-list export %s. %s", outcome, kv(**record))
    return str(entry_id)
