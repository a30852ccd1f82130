"""HTTP ingest for field apps: events in over HTTPS, onto Kafka, answered once Kafka has them.

Phones and scripts that do not speak Kafka ``POST`` one event to ``/v1/events`` or a JSON
array of up to ``MAX_BATCH`` events to ``/v1/events/batch``, with
``Authorization: Bearer <token>``. Each event is validated with
:func:`streams.schemas.decode_event` (the worker's own rules), its ``source`` must be
the token's source, and it is produced to the topic for its type, keyed by
``voter_id``, with an idempotent producer and ``acks=all``. The answer comes after
every event of the request is acknowledged by Kafka; a batch is validated whole first,
so a bad event rejects the batch and nothing of it is produced.

Tokens: ``votescore tokens add SOURCE`` prints a new token once; only its SHA-256 is
kept, in ``<data_dir>/ingest-tokens.json`` (mode 0600). Tokens are 256 random bits, so
an unsalted fast hash is enough: there is nothing to brute-force. The file is re-read
when it changes, so a running service sees added and revoked tokens.

``GET /openapi.json`` serves the OpenAPI description built by :func:`openapi_spec`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter

from streams import health, metrics
from streams.config import Settings
from streams.errors import InvalidEvent, ServiceUnavailable, VotescoreError
from streams.kafka_admin import prepare_topics
from streams.logs import get_logger, kv
from streams.schemas import Event, decode_event
from streams.topics import TOPIC_FOR_TYPE

logger = get_logger(__name__)

MAX_BATCH = 500
TOKEN_FILE = "ingest-tokens.json"
SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

# Reason codes that mean the request body itself is unreadable, not one field.
_BAD_BODY = {"malformed_json", "not_utf8", "not_an_object", "not_an_array", "empty_batch"}


class IngestError(VotescoreError):
    """A request the ingest service refuses, with its HTTP status and reason code."""

    def __init__(self, status: int, reason: str, detail: str, **extra: Any):
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.body = {"error": reason, "detail": detail, **extra}


# --- tokens -----------------------------------------------------------------------------


class TokenStore:
    """Per-source API tokens, stored as SHA-256 hashes in one JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._hashes: dict[str, str] = {}
        self._loaded_mtime: float | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenStore:
        return cls(settings.data_dir / TOKEN_FILE)

    def add(self, source: str) -> str:
        """Create a token for ``source``; return it (the only time it exists in clear)."""
        _check_source(source)
        token = f"vs_{secrets.token_urlsafe(32)}"
        sources = self._read()
        sources.setdefault(source, []).append(_digest(token))
        self._write(sources)
        return token

    def revoke(self, source: str) -> int:
        """Remove every token of ``source``; return how many there were."""
        sources = self._read()
        removed = len(sources.pop(source, []))
        self._write(sources)
        return removed

    def sources(self) -> dict[str, int]:
        """Each source and how many tokens it has."""
        return {source: len(hashes) for source, hashes in sorted(self._read().items())}

    def source_for(self, token: str) -> str | None:
        """The source a token belongs to, or ``None`` if it is not a current token."""
        self._refresh()
        return self._hashes.get(_digest(token))

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._loaded_mtime:
            sources = self._read()
            self._hashes = {h: source for source, hashes in sources.items() for h in hashes}
            self._loaded_mtime = mtime

    def _read(self) -> dict[str, list[str]]:
        try:
            return orjson.loads(self.path.read_bytes())["sources"]
        except FileNotFoundError:
            return {}

    def _write(self, sources: dict[str, list[str]]) -> None:
        # Write then rename, so a running service never reads half a file.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps({"sources": sources}, option=orjson.OPT_INDENT_2))
        scratch.replace(self.path)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_source(source: str) -> None:
    if not re.match(SOURCE_PATTERN, source):
        raise VotescoreError(f"source {source!r} must match {SOURCE_PATTERN}")


