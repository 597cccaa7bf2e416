"""The wire format: CloudEvents 1.0 over Kafka, binary content mode, JSON data (orjson).

This is the only module that knows orjson and the header names. Headers:
`ce_specversion`, `ce_id` (stable across republishing), `ce_source`, `ce_type`
(`escalations.<EventName>.v<class_version>`), `ce_time` (when it occurred), `ce_subject` (the
escalation id), `content-type`, and the extensions `ce_aggregateversion` and `ce_position` (the
event store's global position). The value is the event's data as a JSON object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID

import orjson

from domain.events import ALL_EVENT_TYPES, EscalationEvent, event_fields
from projections.facts import RecordedEvent

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PREFIX = "escalations."
REQUIRED_HEADERS = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "content-type",
    "ce_aggregateversion",
    "ce_position",
)
_REQUIRED = frozenset(REQUIRED_HEADERS)
_SPEC_VERSION, _CONTENT_TYPE = SPEC_VERSION.encode(), CONTENT_TYPE.encode()
_URL_NAMESPACE = NAMESPACE_URL.bytes
EVENT_CLASSES: dict[str, type[EscalationEvent]] = {cls.__name__: cls for cls in ALL_EVENT_TYPES}

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A message that is not a readable escalation event; the text says what is wrong with it."""


class NewerSchemaError(EnvelopeError):
    """An event type we know, from a newer schema version than this consumer understands."""


@dataclass(frozen=True)
class Envelope:
    """One decoded message: the CloudEvents attributes and the event's data."""

    id: str
    type: str
    name: str
    schema_version: int
    source: str
    time: datetime
    escalation_id: UUID
    aggregate_version: int
    position: int
    data: dict[str, Any]


def event_id(escalation_id: UUID | str, version: int) -> str:
    """Stable across republishing: the same event always gets the same id, the UUIDv5 of its name.

    Computed as `uuid.uuid5` does (RFC 4122 SHA-1 name-based), without building UUID objects:
    this runs for every event the relay publishes.
    """
    name = f"escalation-ledger:{escalation_id}:{version}".encode()
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + name).digest()[:16])  # noqa: S324 - RFC 4122 v5
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def type_name(event_class: type[EscalationEvent]) -> str:
    return f"{TYPE_PREFIX}{event_class.__name__}.v{event_class.class_version}"


def event_data(event: EscalationEvent) -> dict[str, Any]:
    return {
        "escalation_id": event.originator_id,
        "version": event.originator_version,
        "recorded_at": event.timestamp,
        **event_fields(event),
    }


