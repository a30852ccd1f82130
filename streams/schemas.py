"""Event schemas, version 1: what field apps publish and what the worker accepts.

Every event is one JSON object, keyed in Kafka by its ``voter_id``::

    {"schema_version": 1, "type": "canvass", "event_id": "c-8f2a", "voter_id": "V0000042",
     "ts": "2026-12-03T18:04:05Z", "source": "north-canvass",
     "payload": {"contact": "contacted", "support_id": 2, "will_vote": "yes",
                 "donate_ask": null}}

Types and their payloads:

- ``canvass``: ``contact`` (contacted, not_home, refused, moved, wrong_address),
  ``support_id`` 1-5 or null (1 strong support ... 5 strong oppose), ``will_vote``
  (yes, no, maybe or null), ``donate_ask`` (pledged, declined or null).
- ``donation``: ``amount`` in dollars (> 0, at most 1,000,000), ``recurring``.
- ``ad``: ``platform``, ``campaign``, ``action`` (impression, view, click).
- ``retraction``: ``retracts`` (an earlier ``event_id`` of the same voter), ``reason``.

Validation is strict: a string where a number belongs is an error, not a guess.
``decode_event`` turns any failure into :class:`~streams.errors.InvalidEvent` with a
stable reason code, so that the worker can dead-letter it and keep going.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from streams.errors import InvalidEvent

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 16_384
MAX_FUTURE_SKEW_S = 300.0

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CanvassPayload(_Strict):
    contact: Literal["contacted", "not_home", "refused", "moved", "wrong_address"]
    support_id: Annotated[int, Field(ge=1, le=5)] | None = None
    will_vote: Literal["yes", "no", "maybe"] | None = None
    donate_ask: Literal["pledged", "declined"] | None = None


class DonationPayload(_Strict):
    amount: Annotated[float, Field(gt=0, le=1_000_000)]
    recurring: bool = False


class AdPayload(_Strict):
    platform: Label
    campaign: Label
    action: Literal["impression", "view", "click"]


class RetractionPayload(_Strict):
    retracts: Identifier
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class _Envelope(_Strict):
    schema_version: Literal[1]
    event_id: Identifier
    voter_id: Identifier
    # Field apps send ISO-8601 text; the one lax field, so text becomes a datetime.
    ts: AwareDatetime = Field(strict=False)
    source: Label

    def to_bytes(self) -> bytes:
        """The event as compact JSON, exactly as the worker would decode it."""
        return orjson.dumps(self.model_dump(mode="json"))

    @property
    def ts_epoch(self) -> float:
        return self.ts.timestamp()


class CanvassEvent(_Envelope):
    type: Literal["canvass"]
    payload: CanvassPayload


class DonationEvent(_Envelope):
    type: Literal["donation"]
    payload: DonationPayload


class AdEvent(_Envelope):
    type: Literal["ad"]
    payload: AdPayload


class RetractionEvent(_Envelope):
    type: Literal["retraction"]
    payload: RetractionPayload


Event = Annotated[
    CanvassEvent | DonationEvent | AdEvent | RetractionEvent, Field(discriminator="type")
]
EVENT_TYPES = ("canvass", "donation", "ad", "retraction")
_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


def decode_event(
    raw: bytes,
    *,
    expected_type: str | None = None,
    now: float | None = None,
    max_bytes: int = MAX_EVENT_BYTES,
    max_future_skew_s: float = MAX_FUTURE_SKEW_S,
) -> CanvassEvent | DonationEvent | AdEvent | RetractionEvent:
    """Decode and validate one event; raise :class:`InvalidEvent` saying why not."""
    event, _document = decode_document(
        raw,
        expected_type=expected_type,
        now=now,
        max_bytes=max_bytes,
        max_future_skew_s=max_future_skew_s,
    )
    return event


def decode_document(
    raw: bytes,
    *,
    expected_type: str | None = None,
    now: float | None = None,
    max_bytes: int = MAX_EVENT_BYTES,
    max_future_skew_s: float = MAX_FUTURE_SKEW_S,
) -> tuple[CanvassEvent | DonationEvent | AdEvent | RetractionEvent, dict[str, Any]]:
    """Like :func:`decode_event`, also returning the parsed JSON document.

    The document has passed validation, so the hot path can read plain dicts instead
    of paying to dump the model back into one.
    """
    document = _parse_document(raw, max_bytes)
    _check_envelope(document, expected_type)

    try:
        event = _event_adapter.validate_python(document)
    except ValidationError as exc:
        raise _invalid_from(exc) from exc

    now = time.time() if now is None else now
    if event.ts_epoch > now + max_future_skew_s:
        raise InvalidEvent(
            "ts_in_future", f"ts {event.ts.isoformat()} is in the future", field="ts"
        )
    return event, document


def _parse_document(raw: bytes, max_bytes: int) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise InvalidEvent("oversized", f"{len(raw)} bytes is over the {max_bytes} byte limit")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"byte {exc.start} is not UTF-8") from exc
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("malformed_json", str(exc)) from exc
    if not isinstance(document, dict):
        raise InvalidEvent(
            "not_an_object", f"expected a JSON object, got {type(document).__name__}"
        )
    return document


def _check_envelope(document: dict[str, Any], expected_type: str | None) -> None:
    # These checks come first so that the reason names the real problem rather
    # than a cascade of field errors from the wrong schema.
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidEvent(
            "unknown_schema_version",
            f"schema_version {version!r} is not {SCHEMA_VERSION}",
            field="schema_version",
        )
    kind = document.get("type")
    if kind not in EVENT_TYPES:
        raise InvalidEvent(
            "unknown_type", f"type {kind!r} is not one of {EVENT_TYPES}", field="type"
        )
    if expected_type is not None and kind != expected_type:
        raise InvalidEvent(
            "wrong_topic", f"a {kind} event on the {expected_type} topic", field="type"
        )
    voter_id = document.get("voter_id")
    if voter_id is None or voter_id == "":
        raise InvalidEvent("missing_voter_id", "voter_id is missing or empty", field="voter_id")


def _invalid_from(exc: ValidationError) -> InvalidEvent:
    first = exc.errors()[0]
    # Drop the discriminator tag pydantic puts first in the location.
    loc = [str(part) for part in first["loc"] if str(part) not in EVENT_TYPES]
    field = ".".join(loc) or None
    reason = "missing_field" if first["type"] == "missing" else "invalid_field"
    return InvalidEvent(reason, f"{field}: {first['msg']}", field=field)


def new_event(
    kind: str,
    voter_id: str,
    payload: dict[str, Any],
    *,
    source: str = "votescore",
    event_id: str | None = None,
    ts: datetime | None = None,
) -> CanvassEvent | DonationEvent | AdEvent | RetractionEvent:
    """Build and validate an event in code (simulator, publisher, tests)."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "type": kind,
        "event_id": event_id or uuid.uuid4().hex,
        "voter_id": voter_id,
        "ts": (ts or datetime.now(UTC)).isoformat(),
        "source": source,
        "payload": payload,
    }
    try:
        return _event_adapter.validate_python(document)
    except ValidationError as exc:
        raise _invalid_from(exc) from exc


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of one event, for the ingest API's OpenAPI description."""
    return _event_adapter.json_schema()
