"""Corrections applied: history as it is known now, with the recorded events left as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain import commands as c
from domain.corrections import corrected_history, replay
from domain.events import CorrectionRecorded, UpdatePosted
from domain.service import EscalationService
from infra.local.stories import updated_once
from projections.corrected import corrected
from projections.facts import RecordedEvent
from tests.fakes import SteppingClock

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TASKS = [{"description": "Trace the balancer", "tickets": ["ZD-9"]}]


def corrected_update(service: EscalationService) -> UUID:
    """An escalation whose update's tasks and time were corrected afterwards."""
    escalation = updated_once(service, MONDAY, customer="Initech", region="EMEA", lead="li").escalation_id
    update = next(e for e in service.history(escalation) if isinstance(e, UpdatePosted))
    service.handle(
        c.RecordCorrection(
            escalation_id=escalation,
            corrects_version=update.originator_version,
            reason="the wrong tasks were pasted",
            correction="tracing the balancer, since 10:00",
            corrected_facts={"current_tasks": TASKS, "occurred_at": "2026-11-02T10:00:00+00:00"},
        ),
        actor="sam.manager",
    )
    return escalation


def a_service() -> EscalationService:
    return EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(MONDAY + timedelta(hours=5))
    )


def test_a_corrected_event_carries_the_corrected_facts_and_the_recorded_one_is_unchanged() -> None:
    service = a_service()
    history = service.history(corrected_update(service))

    fixed = next(e for e in corrected_history(history) if isinstance(e, UpdatePosted))
    recorded = next(e for e in history if isinstance(e, UpdatePosted))

    assert fixed.current_tasks == TASKS
    assert fixed.occurred_at == datetime(2026, 11, 2, 10, tzinfo=UTC)  # a time again, not its text
    assert recorded.current_tasks != TASKS
    assert recorded.occurred_at != fixed.occurred_at


def test_changing_a_corrected_copy_changes_neither_the_correction_nor_another_copy() -> None:
    service = a_service()
    history = service.history(corrected_update(service))

    first = next(e for e in corrected_history(history) if isinstance(e, UpdatePosted))
    first.current_tasks[0]["tickets"].append("ZD-10")

    correction = next(e for e in history if isinstance(e, CorrectionRecorded))
    assert correction.corrected_facts["current_tasks"] == TASKS
    second = next(e for e in corrected_history(history) if isinstance(e, UpdatePosted))
    assert second.current_tasks == TASKS


def test_a_replay_knows_each_event_it_went_through_and_its_version() -> None:
    service = a_service()
    history = service.history(corrected_update(service))

    replayed = replay(history)

    assert replayed.event_types == [type(e).__name__ for e in history]
    assert replayed.version == history[-1].originator_version


def test_corrected_facts_replace_only_the_data_and_keep_the_events_identity() -> None:
    update = RecordedEvent("UpdatePosted", "e1", 5, 105, {"author": "li", "progress": "p"}, "event-5")
    correction = RecordedEvent(
        "CorrectionRecorded", "e1", 6, 106, {"corrects_version": 5, "corrected_facts": {"author": "bob"}}, "event-6"
    )

    fixed, kept = corrected([update, correction])

    assert fixed == RecordedEvent("UpdatePosted", "e1", 5, 105, {"author": "bob", "progress": "p"}, "event-5")
    assert kept is correction


def test_a_correction_naming_someone_who_never_helped_as_the_one_who_left_replays_without_them() -> None:
    service = a_service()
    escalation = corrected_update(service)
    service.handle(c.AddHelper(escalation_id=escalation, engineer="ann", engineer_region="EMEA", reason="r"), actor="m")
    left = service.handle(c.RemoveHelper(escalation_id=escalation, engineer="ann", reason="r"), actor="m").version
    service.handle(
        c.RecordCorrection(
            escalation_id=escalation,
            corrects_version=left,
            reason="the wrong name",
            correction="bob left, not ann",
            corrected_facts={"engineer": "bob"},
        ),
        actor="sam.manager",
    )

    as_corrected = service.state_as_occurred(escalation, MONDAY + timedelta(hours=5))

    assert as_corrected["helpers"].keys() == {"ann"}  # bob never helped; ann, as corrected, never left