# --- rate limits ------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per source: ``rate`` events a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, source: str, n: int) -> float:
        """Spend ``n`` events of ``source``'s allowance; return 0, or seconds to wait."""
        now = self.clock()
        level, then = self._buckets.get(source, (float(self.burst), now))
        level = min(self.burst, level + (now - then) * self.rate)
        if level < n:
            self._buckets[source] = (level, now)
            return (n - level) / self.rate
        self._buckets[source] = (level - n, now)
        return 0.0


# --- producing --------------------------------------------------------------------------


class Producer(Protocol):
    async def produce(self, records: Sequence[tuple[str, bytes, bytes]]) -> list[tuple[int, int]]:
        """Produce (topic, key, value) records; return (partition, offset) once acked."""
        ...


class KafkaProducer:
    """An idempotent ``acks=all`` aiokafka producer that waits for every record."""

    def __init__(self, settings: Settings, timeout_s: float = 15.0):
        self.timeout_s = timeout_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.app_id}-ingest",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(timeout_s * 1000),
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise ServiceUnavailable(f"Kafka did not answer: {exc}") from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def produce(self, records: Sequence[tuple[str, bytes, bytes]]) -> list[tuple[int, int]]:
        # Send everything first, then wait: the batch shares round trips to the broker.
        pending = [await self._producer.send(t, value=v, key=k) for t, k, v in records]
        done = await asyncio.wait_for(asyncio.gather(*pending), self.timeout_s)
        return [(meta.partition, meta.offset) for meta in done]


# --- the service ------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    event_id: str
    topic: str
    partition: int
    offset: int


class IngestService:
    """Authenticate, validate, rate-limit and produce; one instance per process."""

    def __init__(
        self, settings: Settings, tokens: TokenStore, producer: Producer, limiter: RateLimiter
    ):
        self.settings = settings
        self.tokens = tokens
        self.producer = producer
        self.limiter = limiter

    async def ingest(self, request: web.Request, raws: list[bytes], batch: bool) -> list[Accepted]:
        source = self.authenticate(request)
        events = [self.validate(raw, source, i if batch else None) for i, raw in enumerate(raws)]
        self.limit(source, len(events))

        records = [
            (self.settings.topic(TOPIC_FOR_TYPE[e.type]), e.voter_id.encode(), e.to_bytes())
            for e in events
        ]
        placed = await self._produce(records, source)
        metrics.INGEST_REQUESTS.labels(source=source, status="200").inc()
        return [
            Accepted(e.event_id, topic, p, o)
            for e, (topic, _, _), (p, o) in zip(events, records, placed, strict=True)
        ]

    def authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise IngestError(401, "missing_token", "send Authorization: Bearer <token>")
        source = self.tokens.source_for(token.strip()) if scheme.lower() == "bearer" else None
        if source is None:
            raise IngestError(401, "invalid_token", "the token is not a current ingest token")
        request["source"] = source  # for the refusal log and metrics, if one follows
        return source

    def validate(self, raw: bytes, source: str, index: int | None) -> Any:
        where = {} if index is None else {"index": index}
        try:
            event = decode_event(
                raw,
                max_bytes=self.settings.max_event_bytes,
                max_future_skew_s=self.settings.max_future_skew_s,
            )
        except InvalidEvent as exc:
            raise _rejection(exc, where) from exc
        if event.source != source:
            detail = f"source {event.source!r} does not match the token's source {source!r}"
            raise IngestError(403, "source_mismatch", detail, field="source", **where)
        return event

    def limit(self, source: str, n: int) -> None:
        wait = self.limiter.take(source, n)
        if wait:
            detail = f"over {self.limiter.rate:g} events/s; retry in {wait:.2f}s"
            raise IngestError(429, "rate_limited", detail, retry_after=round(wait, 3))

    async def _produce(self, records: list, source: str) -> list[tuple[int, int]]:
        try:
            placed = await self.producer.produce(records)
        except (KafkaError, TimeoutError) as exc:
            metrics.record_error("kafka")
            logger.error("Ingest could not produce. %s", kv(source=source, error=exc))
            detail = "Kafka did not acknowledge the events; retry (event ids make it safe)"
            raise IngestError(503, "kafka_unavailable", detail) from exc
        for topic, _, _ in records:
            metrics.INGEST_EVENTS.labels(source=source, topic=topic).inc()
        return placed


