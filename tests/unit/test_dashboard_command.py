"""`votescore dashboard` options."""

from __future__ import annotations

import pytest

from streams.cli import build_parser
from streams.dashboard.command import run


def test_defaults_serve_loopback_and_guard_exports_below_50() -> None:
    args = build_parser().parse_args(["dashboard"])

    assert args.func is run
    assert (args.host, args.port, args.operator, args.min_export_size) == (
        "127.0.0.1",
        None,
        None,
        50,
    )


def test_the_export_minimum_is_configurable() -> None:
    args = build_parser().parse_args(["dashboard", "--min-export-size", "200"])

    assert args.min_export_size == 200


@pytest.mark.parametrize("size", ["0", "-5", "many"])
def test_an_export_minimum_below_one_is_refused(size: str, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dashboard", "--min-export-size", size])

    assert "--min-export-size" in capsys.readouterr().err
