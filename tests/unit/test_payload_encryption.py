"""Payload encryption: the value is unreadable without the key its header names; the headers stay readable."""

from __future__ import annotations

import base64
import os

import pytest

from infra.messaging import envelope
from infra.messaging.envelope import EnvelopeError, PayloadCipher
from tests.unit.test_envelope import opened_event


def cipher(key_id: str = "k1", previous: dict[str, bytes] | None = None) -> PayloadCipher:
    return PayloadCipher(key_id, os.urandom(32), previous)


def test_an_encrypted_value_decodes_with_the_key_and_hides_the_facts() -> None:
    event = opened_event()
    key = cipher()

    _, value, headers = envelope.encode(event, 7, "urn:test", key)  # type: ignore[arg-type]
    decoded = envelope.decode(headers, value, key)

    assert b"Globex" not in value
    assert dict(headers)["ce_dataencryption"] == b"A256GCM"
    assert dict(headers)["ce_datakeyid"] == b"k1"
    assert dict(headers)["ce_type"] == b"escalations.EscalationOpened.v1"
    assert decoded.data["customer"] == "Globex"


def test_without_a_key_or_with_another_key_the_error_says_what_to_set() -> None:
    _, value, headers = envelope.encode(opened_event(), 7, "urn:test", cipher())  # type: ignore[arg-type]

    with pytest.raises(EnvelopeError, match="has no payload key; set ESCALATIONS_KAFKA_PAYLOAD_KEY"):
        envelope.decode(headers, value)
    with pytest.raises(EnvelopeError, match="does not decrypt with key 'k1'"):
        envelope.decode(headers, value, cipher())
    with pytest.raises(EnvelopeError, match="encrypted with key 'k1', which this consumer does not have"):
        envelope.decode(headers, value, cipher("k2"))


def test_a_value_moved_onto_another_events_headers_does_not_decrypt() -> None:
    key = cipher()
    _, value, _ = envelope.encode(opened_event(), 1, "urn:test", key)  # type: ignore[arg-type]
    _, _, other_headers = envelope.encode(opened_event(), 2, "urn:test", key)  # type: ignore[arg-type]

    with pytest.raises(EnvelopeError, match="changed or moved from another record"):
        envelope.decode(other_headers, value, key)


def test_after_a_rotation_the_previous_key_still_decrypts_old_records() -> None:
    old_raw = os.urandom(32)
    old = PayloadCipher("2026-10", old_raw)
    _, value, headers = envelope.encode(opened_event(), 1, "urn:test", old)  # type: ignore[arg-type]

    rotated = cipher("2026-11", previous={"2026-10": old_raw})

    assert envelope.decode(headers, value, rotated).data["customer"] == "Globex"


def test_plain_records_still_decode_when_a_key_is_set() -> None:
    _, value, headers = envelope.encode(opened_event(), 1, "urn:test")  # type: ignore[arg-type]

    assert envelope.decode(headers, value, cipher()).data["customer"] == "Globex"


@pytest.mark.parametrize(
    ("key", "problem"),
    [("not base64!", "is not base64"), (base64.b64encode(b"short").decode(), "has 5 bytes; AES-256-GCM needs 32")],
)
def test_a_bad_key_is_refused_with_what_to_do(key: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PayloadCipher.from_base64("k1", key)
