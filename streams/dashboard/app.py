"""The dashboard's web application: static pages, JSON reads, the live feed and exports.

Pages are plain HTML and JavaScript served as files (no build step); charts are drawn
by plotly.js, served from the installed ``plotly`` Python package.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from streams.config import Settings
from streams.dashboard import access, queries
from streams.dashboard.exports import ExportPolicy, export_segment
from streams.dashboard.lag import LagPanel
from streams.dashboard.segments import InvalidSegment, Segment
from streams.errors import ServiceUnavailable
from streams.logs import get_logger, kv

log = get_logger(__name__)

STATIC = Path(__file__).parent / "static"
PAGE_FILES = ("app.js", "style.css")  # everything else in STATIC stays unserved
VOTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")  # as in streams.schemas
OPERATOR_HEADER = "X-Votescore-Operator"
# The feed waits this long for a change, then sends a keep-alive comment; kept under
# redis-py's 5 s socket timeout, which a longer blocking read would trip.
FEED_BLOCK_MS = 3_000
LAG_CACHE_S = 3.0  # many open pages share one Kafka query


@dataclass
class DashboardConfig:
    settings: Settings
    policy: ExportPolicy = field(default_factory=ExportPolicy)
    operator: str | None = None  # who exports when a request does not say
    top_limit: int = 50


CONFIG = web.AppKey("config", DashboardConfig)
READER = web.AppKey("reader", aioredis.Redis)
AUDITOR = web.AppKey("auditor", aioredis.Redis)
LAG = web.AppKey("lag", dict)
LAG_PANEL = web.AppKey("lag_panel", LagPanel)


def build_app(config: DashboardConfig) -> web.Application:
    app = web.Application()
    app[CONFIG] = config
    app[LAG] = {}
    app[LAG_PANEL] = LagPanel(config.settings)
    app.on_cleanup.append(_close_lag_panel)
    app.cleanup_ctx.append(_redis_clients)
    app.router.add_get("/", index)
    app.router.add_get("/static/plotly.min.js", plotly_js)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/api/targets", targets)
    app.router.add_get("/api/voter/{voter_id}", voter)
    app.router.add_get("/api/changes", recent_changes)
    app.router.add_get("/api/feed", feed)
    app.router.add_get("/api/lag", lag)
    app.router.add_get("/api/export", export)
    app.router.add_get("/healthz", healthz)
    return app


async def _redis_clients(app: web.Application) -> AsyncIterator[None]:
    """Create the read-only and audit users with the admin URL, then connect as them only."""
    settings = app[CONFIG].settings
    admin = aioredis.Redis.from_url(settings.redis_url)
    try:
        reader_user, reader_password = await access.create_reader(admin, settings)
        auditor_user, auditor_password = await access.create_auditor(admin, settings)
    except RedisError as exc:
        raise ServiceUnavailable(
            f"cannot create the dashboard's Redis users with REDIS_URL: {exc}"
        ) from exc
    finally:
        await admin.aclose()

    app[READER] = access.connect_as(settings.redis_url, reader_user, reader_password)
    app[AUDITOR] = access.connect_as(settings.redis_url, auditor_user, auditor_password)
    yield
    await app[READER].aclose()
    await app[AUDITOR].aclose()


async def _close_lag_panel(app: web.Application) -> None:
    await asyncio.to_thread(app[LAG_PANEL].close)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _segment(request: web.Request) -> Segment:
    try:
        return Segment.from_query(request.query)
    except InvalidSegment as exc:
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": str(exc)}).decode(), content_type="application/json"
        ) from exc


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def static_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in PAGE_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name)


async def plotly_js(request: web.Request) -> web.FileResponse:
    # The copy inside the installed plotly package: no CDN, no vendored file in the repo.
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return web.FileResponse(Path(str(path)), headers={"Cache-Control": "max-age=3600"})


async def healthz(request: web.Request) -> web.Response:
    await request.app[READER].ping()
    return _json({"ok": True})


async def summary(request: web.Request) -> web.Response:
    """Histograms, the precinct table and feed counters, in one round of reads."""
    settings = request.app[CONFIG].settings
    reader = request.app[READER]
    hashes = await queries.precinct_hashes(reader, settings)
    return _json(
        {
            "histograms": queries.merge_histograms(hashes),
            "precincts": [queries.precinct_row(p, h) for p, h in hashes.items()],
            "stats": await queries.feed_stats(reader, settings),
            "min_export_size": request.app[CONFIG].policy.min_size,
            "now": time.time(),
        }
    )


async def targets(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    segment = _segment(request)
    rows = await queries.select_targets(
        request.app[READER], config.settings, segment, config.top_limit
    )
    return _json({"segment": segment.describe(), "targets": [row.__dict__ for row in rows]})


async def voter(request: web.Request) -> web.Response:
    voter_id = request.match_info["voter_id"]
    if not VOTER_ID.match(voter_id):
        return _json({"error": "not a voter id"}, status=400)
    view = await queries.voter_view(request.app[READER], request.app[CONFIG].settings, voter_id)
    if view is None:
        return _json({"error": f"no scores for voter {voter_id}"}, status=404)
    return _json(view)


async def recent_changes(request: web.Request) -> web.Response:
    settings = request.app[CONFIG].settings
    return _json({"changes": await queries.recent_changes(request.app[READER], settings)})


async def feed(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``change`` event per entry of the change feed, as it lands."""
    settings, reader = request.app[CONFIG].settings, request.app[READER]
    # A reconnecting browser sends the last id it saw, so no change is skipped. "Now"
    # is pinned to an id before answering, so a change made right after is not missed.
    after = request.headers.get("Last-Event-ID") or request.query.get("after") or "$"
    if after == "$":
        after = await queries.last_change_id(reader, settings)

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        while True:
            changes = await queries.next_changes(reader, settings, after, FEED_BLOCK_MS)
            await response.write(_sse_lines(changes))
            if changes:
                after = changes[-1]["id"]
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away, or the server is stopping
    except RedisError as exc:
        log.warning("Live feed stopped on a Redis error. %s", kv(error=type(exc).__name__))
    return response


