"""Logs for ops: one line an event, and library floods summarised."""

from __future__ import annotations

import doctest
import logging

from streams import logs
from streams.logs import RepeatFilter, kv


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.makeLogRecord({"name": name, "msg": msg, "args": args, "levelno": 40})


def test_a_repeated_library_message_shows_once_a_window_then_with_its_count() -> None:
    now = [0.0]
    quiet = RepeatFilter(window_s=30, clock=lambda: now[0])

    shown = [quiet.filter(record("aiokafka", "Unable connect to node %s", n)) for n in range(500)]
    now[0] = 31.0
    later = record("aiokafka", "Unable connect to node %s", 1)

    assert shown.count(True) == 1
    assert quiet.filter(later)
    assert later.getMessage() == "Unable connect to node 1 [and 499 more like it in 30 s]"


def test_different_messages_and_votescore_lines_are_never_held_back() -> None:
    quiet = RepeatFilter(window_s=30, clock=lambda: 0.0)

    assert quiet.filter(record("aiokafka", "Connection lost"))
    assert quiet.filter(record("aiokafka", "Metadata refresh failed"))
    assert all(quiet.filter(record("votescore.streams.app", "Slow batch")) for _ in range(5))


def test_key_value_pairs_quote_spaces_and_round_floats() -> None:
    assert kv(topic="canvass", elapsed_s=0.123456, reason="kafka unreachable", empty="") == (
        'topic=canvass elapsed_s=0.1235 reason="kafka unreachable" empty=""'
    )


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(logs).failed == 0
