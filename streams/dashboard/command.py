"""``votescore dashboard``: serve the live dashboard on loopback."""

from __future__ import annotations

import argparse

from aiohttp import web

from streams.config import Settings
from streams.dashboard.app import DashboardConfig, build_app, log_started
from streams.dashboard.exports import ExportPolicy


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve the live dashboard (read-only Redis user)",
        description="Serve the live dashboard. It connects to Redis as a read-only user "
        "it creates with the admin URL (REDIS_URL) at start.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, help="port (default: settings.dashboard_port)")
    parser.add_argument(
        "--operator",
        default=None,
        help="who exports when a request names nobody; without it, every export must "
        "name its operator (the page's operator field, or HTTP basic auth)",
    )
    parser.add_argument(
        "--min-export-size",
        type=_at_least_one,
        default=ExportPolicy.min_size,
        help="refuse target-list exports of smaller segments (default %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = DashboardConfig(
        settings=settings,
        policy=ExportPolicy(min_size=args.min_export_size),
        operator=args.operator,
    )
    port = args.port or settings.dashboard_port
    log_started(config, args.host, port)
    web.run_app(build_app(config), host=args.host, port=port, print=None)
    return 0


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a segment size: it must be 1 or more")
    return value
