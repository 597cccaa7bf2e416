"""The wire format: CloudEvents 1.0 over Kafka, binary content mode, JSON data (orjson).

This is the only module that knows orjson and the header names. Headers:
`ce_specversion`, `ce_id` (stable across republishing), `ce_source`, `ce_type`
(`escalations.<EventName>.v<class_version>`), `ce_time` (when it occurred), `ce_subject` (the
escalation id), `content-type`, and the extensions `ce_aggregateversion` and `ce_position` (the
event store's global position). The value is the event's data as a JSON object.

Optionally the value is encrypted (AES-256-GCM, `PayloadCipher`): the headers stay readable, so
brokers, routers and audit tools still see what each record is and where it belongs, and two
extension headers say how to read the value: `ce_dataencryption` (`A256GCM`) and `ce_datakeyid`.
The value is then a 12-byte nonce followed by the ciphertext and tag; the event id is the
additional authenticated data, so a value moved onto another record's headers does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID

import orjson
from Crypto.Cipher import AES

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
_SCHEME = b"A256GCM"
_URL_NAMESPACE = NAMESPACE_URL.bytes
EVENT_CLASSES: dict[str, type[EscalationEvent]] = {cls.__name__: cls for cls in ALL_EVENT_TYPES}

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A message that is not a readable escalation event; the text says what is wrong with it."""


class NewerSchemaError(EnvelopeError):
    """An event type we know, from a newer schema version than this consumer understands."""


ENCRYPTION_SCHEME = "A256GCM"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32  # AES-256


