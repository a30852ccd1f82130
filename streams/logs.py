"""Structured logs: one event a line, ``key=value`` pairs after a short sentence.

Every logger sits under the ``votescore`` root (``logging.getLogger(__name__)`` in
``streams.*`` and ``models.*`` is re-rooted here), and handlers are set up once, at
the entry point.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

ROOT = "votescore"


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


def configure_logging(level: str = "INFO") -> None:
    """Send the votescore root to stderr as one line per event. Idempotent."""
    root = logging.getLogger(ROOT)
    if any(getattr(h, "_votescore", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    handler._votescore = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # Faust's consumer group speaks its own assignment protocol, which kafka-python's
    # admin client cannot decode: it would warn on every lag reading.
    logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
