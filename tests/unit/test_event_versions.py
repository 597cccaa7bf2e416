"""Events that gained fields are versioned: a stored v1 event of each such type still reads, upcast."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

import pytest

from domain import commands as c
from domain.events import UPCAST_EVENT_TYPES, EscalationEvent
from domain.service import EscalationService
from tests.unit.test_invariants import escalation_in

# What v1 of each upcast type lacked, and what reading it as v2 fills in.
V2_FIELDS: dict[str, dict[str, Any]] = {
    "EmergencyWorkReviewed": {"reviewer_override_reason": None},
    "MonitoringStarted": {"override_reason": None},
    "CorrectionRecorded": {"corrects_event": "", "corrected_facts": {}},
    "ProgressStalled": {"deadline_id": None},
}


def one_of_each(service: EscalationService) -> UUID:
    escalation_id = escalation_in(service, "monitoring")
    for command in (
        c.RaiseEmergency(escalation_id=escalation_id, ticket="ZD-9", out_of_hours=True, handled_by="oncall"),
        c.ReviewEmergencyWork(escalation_id=escalation_id, emergency_id="E1", notes="fine", reviewed_by="priya"),
        c.RecordCorrection(escalation_id=escalation_id, corrects_version=2, reason="r", correction="c"),
        c.InterruptMonitoring(escalation_id=escalation_id, reason="unstable again"),
        c.MarkStalled(escalation_id=escalation_id, reason="no progress", noticed_by="mia.manager"),
    ):
        service.handle(command, actor="mia.manager")
    return escalation_id


def stored_as_v1(service: EscalationService, event: EscalationEvent) -> Any:
    """The event as a v1 writer stored it: no class_version, none of the fields v2 added."""
    stored = service.mapper.to_stored_event(event)
    state = service.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    for name in V2_FIELDS[type(event).__name__]:
        del state[name]
    return dataclasses.replace(stored, state=service.mapper.transcoder.encode(state))


@pytest.mark.parametrize("event_type", UPCAST_EVENT_TYPES, ids=lambda t: t.__name__)
def test_a_stored_v1_event_reads_as_the_current_version(
    memory_service: EscalationService, event_type: type[EscalationEvent]
) -> None:
    history = memory_service.history(one_of_each(memory_service))
    current = next(e for e in history if isinstance(e, event_type))

    read = memory_service.mapper.to_domain_event(stored_as_v1(memory_service, current))

    assert type(read) is event_type
    assert event_type.class_version == 2  # type: ignore[attr-defined]
    for name, value in V2_FIELDS[event_type.__name__].items():
        assert getattr(read, name) == value
    assert {k: v for k, v in vars(read).items() if k not in V2_FIELDS[event_type.__name__]} == {
        k: v for k, v in vars(current).items() if k not in V2_FIELDS[event_type.__name__]
    }


def test_every_upcast_type_is_covered() -> None:
    assert {t.__name__ for t in UPCAST_EVENT_TYPES} == set(V2_FIELDS)
