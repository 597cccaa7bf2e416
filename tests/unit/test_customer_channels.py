"""A customer's channels: one per open escalation, freed when it closes, at the ledger's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain import commands as c
from domain.channels import CustomerChannels
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.test_invariants import CLOSING, OPENING

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_releasing_a_channel_is_recorded_at_the_moment_given() -> None:
    channels = CustomerChannels.register("Initech", MONDAY)
    channels.claim(UUID(int=1), None, MONDAY)

    channels.release(UUID(int=1), MONDAY + timedelta(days=3))

    released = channels.collect_events()[-1]
    assert isinstance(released, CustomerChannels.Released)
    assert released.timestamp == MONDAY + timedelta(days=3)
    assert channels.open_escalations == {}


def test_closing_frees_the_channel_at_the_moment_the_ledger_recorded_the_closing() -> None:
    clock = SteppingClock(MONDAY)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    escalation = service.handle(c.OpenEscalation(**OPENING), actor="mia.manager").escalation_id
    clock.now = MONDAY + timedelta(days=2)

    service.handle(
        c.CloseEscalation(escalation_id=escalation, override_reason="opened by mistake", **CLOSING), actor="m"
    )

    events = list(service.repository.event_store.get(CustomerChannels.id_for(OPENING["customer"])))
    assert [type(e).__name__ for e in events] == ["Registered", "Claimed", "Released"]
    assert [e.timestamp for e in events] == [MONDAY, MONDAY, MONDAY + timedelta(days=2)]