class PayloadCipher:
    """AES-256-GCM for message values, named by a key id that travels in the `ce_datakeyid` header.

    `previous` keys (by id) still decrypt, so a key can be rotated without re-publishing history.
    """

    def __init__(self, key_id: str, key: bytes, previous: dict[str, bytes] | None = None) -> None:
        self.key_id = key_id
        # pycryptodome (already here for the event store's cipher), not another crypto library.
        self._keys = {kid: _check_key(kid, raw) for kid, raw in {**(previous or {}), key_id: key}.items()}
        self.header_key_id = key_id.encode()

    @classmethod
    def from_base64(cls, key_id: str, key: str, previous: dict[str, str] | None = None) -> PayloadCipher:
        return cls(key_id, _b64_key(key_id, key), {kid: _b64_key(kid, raw) for kid, raw in (previous or {}).items()})

    def encrypt(self, plaintext: bytes, event_id: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        aead = AES.new(self._keys[self.key_id], AES.MODE_GCM, nonce=nonce)
        aead.update(event_id)
        ciphertext, tag = aead.encrypt_and_digest(plaintext)
        return nonce + ciphertext + tag

    def decrypt(self, key_id: str, value: bytes, event_id: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            msg = (
                f"the value is encrypted with key {key_id!r}, which this consumer does not have (it has "
                f"{', '.join(sorted(self._keys))}); add it to ESCALATIONS_KAFKA_PAYLOAD_PREVIOUS_KEYS"
            )
            raise EnvelopeError(msg)
        aead = AES.new(key, AES.MODE_GCM, nonce=value[:_NONCE_BYTES])
        aead.update(event_id.encode())
        try:
            plaintext: bytes = aead.decrypt_and_verify(value[_NONCE_BYTES:-_TAG_BYTES], value[-_TAG_BYTES:])
        except ValueError:
            msg = (
                f"the value does not decrypt with key {key_id!r}: a different key under that id, "
                "or a value that was changed or moved from another record"
            )
            raise EnvelopeError(msg) from None
        return plaintext


def _b64_key(key_id: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        msg = f"payload key {key_id!r} is not base64; make one with: openssl rand -base64 32"
        raise ValueError(msg) from None


def _check_key(key_id: str, raw: bytes) -> bytes:
    if len(raw) != _KEY_BYTES:
        msg = f"payload key {key_id!r} has {len(raw)} bytes; AES-256-GCM needs 32 (base64 of 32 random bytes)"
        raise ValueError(msg)
    return raw


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


def encode(
    event: EscalationEvent, position: int, source: str, cipher: PayloadCipher | None = None
) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of the Kafka record for one recorded event; the value encrypted with a cipher."""
    subject = str(event.originator_id).encode()
    ce_id = event_id(event.originator_id, event.originator_version).encode()
    headers: Headers = [
        ("ce_specversion", _SPEC_VERSION),
        ("ce_id", ce_id),
        ("ce_source", source.encode()),
        ("ce_type", type_name(type(event)).encode()),
        ("ce_time", _rfc3339(event.occurred_at).encode()),
        ("ce_subject", subject),
        ("content-type", _CONTENT_TYPE),
        ("ce_aggregateversion", str(event.originator_version).encode()),
        ("ce_position", str(position).encode()),
    ]
    value = orjson.dumps(event_data(event), option=orjson.OPT_UTC_Z)
    if cipher is not None:
        value = cipher.encrypt(value, ce_id)
        headers += [("ce_dataencryption", _SCHEME), ("ce_datakeyid", cipher.header_key_id)]
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


def decode(headers: Headers | None, value: bytes | None, cipher: PayloadCipher | None = None) -> Envelope:
    """The envelope of one record, or an EnvelopeError that names what is wrong (an encrypted value needs `cipher`)."""
    attributes, name, schema_version, data = _checked(headers, value, cipher)
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


def decode_record(record: Any, cipher: PayloadCipher | None = None) -> RecordedEvent:
    """A consumed Kafka record as the projections read it, or an EnvelopeError that names what is wrong.

    The consumers receive this as their decoder, so they never learn the wire format. It checks what
    `decode` checks but builds no Envelope on the way: every consumer pays this once per event.
    """
    attributes, name, _, data = _checked(record.headers, record.value, cipher)
    try:
        datetime.fromisoformat(attributes["ce_time"])  # checked, not kept: the projections read occurred_at
        return RecordedEvent(
            name,
            _canonical_uuid(attributes["ce_subject"]),
            int(attributes["ce_aggregateversion"]),
            int(attributes["ce_position"]),
            data,
            attributes["ce_id"],
        )
    except ValueError as error:
        msg = f"a header has a malformed value: {error}"
        raise EnvelopeError(msg) from None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _canonical_uuid(text: str) -> str:
    """The subject as str(UUID(text)); the relay already writes that form, so most records skip the parse."""
    return text if _CANONICAL_UUID.fullmatch(text) else str(UUID(text))


def _checked(
    headers: Headers | None, value: bytes | None, cipher: PayloadCipher | None
) -> tuple[dict[str, str], str, int, dict[str, Any]]:
    attributes = _headers(headers)
    value = _plaintext(attributes, value, cipher)
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
    return attributes, name, schema_version, data


def record_decoder(cipher: PayloadCipher | None) -> Callable[[Any], RecordedEvent]:
    """`decode_record` bound to the consumers' cipher (or none)."""
    return lambda record: decode_record(record, cipher)


def _plaintext(attributes: dict[str, str], value: bytes | None, cipher: PayloadCipher | None) -> bytes | None:
    scheme = attributes.get("ce_dataencryption")
    if scheme is None:
        return value
    if scheme != ENCRYPTION_SCHEME:
        msg = f"the value is encrypted with {scheme!r}; only {ENCRYPTION_SCHEME} is read"
        raise EnvelopeError(msg)
    key_id = attributes.get("ce_datakeyid", "")
    if cipher is None:
        msg = (
            f"the value is encrypted ({scheme}, key {key_id!r}) and this consumer has no payload key; "
            "set ESCALATIONS_KAFKA_PAYLOAD_KEY (and _KEY_ID) as the relay has them"
        )
        raise EnvelopeError(msg)
    return cipher.decrypt(key_id, value or b"", attributes["ce_id"])


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