def _rejection(exc: InvalidEvent, where: dict[str, Any]) -> IngestError:
    status = 413 if exc.reason == "oversized" else 400 if exc.reason in _BAD_BODY else 422
    return IngestError(status, exc.reason, exc.detail, field=exc.field, **where)


# --- HTTP -------------------------------------------------------------------------------


def build_app(service: IngestService) -> web.Application:
    """The aiohttp application: the two ingest routes, health, metrics and the spec."""
    max_body = service.settings.max_event_bytes * MAX_BATCH
    app = web.Application(client_max_size=max_body, middlewares=[_errors])
    app["service"] = service

    app.router.add_post("/v1/events", _post_event)
    app.router.add_post("/v1/events/batch", _post_batch)
    app.router.add_get("/openapi.json", _get_spec)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", health.metrics_handler)
    return app


async def _post_event(request: web.Request) -> web.Response:
    service: IngestService = request.app["service"]
    accepted = await service.ingest(request, [await request.read()], batch=False)
    return _accepted(accepted)


async def _post_batch(request: web.Request) -> web.Response:
    service: IngestService = request.app["service"]
    service.authenticate(request)  # refuse strangers before parsing their body
    raws = _split_batch(await request.read())
    accepted = await service.ingest(request, raws, batch=True)
    return _accepted(accepted)


def _split_batch(body: bytes) -> list[bytes]:
    try:
        documents = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(400, "malformed_json", str(exc)) from exc
    if not isinstance(documents, list):
        raise IngestError(400, "not_an_array", "a batch is a JSON array of events")
    if not documents or len(documents) > MAX_BATCH:
        raise IngestError(
            400,
            "empty_batch" if not documents else "batch_too_large",
            f"a batch holds 1 to {MAX_BATCH} events, not {len(documents)}",
        )
    # Each event is checked on its own bytes, exactly as the worker would see it.
    return [orjson.dumps(document) for document in documents]


