"""The wire format: what every consumer of the stream relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.escalation import Escalation
from domain.values import DEFAULT_CADENCES, Severity, Stamp
from infra.messaging import envelope
from infra.messaging.schemas import rendered

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def opened_event() -> object:
    escalation = Escalation.open(
        Stamp("mia", NOW, NOW),
        escalation_id=uuid4(),
        customer="Globex",
        region="EMEA",
        account_owner="dana",
        dri_manager="mia",
        source="customer_success",
        severity="high",
        summary="s",
        channel="#a_globex_escalation",
        cadence=DEFAULT_CADENCES[Severity.HIGH],
    )
    return escalation.collect_events()[0]


def test_the_checked_in_schemas_and_asyncapi_document_are_current() -> None:
    stale = [str(path) for path, text in rendered().items() if not path.exists() or path.read_text() != text]

    assert not stale, f"regenerate with `python -m infra.messaging.schemas`: {stale}"


def test_an_encoded_event_decodes_to_the_same_facts() -> None:
    event = opened_event()

    key, value, headers = envelope.encode(event, position=42, source="urn:test")  # type: ignore[arg-type]
    decoded = envelope.decode(headers, value)

    assert key == str(event.originator_id).encode()  # type: ignore[attr-defined]
    assert decoded.name == "EscalationOpened"
    assert decoded.position == 42
    assert decoded.aggregate_version == 1
    assert decoded.data["customer"] == "Globex"
    assert decoded.data["occurred_at"] == "2026-11-02T08:00:00Z"
    assert decoded.id == envelope.event_id(event.originator_id, 1)  # type: ignore[attr-defined]


def test_the_event_id_is_stable_across_republishing() -> None:
    escalation_id = uuid4()

    assert envelope.event_id(escalation_id, 3) == envelope.event_id(escalation_id, 3)
    assert envelope.event_id(escalation_id, 3) != envelope.event_id(escalation_id, 4)


def headers_with(**changes: bytes | None) -> list[tuple[str, bytes]]:
    _, _, headers = envelope.encode(opened_event(), position=1, source="urn:test")  # type: ignore[arg-type]
    found = dict(headers)
    for key, value in changes.items():
        name = key.replace("__", "-")
        if value is None:
            found.pop(name)
        else:
            found[name] = value
    return list(found.items())


@pytest.mark.parametrize(
    ("headers", "value", "message"),
    [
        (headers_with(ce_type=None), b"{}", "missing CloudEvents header"),
        (headers_with(), b"\x00\xff garbage", "the value is not JSON"),
        (headers_with(), b"[1, 2]", "not an object"),
        (headers_with(ce_type=b"escalations.Teleported.v1"), b"{}", "unknown event type"),
        (headers_with(ce_type=b"com.other.Thing"), b"{}", "is not an escalation event type"),
        (headers_with(ce_specversion=b"0.3"), b"{}", "only CloudEvents 1.0"),
        (headers_with(content__type=b"text/plain"), b"{}", "expected application/json"),
        (headers_with(ce_position=b"twelve"), b"{}", "malformed value"),
        (None, b"{}", "missing CloudEvents header"),
    ],
)
def test_an_unreadable_message_is_refused_with_a_reason(
    headers: list[tuple[str, bytes]] | None, value: bytes, message: str
) -> None:
    with pytest.raises(envelope.EnvelopeError, match=message):
        envelope.decode(headers, value)


def test_a_newer_schema_version_is_not_silently_dropped() -> None:
    with pytest.raises(envelope.NewerSchemaError, match="newer schema"):
        envelope.decode(headers_with(ce_type=b"escalations.ScopeDefined.v2"), b"{}")


@given(st.uuids(), st.integers(min_value=1, max_value=10**9))
def test_the_event_id_is_the_uuid5_of_the_event_name(escalation_id: UUID, version: int) -> None:
    expected = uuid5(NAMESPACE_URL, f"escalation-ledger:{escalation_id}:{version}")

    assert envelope.event_id(escalation_id, version) == str(expected)
