"""Structured logs: one event a line, ``key=value`` pairs after a short sentence.

Every logger sits under the ``votescore`` root (``logging.getLogger(__name__)`` in
``streams.*`` and ``models.*`` is re-rooted here), and handlers are set up once, at
the entry point. The libraries' own warnings (aiokafka, Faust, kafka-python) share
the format, and a message they repeat during an outage is shown once per window
with a count, instead of hundreds of times a second.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = "votescore"
FORMATTER = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``votescore`` root, named after the module."""
    return logging.getLogger(f"{ROOT}.{name}")


def kv(**fields: Any) -> str:
    """Render ``key=value`` pairs; values with spaces are quoted."""
    parts = []
    for key, value in fields.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        if " " in text or text == "":
            text = '"' + text.replace('"', "'") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


class RepeatFilter(logging.Filter):
    """Lets a library's repeated message through once per window, then counts the rest.

    A broker that is down makes every Kafka client retry in a tight loop, each retry
    a log line; ops need to know it is happening, not to read it ten thousand times.

    >>> quiet = RepeatFilter(window_s=30, clock=lambda: 0.0)
    >>> record = logging.makeLogRecord({"name": "aiokafka", "msg": "Unable to connect %s"})
    >>> quiet.filter(record), quiet.filter(record)
    (True, False)
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(ROOT):
            return True  # votescore's own lines are one per event already
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown_at, hidden = self.seen.get(key, (None, 0))
        if shown_at is not None and now - shown_at < self.window_s:
            self.seen[key] = (shown_at, hidden + 1)
            return False
        self.seen[key] = (now, 0)
        if hidden:
            record.msg = f"{record.msg} [and {hidden} more like it in {self.window_s:.0f} s]"
        return True


def quiet_library_handlers(logger: logging.Logger) -> None:
    """Give every handler of ``logger`` votescore's format and the repeat filter."""
    for handler in logger.handlers:
        handler.setFormatter(FORMATTER)
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())


def configure_logging(level: str = "INFO") -> None:
    """Send the votescore root to stderr as one line per event. Idempotent."""
    root = logging.getLogger(ROOT)
    if any(getattr(h, "_votescore", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTER)
    handler._votescore = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False

    # Libraries log through the root logger: warnings and errors only, same format.
    libraries = logging.getLogger()
    if not libraries.handlers:
        libraries.addHandler(logging.StreamHandler(sys.stderr))
        libraries.setLevel(logging.WARNING)
    quiet_library_handlers(libraries)
    # Faust's consumer group speaks its own assignment protocol, which kafka-python's
    # admin client cannot decode: it would warn on every lag reading.
    logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
