"""Consumer lag: committed offset, end offset, lag and its rate, per group and partition.

The figures are read the way Kafka's own ``kafka-consumer-groups.sh --describe`` reads
them (committed offsets from the group coordinator, end offsets with ``ListOffsets``
latest, read-uncommitted), so the two agree on the same broker. A partition assigned to
a live member that has never committed shows no committed offset and no lag, as there.

``votescore lag`` prints one table; ``--watch`` refreshes it; ``--json`` prints rows for
scripts. Workers run a :class:`LagMonitor` thread that exports the same rows as metrics
and feeds the health checks.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from streams import metrics
from streams.config import Settings
from streams.errors import ServiceUnavailable
from streams.logs import get_logger, kv

logger = get_logger(__name__)

Key = tuple[str, str, int]


@dataclass(frozen=True)
class LagRow:
    """One partition as one consumer group sees it.

    ``rate`` is the change of lag in records per second between two readings:
    negative while the group catches up, positive while it falls behind, ``None``
    before there are two readings.
    """

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    rate: float | None = None

    @property
    def key(self) -> Key:
        return (self.group, self.topic, self.partition)

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(self.end - self.committed, 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lag": self.lag}


@dataclass(frozen=True)
class LagSnapshot:
    """Every row read at one moment (``taken_at`` on the monotonic clock)."""

    rows: list[LagRow]
    taken_at: float


def connect(settings: Settings) -> KafkaAdminClient:
    """An admin client for ``settings``' broker; ``ServiceUnavailable`` if none answers."""
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.app_id}-lag",
            request_timeout_ms=10_000,
        )
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap}: {exc}") from exc


def read_lag(admin: KafkaAdminClient, groups: Sequence[str]) -> LagSnapshot:
    """One reading of committed and end offsets for every partition of ``groups``."""
    taken_at = time.monotonic()
    committed = _committed_offsets(admin, groups)
    assigned = _assigned_partitions(admin, groups)

    partitions = {key: None for key in assigned} | committed
    ends = _end_offsets(admin, {TopicPartition(topic, p) for _, topic, p in partitions})

    rows = [
        LagRow(group, topic, p, offset, ends[TopicPartition(topic, p)])
        for (group, topic, p), offset in sorted(partitions.items())
        if TopicPartition(topic, p) in ends
    ]
    return LagSnapshot(rows, taken_at)


def with_rates(current: LagSnapshot, previous: LagSnapshot | None) -> LagSnapshot:
    """``current`` with each row's lag rate measured against ``previous``."""
    elapsed = current.taken_at - previous.taken_at if previous else 0.0
    if previous is None or elapsed <= 0:
        return current
    before = {row.key: row.lag for row in previous.rows}
    rows = [replace(row, rate=_rate(row.lag, before.get(row.key), elapsed)) for row in current.rows]
    return LagSnapshot(rows, current.taken_at)


def _rate(now: int | None, before: int | None, elapsed: float) -> float | None:
    return None if now is None or before is None else (now - before) / elapsed


def _committed_offsets(admin: KafkaAdminClient, groups: Sequence[str]) -> dict[Key, int | None]:
    committed: dict[Key, int | None] = {}
    for group in groups:
        for tp, meta in admin.list_group_offsets(group).get(group, {}).items():
            # -1 is the wire's "no committed offset".
            committed[(group, tp.topic, tp.partition)] = meta.offset if meta.offset >= 0 else None
    return committed


def _assigned_partitions(admin: KafkaAdminClient, groups: Sequence[str]) -> set[Key]:
    assigned: set[Key] = set()
    for group, description in admin.describe_groups(list(groups)).items():
        for member in description.get("members") or []:
            assignment = member.get("member_assignment") or {}
            for entry in assignment.get("assigned_partitions") or []:
                assigned |= {(group, entry["topic"], p) for p in entry["partitions"]}
    return assigned


def _end_offsets(admin: KafkaAdminClient, partitions: Iterable[TopicPartition]) -> dict:
    specs = {tp: OffsetSpec.LATEST for tp in partitions}
    if not specs:
        return {}
    return {tp: answer.offset for tp, answer in admin.list_partition_offsets(specs).items()}