def _sse_lines(changes: list[dict[str, Any]]) -> bytes:
    if not changes:
        return b": keep-alive\n\n"
    return b"".join(
        b"id: %s\nevent: change\ndata: %s\n\n" % (c["id"].encode(), orjson.dumps(c))
        for c in changes
    )


async def lag(request: web.Request) -> web.Response:
    """Consumer lag rows, from a cache refreshed at most every few seconds."""
    cache = request.app[LAG]
    if time.monotonic() - cache.get("at", 0.0) > LAG_CACHE_S:
        try:
            cache["rows"] = await asyncio.to_thread(request.app[LAG_PANEL].rows)
            cache["error"] = None
        except Exception as exc:  # the panel shows Kafka trouble instead of failing the page
            cache["rows"], cache["error"] = [], f"{type(exc).__name__}: {exc}"
        cache["at"] = time.monotonic()
    return _json({"rows": cache["rows"], "error": cache["error"]})


async def export(request: web.Request) -> web.Response:
    """A segment's target list as CSV, or 403 with the reason when the guard refuses it."""
    config = request.app[CONFIG]
    segment = _segment(request)
    operator = operator_of(request.headers, config.operator)
    if operator is None:
        message = f"say who is exporting: an operator name ({OPERATOR_HEADER} or basic auth)"
        return _json({"error": message}, status=401)

    result = await export_segment(
        request.app[READER], request.app[AUDITOR], config.settings, segment, operator, config.policy
    )
    if result.refused:
        return _json({"error": result.reason, "rows": result.rows}, status=403)
    filename = f"targets-{segment.score}-{int(time.time())}.csv"
    return web.Response(
        text=result.csv,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def operator_of(headers: Any, default: str | None) -> str | None:
    """Who is exporting: the operator header, else the basic-auth user, else the default."""
    named = _printable(headers.get(OPERATOR_HEADER, ""))
    if named:
        return named
    user = _basic_auth_user(headers.get("Authorization", ""))
    return user or default


def _printable(name: str) -> str:
    # The name goes into the audit stream and the log: no control characters, bounded.
    return re.sub(r"[^\w.@ -]", "", name).strip()[:64]


def _basic_auth_user(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return _printable(decoded.partition(":")[0]) or None


def log_started(config: DashboardConfig, host: str, port: int) -> None:
    log.info(
        "Dashboard starting. %s",
        kv(
            url=f"http://{host}:{port}/",
            namespace=config.settings.redis_namespace,
            min_export_size=config.policy.min_size,
        ),
    )