def _accepted(accepted: list[Accepted]) -> web.Response:
    body = {"accepted": len(accepted), "events": [a.__dict__ for a in accepted]}
    return web.json_response(body, dumps=lambda d: orjson.dumps(d).decode())


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except IngestError as exc:
        return _refuse(request, exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return _refuse(request, IngestError(413, "oversized", exc.text or "body too large"))


def _refuse(request: web.Request, exc: IngestError) -> web.Response:
    source = request.get("source", "-")
    metrics.INGEST_REQUESTS.labels(source=source, status=str(exc.status)).inc()
    # Refused requests are logged with the reason and field, never the event itself.
    logger.warning(
        "Ingest request refused. %s",
        kv(
            status=exc.status,
            reason=exc.reason,
            source=source,
            field=exc.body.get("field") or "-",
            index=exc.body.get("index", "-"),
            path=request.path,
            remote=request.remote,
        ),
    )
    headers = (
        {"Retry-After": str(max(1, round(exc.body["retry_after"])))} if exc.status == 429 else None
    )
    return web.json_response(exc.body, status=exc.status, headers=headers)


async def _get_spec(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


# --- OpenAPI ----------------------------------------------------------------------------


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the ingest API, built from the event models."""
    event_schema = TypeAdapter(Event).json_schema(ref_template="#/components/schemas/{model}")
    schemas = event_schema.pop("$defs")
    schemas["Event"] = event_schema
    for model in schemas.values():
        if "ts" in model.get("properties", {}):
            model["properties"]["ts"]["description"] = _TS_RULE
    schemas["Accepted"] = _ACCEPTED_SCHEMA
    schemas["Error"] = _ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": "votescore ingest", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
        "paths": {
            "/v1/events": _post_operation("Publish one event", {"$ref": _ref("Event")}),
            "/v1/events/batch": _post_operation(
                "Publish a batch of events (all or nothing)",
                {
                    "type": "array",
                    "items": {"$ref": _ref("Event")},
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                },
            ),
        },
    }


# JSON Schema cannot say "not in the future"; the rule is written out instead.
_TS_RULE = (
    "ISO-8601 time with a zone; more than the configured skew (300 s by default) "
    "ahead of the server's clock is refused as ts_in_future"
)


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _post_operation(summary: str, body_schema: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": _ref("Error")}}}}
    described = {
        "400": "unreadable body",
        "401": "missing or invalid token",
        "403": "event source does not match the token",
        "413": "event or body too large",
        "422": "an event fails validation",
        "429": "over the source's rate limit",
        "503": "Kafka did not acknowledge",
    }
    responses: dict[str, Any] = {
        "200": {
            "description": "every event is in Kafka",
            "content": {"application/json": {"schema": {"$ref": _ref("Accepted")}}},
        }
    }
    responses |= {code: {"description": text, **error} for code, text in described.items()}
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": responses,
        }
    }


_ACCEPTED_SCHEMA = {
    "type": "object",
    "required": ["accepted", "events"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 1},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event_id", "topic", "partition", "offset"],
                "properties": {
                    "event_id": {"type": "string"},
                    "topic": {"type": "string"},
                    "partition": {"type": "integer", "minimum": 0},
                    "offset": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "stable reason code"},
        "detail": {"type": "string"},
        "field": {"type": ["string", "null"], "description": "the offending field"},
        "index": {"type": "integer", "description": "position of the event in a batch"},
        "retry_after": {"type": "number"},
    },
}


# --- commands ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("ingest", help="serve the HTTP ingest API for field apps")
    serve.add_argument("--host", help="address to bind (default: the web host setting)")
    serve.add_argument("--port", type=int, help="port (default: the ingest port setting)")
    serve.add_argument("--rate", type=float, default=200.0, help="events/s per source")
    serve.add_argument("--burst", type=int, default=1000, help="burst allowance per source")
    serve.set_defaults(func=run_ingest)

    tokens = subparsers.add_parser("tokens", help="manage per-source ingest tokens")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("add", "print a new token for SOURCE (shown once)"),
        ("revoke", "remove every token of SOURCE"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("source", metavar="SOURCE")
    actions.add_parser("list", help="sources and their token counts")
    tokens.set_defaults(func=run_tokens)


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    store = TokenStore.for_settings(settings)
    if args.action == "add":
        print(store.add(args.source))
        logger.info("Ingest token added. %s", kv(source=args.source, file=store.path))
    elif args.action == "revoke":
        removed = store.revoke(args.source)
        logger.info("Ingest tokens revoked. %s", kv(source=args.source, removed=removed))
    else:
        for source, count in store.sources().items():
            print(f"{source}\t{count}")
    return 0


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.web_host
    port = args.port or settings.ingest_port
    asyncio.run(_serve_forever(settings, host, port, RateLimiter(args.rate, args.burst)))
    return 0


async def _serve_forever(settings: Settings, host: str, port: int, limiter: RateLimiter) -> None:
    await prepare_topics(settings)  # the broker creates no topic on first use
    producer = KafkaProducer(settings)
    await producer.start()
    service = IngestService(settings, TokenStore.for_settings(settings), producer, limiter)
    runner = await health.serve(build_app(service), host, port)
    logger.info("Ingest serving. %s", kv(host=host, port=port, tokens=service.tokens.path))
    stopping = asyncio.Event()
    # SIGTERM from a process manager stops the service cleanly, like Ctrl-C.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
    finally:
        logger.info("Ingest stopping. %s", kv(host=host, port=port))
        await runner.cleanup()
        await producer.stop()