def format_table(rows: Sequence[LagRow]) -> str:
    """Rows as an aligned text table; ``-`` where a figure is unknown."""
    header = ("GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "RATE/S")
    lines = [header] + [
        (
            row.group,
            row.topic,
            str(row.partition),
            _dash(row.committed),
            str(row.end),
            _dash(row.lag),
            "-" if row.rate is None else f"{row.rate:+.1f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


class LagMonitor:
    """A daemon thread that reads lag every ``interval_s`` and reports it.

    Each reading sets the lag metrics and is handed to ``on_reading`` (the health
    checks use it); a failed reading counts a Kafka error and is handed on as ``None``
    so that health can say the worker lost Kafka.
    """

    def __init__(
        self,
        settings: Settings,
        groups: Sequence[str],
        *,
        interval_s: float = 5.0,
        on_reading: Callable[[LagSnapshot | None], None] | None = None,
    ):
        self.settings = settings
        self.groups = list(groups)
        self.interval_s = interval_s
        self.on_reading = on_reading
        self.latest: LagSnapshot | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="votescore-lag", daemon=True)

    def start(self) -> LagMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 15)

    def _run(self) -> None:
        admin: KafkaAdminClient | None = None
        while not self._stop.is_set():
            try:
                admin = admin or connect(self.settings)
                self._report(with_rates(read_lag(admin, self.groups), self.latest))
            except (KafkaError, ServiceUnavailable) as exc:
                self._failed(admin, exc)
                admin = None  # reconnect on the next reading
            self._stop.wait(self.interval_s)
        if admin is not None:
            admin.close()

    def _report(self, snapshot: LagSnapshot) -> None:
        self.latest = snapshot
        for row in snapshot.rows:
            if row.lag is not None:
                metrics.set_lag(row.group, row.topic, row.partition, row.lag, row.rate)
        if self.on_reading:
            self.on_reading(snapshot)

    def _failed(self, admin: KafkaAdminClient | None, exc: Exception) -> None:
        metrics.record_error("kafka")
        logger.warning("Lag reading failed. %s", kv(error=type(exc).__name__, detail=exc))
        if admin is not None:
            admin.close()
        if self.on_reading:
            self.on_reading(None)


def start_lag_monitor(
    settings: Settings,
    groups: Sequence[str],
    *,
    interval_s: float = 5.0,
    on_reading: Callable[[LagSnapshot | None], None] | None = None,
) -> LagMonitor:
    """Start a :class:`LagMonitor` for ``groups``; call ``.stop()`` at shutdown."""
    return LagMonitor(settings, groups, interval_s=interval_s, on_reading=on_reading).start()


# --- the `votescore lag` command ------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lag",
        help="consumer lag per group, topic and partition",
        description="Committed offset, end offset, lag and lag rate per partition.",
    )
    parser.add_argument(
        "--group",
        action="append",
        dest="groups",
        metavar="GROUP",
        help="consumer group (repeatable; default: the app id)",
    )
    parser.add_argument("--all-groups", action="store_true", help="every group on the broker")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--watch", action="store_true", help="refresh until interrupted")
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between readings; the rate is measured over it (default 2)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    admin = connect(settings)
    try:
        groups = _groups(admin, args, settings)
        previous = read_lag(admin, groups)
        while True:
            time.sleep(args.interval)
            previous = with_rates(read_lag(admin, groups), previous)
            _print(previous, args)
            if not args.watch:
                return 0
    finally:
        admin.close()


def _groups(admin: KafkaAdminClient, args: argparse.Namespace, settings: Settings) -> list[str]:
    if args.all_groups:
        return sorted(group["group_id"] for group in admin.list_groups())
    return args.groups or [settings.app_id]


def _print(snapshot: LagSnapshot, args: argparse.Namespace) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps([row.to_dict() for row in snapshot.rows]).decode() + "\n")
    else:
        # Clear the screen between refreshes so the table stays in place.
        prefix = "\x1b[H\x1b[2J" if args.watch and sys.stdout.isatty() else ""
        sys.stdout.write(prefix + format_table(snapshot.rows) + "\n")
    sys.stdout.flush()
