"""The ``votescore`` command.

Each subcommand lives in its own module, which exposes ``register(subparsers)``;
that function adds the parser and sets ``func`` to a callable taking
``(args, settings)`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streams.config import Settings
from streams.errors import VotescoreError
from streams.logs import configure_logging

# Modules that contribute subcommands, in the order `votescore --help` lists them.
COMMAND_MODULES = (
    "streams.commands",
    "streams.demo",
    "streams.lag",
    "streams.ingest",
    "streams.dashboard",
    "streams.replay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="votescore", description="Real-time voter scores from field evidence."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    try:
        return int(args.func(args, settings) or 0)
    except VotescoreError as exc:
        print(f"votescore: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