def encode(event: EscalationEvent, position: int, source: str) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of the Kafka record for one recorded event."""
    subject = str(event.originator_id).encode()
    headers: Headers = [
        ("ce_specversion", _SPEC_VERSION),
        ("ce_id", event_id(event.originator_id, event.originator_version).encode()),
        ("ce_source", source.encode()),
        ("ce_type", type_name(type(event)).encode()),
        ("ce_time", _rfc3339(event.occurred_at).encode()),
        ("ce_subject", subject),
        ("content-type", _CONTENT_TYPE),
        ("ce_aggregateversion", str(event.originator_version).encode()),
        ("ce_position", str(position).encode()),
    ]
    value = orjson.dumps(event_data(event), option=orjson.OPT_UTC_Z)
    return subject, value, headers


def as_recorded(event: EscalationEvent, position: int) -> RecordedEvent:
    """The event as a consumer of the topic sees it (the same JSON values), without a broker."""
    data = orjson.loads(orjson.dumps(event_data(event), option=orjson.OPT_UTC_Z))
    return RecordedEvent(
        type(event).__name__,
        str(event.originator_id),
        event.originator_version,
        position,
        data,
        event_id(event.originator_id, event.originator_version),
    )


def structured(event: RecordedEvent, source: str) -> dict[str, Any]:
    """The event as a CloudEvent in structured JSON mode (for webhooks): attributes and data in one object."""
    known = EVENT_CLASSES.get(event.name)
    return {
        "specversion": SPEC_VERSION,
        "id": event.event_id or event_id(event.escalation_id, event.version),
        "source": source,
        "type": f"{TYPE_PREFIX}{event.name}.v{known.class_version if known else 1}",
        "time": event.data.get("occurred_at"),
        "subject": event.escalation_id,
        "datacontenttype": CONTENT_TYPE,
        "aggregateversion": event.version,
        "position": event.position,
        "data": event.data,
    }


def decode(headers: Headers | None, value: bytes | None) -> Envelope:
    """The envelope of one record, or an EnvelopeError that names what is wrong."""
    attributes = _headers(headers)
    if attributes["ce_specversion"] != SPEC_VERSION:
        msg = f"ce_specversion is {attributes['ce_specversion']!r}; only CloudEvents {SPEC_VERSION} is read"
        raise EnvelopeError(msg)
    if attributes["content-type"] != CONTENT_TYPE:
        msg = f"content-type is {attributes['content-type']!r}; expected {CONTENT_TYPE}"
        raise EnvelopeError(msg)
    name, schema_version = _parse_type(attributes["ce_type"])
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as error:
        msg = f"the value is not JSON ({error}); it cannot be an escalation event"
        raise EnvelopeError(msg) from None
    if not isinstance(data, dict):
        msg = f"the value is JSON {type(data).__name__}, not an object; it cannot be an escalation event"
        raise EnvelopeError(msg)
    try:
        return Envelope(
            id=attributes["ce_id"],
            type=attributes["ce_type"],
            name=name,
            schema_version=schema_version,
            source=attributes["ce_source"],
            time=datetime.fromisoformat(attributes["ce_time"]),
            escalation_id=UUID(attributes["ce_subject"]),
            aggregate_version=int(attributes["ce_aggregateversion"]),
            position=int(attributes["ce_position"]),
            data=data,
        )
    except ValueError as error:
        msg = f"a header has a malformed value: {error}"
        raise EnvelopeError(msg) from None


def decode_record(record: Any) -> RecordedEvent:
    """A consumed Kafka record as the projections read it, or an EnvelopeError that names what is wrong.

    The consumers receive this as their decoder, so they never learn the wire format.
    """
    decoded = decode(record.headers, record.value)
    return RecordedEvent(
        decoded.name, str(decoded.escalation_id), decoded.aggregate_version, decoded.position, decoded.data, decoded.id
    )


def _headers(headers: Headers | None) -> dict[str, str]:
    try:
        found = {key: raw.decode() if raw is not None else "" for key, raw in headers or []}
    except UnicodeDecodeError:
        bad = next(key for key, raw in headers or [] if not _is_utf8(raw))
        msg = f"header {bad} is not UTF-8 text"
        raise EnvelopeError(msg) from None
    if not found.keys() >= _REQUIRED:
        missing = [name for name in REQUIRED_HEADERS if name not in found]
        msg = f"missing CloudEvents header(s) {', '.join(missing)}; produce in binary content mode"
        raise EnvelopeError(msg)
    return found


def _is_utf8(raw: bytes | None) -> bool:
    try:
        (raw or b"").decode()
    except UnicodeDecodeError:
        return False
    return True


@lru_cache(maxsize=1024)  # a handful of types in practice; failures raise and are not cached
def _parse_type(ce_type: str) -> tuple[str, int]:
    name, _, version = ce_type.removeprefix(TYPE_PREFIX).rpartition(".v")
    if not ce_type.startswith(TYPE_PREFIX) or not version.isdigit():
        msg = f"ce_type {ce_type!r} is not an escalation event type (escalations.<Name>.v<N>)"
        raise EnvelopeError(msg)
    known = EVENT_CLASSES.get(name)
    if known is None:
        msg = f"unknown event type {ce_type!r}; known types: {', '.join(sorted(EVENT_CLASSES))}"
        raise EnvelopeError(msg)
    if int(version) > known.class_version:
        msg = (
            f"{ce_type} is from a newer schema (v{version}) than this consumer knows "
            f"(v{known.class_version}); upgrade the consumer, then replay it from the dead-letter topic"
        )
        raise NewerSchemaError(msg)
    return name, int(version)


def _rfc3339(moment: datetime) -> str:
    return orjson.dumps(moment, option=orjson.OPT_UTC_Z).decode().strip('"')
