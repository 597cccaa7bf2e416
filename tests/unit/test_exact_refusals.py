"""What each refusal says, word for word, and what the watcher's commands record.

The invariant and midway tests check that each rule refuses with the right error and the fix; these
pin the whole sentence a manager or the watcher's log reads, for the refusals whose wording is built
from parts (the action refused, the deadline, the ids known), and every fact a ledger event carries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain import commands as c
from domain.errors import (
    DeadlineAlreadyFiredError,
    DeadlineNoLongerDueError,
    IllegalTransitionError,
    InvalidCommandError,
)
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.test_invariants import CLOSING, OPENING, SCOPE, UPDATE
from tests.unit.test_midway import RISK, in_phase

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # the clock fixture's Monday
RETRO_OPEN = "before the retrospective is opened; close the escalation and open its retrospective first"
CLOSED = "the escalation is closed; open a new escalation if the customer needs one"
Act = Callable[[EscalationService, UUID], object]


def overdue(**changes: Any) -> c.RecordUpdateOverdue:
    facts: dict[str, Any] = {
        "deadline_id": "d1",
        "due_at": NOW,
        "gap_started_at": NOW - timedelta(days=2),
        "working_days_overdue": 1,
        "allowed_working_days": 1,  # a critical escalation's daily cadence
    }
    return c.RecordUpdateOverdue(**(facts | changes))


def act(command: Callable[[UUID], c.Command]) -> Act:
    return lambda s, e: s.handle(command(e), actor="escalation-ledger")


def retro_with_two_actions(s: EscalationService, e: UUID) -> None:
    for what in ("Alert on timeouts", "Document the balancer"):
        s.handle(c.AddFollowUpAction(escalation_id=e, what=what, owner="priya", due_on=date(2026, 11, 9)), actor="m")


CASES: list[tuple[str, Act | None, Act, type[Exception], str]] = [
    (
        "closed",
        None,
        act(lambda e: c.HandOverRole(escalation_id=e, role="escalation_dri", successor="sam", reason="r")),
        IllegalTransitionError,
        f"cannot hand over a role: {CLOSED}",
    ),
    (
        "closed",
        None,
        act(lambda e: c.RecordRisk(escalation_id=e, **RISK)),
        IllegalTransitionError,
        f"cannot record a risk: {CLOSED}",
    ),
    (
        "closed",
        None,
        act(lambda e: c.SettleRisk(escalation_id=e, risk_id="R1", outcome="retired", note="n")),
        IllegalTransitionError,
        f"cannot settle a risk: {CLOSED}",
    ),
    (
        "closed",
        None,
        act(lambda e: c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 11, 3))),
        IllegalTransitionError,
        f"cannot add a follow-up action {RETRO_OPEN}",
    ),
    (
        "closed",
        None,
        act(lambda e: c.SettleFollowUpAction(escalation_id=e, action_id="A1", outcome="done", note="n")),
        IllegalTransitionError,
        f"cannot settle a follow-up action {RETRO_OPEN}",
    ),
    (
        "closed",
        None,
        act(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 2))),
        IllegalTransitionError,
        f"cannot complete the retrospective {RETRO_OPEN}",
    ),
    (
        "active",
        lambda s, e: [s.handle(c.RecordRisk(escalation_id=e, **RISK), actor="m") for _ in range(2)],
        act(lambda e: c.SettleRisk(escalation_id=e, risk_id="R9", outcome="retired", note="n")),
        InvalidCommandError,
        "risk 'R9' is not known here; known risks: R1, R2",
    ),
    (
        "retro",
        retro_with_two_actions,
        act(lambda e: c.SettleFollowUpAction(escalation_id=e, action_id="A9", outcome="done", note="n")),
        InvalidCommandError,
        "follow-up action 'A9' is not known here; known actions: A1, A2",
    ),
    (
        "active",
        lambda s, e: s.handle(c.MarkStalled(escalation_id=e, reason="stuck", noticed_by="mia.manager"), actor="m"),
        act(lambda e: c.MarkStalled(escalation_id=e, reason="stuck", noticed_by="mia.manager")),
        IllegalTransitionError,
        "progress is already marked stalled; resume it or escalate to a specialist team",
    ),
    (
        "active",
        None,
        act(lambda e: c.ResumeProgress(escalation_id=e, note="n")),
        IllegalTransitionError,
        "progress is not stalled; mark it stalled before resuming it",
    ),
    (
        "active",
        None,
        act(lambda e: c.OpenRetrospective(escalation_id=e, retro_reference="retro#1")),
        IllegalTransitionError,
        "the retrospective is opened after closing; close the escalation first",
    ),
    # The watcher's commands: each refusal names the deadline and why it no longer stands.
    (
        "closed",
        None,
        act(lambda e: overdue(escalation_id=e)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: the escalation is closed; nothing to record",
    ),
    (
        "active",
        lambda s, e: s.handle(c.ChangeSeverity(escalation_id=e, severity="low", reason="fixed"), actor="m"),
        act(lambda e: overdue(escalation_id=e)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: a low escalation has no update cadence; nothing to record",
    ),
    (
        "active",
        None,
        act(lambda e: overdue(escalation_id=e, allowed_working_days=3)),
        DeadlineNoLongerDueError,
        (
            "deadline d1 is no longer due: the critical cadence now allows 1 working days between updates, not 3; "
            "nothing to record"
        ),
    ),
    (
        "active",
        lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **UPDATE), actor="priya"),
        act(lambda e: overdue(escalation_id=e)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: an update was posted at 2026-11-02T08:00:00+00:00; nothing to record",
    ),
    (
        "monitoring",
        lambda s, e: s.handle(
            c.PauseUpdates(escalation_id=e, resume_on=date(2026, 11, 3), reason="customer away"), actor="m"
        ),
        act(lambda e: overdue(escalation_id=e)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: updates are paused until 2026-11-03; nothing to record",
    ),
    (
        "monitoring",
        None,
        act(lambda e: c.NoticeStall(escalation_id=e, deadline_id="d1", no_progress_since=NOW, working_days=2)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: the escalation is monitoring; nothing to record",
    ),
    (
        "active",
        lambda s, e: s.handle(c.MarkStalled(escalation_id=e, reason="stuck", noticed_by="mia.manager"), actor="m"),
        act(lambda e: c.NoticeStall(escalation_id=e, deadline_id="d1", no_progress_since=NOW, working_days=2)),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: the escalation is active, stalled; nothing to record",
    ),
    (
        "active",
        None,
        act(
            lambda e: c.NoticeStall(
                escalation_id=e, deadline_id="d1", no_progress_since=NOW - timedelta(days=3), working_days=2
            )
        ),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: progress showed at 2026-11-02T08:00:00+00:00; nothing to record",
    ),
    (
        "active",
        None,
        act(lambda e: c.EndMonitoringPeriod(escalation_id=e, deadline_id="d1", due_at=NOW)),
        DeadlineNoLongerDueError,
        (
            "deadline d1 is no longer due: the escalation is active, its monitoring period not ending then; "
            "nothing to record"
        ),
    ),
    (
        "retro",
        None,
        act(
            lambda e: c.RecordRetrospectiveDue(
                escalation_id=e, deadline_id="d1", closed_at=NOW, working_days_since_closing=5
            )
        ),
        DeadlineNoLongerDueError,
        (
            "deadline d1 is no longer due: the retrospective is open, or the escalation is not closed then; "
            "nothing to record"
        ),
    ),
    (
        "retro",
        None,
        act(lambda e: c.RecordFollowUpActionOverdue(escalation_id=e, deadline_id="d1", action_id="A9")),
        DeadlineNoLongerDueError,
        "deadline d1 is no longer due: follow-up action A9 is not open; nothing to record",
    ),
    (
        "active",
        None,
        act(lambda e: overdue(escalation_id=e, due_at=datetime(2026, 11, 2, 7, 0))),  # noqa: DTZ001 - the mistake
        InvalidCommandError,
        "due_at 2026-11-02T07:00:00 has no time zone; give it with an offset, e.g. +00:00",
    ),
    (
        "active",
        None,
        act(
            lambda e: c.RecordCorrection(
                escalation_id=e,
                corrects_version=2,
                reason="r",
                correction="c",
                corrected_facts={"occurred_at": "2026-11-02T07:00:00"},
            )
        ),
        InvalidCommandError,
        "the corrected occurred_at 2026-11-02T07:00:00 has no time zone; give it with an offset, e.g. +00:00",
    ),
]


# Every command a closed escalation refuses, with the action its refusal names.
AFTER_CLOSING: list[tuple[str, Callable[[UUID], c.Command]]] = [
    (
        "complete preparation",
        lambda e: c.CompletePreparation(escalation_id=e, cs_process_followed=True, tickets_reviewed=[]),
    ),
    ("assign a lead engineer", lambda e: c.AssignLeadEngineer(escalation_id=e, engineer="li", engineer_region="EMEA")),
    ("assign a product DRI", lambda e: c.AssignProductDri(escalation_id=e, product_dri="pat")),
    ("define scope", lambda e: c.DefineScope(escalation_id=e, **SCOPE)),
    (
        "mark an exit criterion met",
        lambda e: c.MeetExitCriterion(escalation_id=e, criterion_id="auth", evidence="logs"),
    ),
    ("raise an uncertainty", lambda e: c.RaiseUncertainty(escalation_id=e, question="q")),
    ("define a risk", lambda e: c.DefineRisk(escalation_id=e, uncertainty_id="U1", **RISK)),
    ("answer an uncertainty", lambda e: c.AnswerUncertainty(escalation_id=e, uncertainty_id="U1", answer="a")),
    ("post an update", lambda e: c.PostUpdate(escalation_id=e, **UPDATE)),
    ("mark progress stalled", lambda e: c.MarkStalled(escalation_id=e, reason="r", noticed_by="mia.manager")),
    ("resume progress", lambda e: c.ResumeProgress(escalation_id=e, note="n")),
    (
        "escalate to a specialist team",
        lambda e: c.EscalateToSpecialistTeam(escalation_id=e, team="t", reference="r", reason="r"),
    ),
    (
        "raise an emergency",
        lambda e: c.RaiseEmergency(escalation_id=e, ticket="ZD-9", out_of_hours=True, handled_by="oncall"),
    ),
    ("review emergency work", lambda e: c.ReviewEmergencyWork(escalation_id=e, emergency_id="E1", notes="n")),
    ("agree a sync cadence", lambda e: c.AgreeSyncCadence(escalation_id=e, cadence="weekly", agreed_with="dana.owner")),
    ("start monitoring", lambda e: c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="dana.owner")),
    ("pause updates", lambda e: c.PauseUpdates(escalation_id=e, resume_on=date(2026, 11, 3), reason="r")),
    ("interrupt monitoring", lambda e: c.InterruptMonitoring(escalation_id=e, reason="r")),
    ("close", lambda e: c.CloseEscalation(escalation_id=e, **CLOSING)),
    ("change the severity", lambda e: c.ChangeSeverity(escalation_id=e, severity="low", reason="r")),
    ("hand over a role", lambda e: c.HandOverRole(escalation_id=e, role="escalation_dri", successor="sam", reason="r")),
    ("add a helper", lambda e: c.AddHelper(escalation_id=e, engineer="tom", engineer_region="EMEA", reason="r")),
    ("remove a helper", lambda e: c.RemoveHelper(escalation_id=e, engineer="tom", reason="r")),
    ("record a risk", lambda e: c.RecordRisk(escalation_id=e, **RISK)),
    ("settle a risk", lambda e: c.SettleRisk(escalation_id=e, risk_id="R1", outcome="retired", note="n")),
]


@pytest.mark.parametrize(("action", "command"), AFTER_CLOSING, ids=[action for action, _ in AFTER_CLOSING])
def test_a_closed_escalation_refuses_each_command_naming_it(
    memory_service: EscalationService, action: str, command: Callable[[UUID], c.Command]
) -> None:
    escalation_id = in_phase(memory_service, "closed")

    with pytest.raises(IllegalTransitionError) as refused:
        memory_service.handle(command(escalation_id), actor="mia.manager")

    assert str(refused.value) == f"cannot {action}: {CLOSED}"


def test_removing_someone_who_is_not_a_helper_names_the_helpers_there(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "active")
    for engineer in ("ann", "bob"):
        memory_service.handle(
            c.AddHelper(escalation_id=escalation_id, engineer=engineer, engineer_region="EMEA", reason="r"), actor="m"
        )

    with pytest.raises(InvalidCommandError) as refused:
        memory_service.handle(c.RemoveHelper(escalation_id=escalation_id, engineer="carl", reason="r"), actor="m")

    assert str(refused.value) == "carl is not a backup or helper here; current ones: ann, bob"


def test_a_follow_up_action_keeps_its_ticket_trimmed_and_none_when_blank(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "retro")
    for ticket in (" ZD-10 ", "  ", None):
        memory_service.handle(
            c.AddFollowUpAction(
                escalation_id=escalation_id, what="w", owner="o", due_on=date(2026, 11, 3), ticket=ticket
            ),
            actor="m",
        )

    actions = memory_service.state(escalation_id)["follow_up_actions"]
    assert [action["ticket"] for action in actions.values()] == ["ZD-10", None, None]


@pytest.mark.parametrize(("phase", "setup", "command", "error", "message"), CASES, ids=[case[4][:70] for case in CASES])
def test_each_refusal_says_exactly_what_and_why(
    memory_service: EscalationService, phase: str, setup: Act | None, command: Act, error: type[Exception], message: str
) -> None:
    escalation_id = in_phase(memory_service, phase)
    if setup is not None:
        setup(memory_service, escalation_id)
    before = memory_service.history(escalation_id)

    with pytest.raises(error) as refused:
        command(memory_service, escalation_id)

    assert str(refused.value) == message
    assert memory_service.history(escalation_id) == before


def recorded(service: EscalationService, escalation_id: UUID) -> dict[str, Any]:
    """The newest event's own facts (what the ledger recorded), without the envelope every event has."""
    event = service.history(escalation_id)[-1]
    envelope = {"originator_id", "originator_version", "timestamp", "occurred_at", "actor", "class_version"}
    return {"event": type(event).__name__} | {k: v for k, v in vars(event).items() if k not in envelope}


def test_an_overdue_update_records_the_gap_the_cadence_and_who_leads() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    escalation_id = in_phase(service, "active")

    service.handle(overdue(escalation_id=escalation_id, working_days_overdue=0), actor="escalation-ledger")

    assert recorded(service, escalation_id) == {
        "event": "UpdateOverdue",
        "deadline_id": "d1",
        "due_at": NOW,
        "gap_started_at": NOW - timedelta(days=2),
        "working_days_overdue": 1,  # at least one: it is due
        "allowed_working_days": 1,
        "severity": "critical",
        "lead_engineer": "priya",
    }


def test_updates_resume_on_the_day_they_were_paused_until() -> None:
    clock = SteppingClock(NOW)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    escalation_id = in_phase(service, "monitoring")
    service.handle(c.PauseUpdates(escalation_id=escalation_id, resume_on=date(2026, 11, 3), reason="away"), actor="m")
    clock.now = datetime(2026, 11, 3, 0, 30, tzinfo=UTC)

    service.handle(overdue(escalation_id=escalation_id), actor="escalation-ledger")

    assert recorded(service, escalation_id)["event"] == "UpdateOverdue"


def test_a_stall_the_ledger_noticed_says_for_how_long_and_since_when(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "active")

    memory_service.handle(
        c.NoticeStall(escalation_id=escalation_id, deadline_id="d1", no_progress_since=NOW, working_days=2),
        actor="escalation-ledger",
    )

    assert recorded(memory_service, escalation_id) == {
        "event": "ProgressStalled",
        "reason": "no exit criterion met and no update reporting progress for 2 working days "
        "(since 2026-11-02T08:00:00+00:00)",
        "noticed_by": "escalation-ledger",
        "deadline_id": "d1",
    }


def test_a_monitoring_period_and_a_retrospective_are_each_recorded_once_whatever_their_deadline_id() -> None:
    clock = SteppingClock(NOW)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    monitored = in_phase(service, "monitoring")
    ends = service.state(monitored)["monitoring_ends_at"]
    clock.now = ends
    service.handle(c.EndMonitoringPeriod(escalation_id=monitored, deadline_id="d1", due_at=ends), actor="ledger")

    with pytest.raises(DeadlineAlreadyFiredError) as refused:
        service.handle(c.EndMonitoringPeriod(escalation_id=monitored, deadline_id="d2", due_at=ends), actor="ledger")
    assert str(refused.value) == (
        f"deadline d2 already recorded its event under another id: this monitoring period was recorded ended at "
        f"{ends.isoformat()}; nothing more to record"
    )

    clock.advance(days=1)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)  # one customer each
    closed = in_phase(service, "closed")
    closed_at = service.state(closed)["closed_at"]
    noticed_at = clock.now
    due = c.RecordRetrospectiveDue(
        escalation_id=closed, deadline_id="r1", closed_at=closed_at, working_days_since_closing=5
    )
    service.handle(due, actor="ledger")
    assert recorded(service, closed) == {
        "event": "RetrospectiveDue",
        "deadline_id": "r1",
        "closed_at": closed_at,
        "working_days_since_closing": 5,
    }
    clock.advance(hours=1)
    with pytest.raises(DeadlineAlreadyFiredError) as refused:
        service.handle(
            c.RecordRetrospectiveDue(
                escalation_id=closed, deadline_id="r2", closed_at=closed_at, working_days_since_closing=6
            ),
            actor="ledger",
        )
    assert str(refused.value) == (
        f"deadline r2 already recorded its event under another id: the retrospective was recorded due at "
        f"{noticed_at.isoformat()}; nothing more to record"
    )


def test_removing_a_blank_helper_says_which_field_is_empty(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "active")

    with pytest.raises(InvalidCommandError) as refused:
        memory_service.handle(c.RemoveHelper(escalation_id=escalation_id, engineer="  ", reason="r"), actor="m")

    assert str(refused.value) == "engineer must not be empty; say who or what it is"


def test_a_severity_change_records_what_it_was_and_why_there_is_no_product_dri(
    memory_service: EscalationService,
) -> None:
    escalation_id = memory_service.handle(
        c.OpenEscalation(**{**OPENING, "severity": "medium"}), actor="m"
    ).escalation_id

    memory_service.handle(
        c.ChangeSeverity(
            escalation_id=escalation_id,
            severity="high",
            reason="more users",
            product_dri_reason=" not product-related ",
        ),
        actor="m",
    )

    assert recorded(memory_service, escalation_id) == {
        "event": "SeverityChanged",
        "severity": "high",
        "previous_severity": "medium",
        "reason": "more users",
        "update_cadence": {"description": "several times a week", "max_working_days_between_updates": 2},
        "product_dri": None,
        "product_dri_reason": "not product-related",
    }


def test_progress_only_moves_forward_when_a_step_is_recorded_back_dated() -> None:
    clock = SteppingClock(NOW)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    active = in_phase(service, "active")
    clock.advance(days=2)
    latest = clock.now
    service.handle(c.PostUpdate(escalation_id=active, **UPDATE), actor="priya")  # no blockers: progress
    service.handle(c.MarkStalled(escalation_id=active, reason="stuck", noticed_by="mia.manager"), actor="m")
    earlier = NOW + timedelta(days=1)  # recorded now, happened yesterday

    service.handle(c.PostUpdate(escalation_id=active, **UPDATE, occurred_at=earlier), actor="priya")
    assert service.state(active)["progress_at"] == latest
    service.handle(c.ResumeProgress(escalation_id=active, note="moving", occurred_at=earlier), actor="m")
    assert service.state(active)["progress_at"] == latest
    service.handle(
        c.MeetExitCriterion(escalation_id=active, criterion_id="auth", evidence="e", occurred_at=earlier), actor="m"
    )
    assert service.state(active)["progress_at"] == latest
    service.handle(
        c.EscalateToSpecialistTeam(escalation_id=active, team="Net", reference="N-1", reason="r", occurred_at=earlier),
        actor="m",
    )
    assert service.state(active)["progress_at"] == latest

    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=(clock := SteppingClock(NOW)))
    monitored = in_phase(service, "monitoring")
    clock.advance(days=2)
    service.handle(c.PostUpdate(escalation_id=monitored, **UPDATE), actor="priya")
    service.handle(c.InterruptMonitoring(escalation_id=monitored, reason="again", occurred_at=earlier), actor="m")
    assert service.state(monitored)["progress_at"] == clock.now


def test_a_gap_already_recorded_overdue_under_another_deadline_id_is_refused_naming_both() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    escalation_id = in_phase(service, "active")
    service.handle(overdue(escalation_id=escalation_id), actor="escalation-ledger")

    with pytest.raises(DeadlineAlreadyFiredError) as refused:
        service.handle(overdue(escalation_id=escalation_id, deadline_id="d2"), actor="escalation-ledger")

    gap = (NOW - timedelta(days=2)).isoformat()
    assert str(refused.value) == (
        f"deadline d2 already recorded its event under another id: the gap since {gap} was recorded overdue at "
        f"{NOW.isoformat()} and no update came since; nothing more to record"
    )


# What a command records, fact by fact, where the facts are the command's own: given (the override
# reasons, trimmed), or the escalation's (who had the role, the action's owner and day).
RECORDED: list[tuple[str, str, Act | None, Act, dict[str, Any]]] = [
    (
        "an overdue follow-up action names it, its owner and its day",
        "retro",
        retro_with_two_actions,
        act(lambda e: c.RecordFollowUpActionOverdue(escalation_id=e, deadline_id="a2", action_id="A2")),
        {
            "event": "FollowUpActionOverdue",
            "deadline_id": "a2",
            "action_id": "A2",
            "owner": "priya",
            "due_on": "2026-11-09",
        },
    ),
    (
        "a lead outside the customer's region records why",
        "prepared",
        None,
        act(
            lambda e: c.AssignLeadEngineer(
                escalation_id=e, engineer="li", engineer_region="APAC", region_override_reason=" follows the sun "
            )
        ),
        {
            "event": "LeadEngineerAssigned",
            "engineer": "li",
            "engineer_region": "APAC",
            "backup_engineer": None,
            "handed_off_tickets": [],
            "region_override_reason": "follows the sun",
        },
    ),
    (
        "a handed-over role names who had it",
        "active",
        None,
        act(lambda e: c.HandOverRole(escalation_id=e, role="dri_manager", successor="sam.manager", reason="leave")),
        {
            "event": "RoleHandedOver",
            "role": "dri_manager",
            "previous": "mia.manager",
            "successor": "sam.manager",
            "reason": "leave",
        },
    ),
    (
        "a retrospective completed without notes records empty notes",
        "retro",
        None,
        act(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 2))),
        {"event": "RetrospectiveCompleted", "completed_on": "2026-11-02", "notes": ""},
    ),
    (
        "an emergency reviewed by someone else records why",
        "emergency",
        None,
        act(
            lambda e: c.ReviewEmergencyWork(
                escalation_id=e,
                emergency_id="E1",
                notes="Restarted the proxy",
                reviewed_by="sam.manager",
                reviewer_override_reason=" mia is away ",
            )
        ),
        {
            "event": "EmergencyWorkReviewed",
            "emergency_id": "E1",
            "reviewed_by": "sam.manager",
            "notes": "Restarted the proxy",
            "reviewer_override_reason": "mia is away",
        },
    ),
    (
        "closing early records the override and the checklist",
        "active",
        None,
        act(
            lambda e: c.CloseEscalation(
                escalation_id=e, **{**CLOSING, "exit_criteria_met": False}, override_reason=" opened twice "
            )
        ),
        {
            "event": "EscalationClosed",
            "outcome": "positive",
            "exit_criteria_met": False,
            "summary": "done",
            "closing_checklist_done": True,
            "customer_comfortable": True,
            "agreed_with_account_owner": True,
            "override_reason": "opened twice",
        },
    ),
]


@pytest.mark.parametrize(("case", "phase", "setup", "command", "facts"), RECORDED, ids=[r[0] for r in RECORDED])
def test_each_command_records_its_facts(
    memory_service: EscalationService, case: str, phase: str, setup: Act | None, command: Act, facts: dict[str, Any]
) -> None:
    escalation_id = in_phase(memory_service, phase)
    if setup is not None:
        setup(memory_service, escalation_id)

    command(memory_service, escalation_id)

    assert recorded(memory_service, escalation_id) == facts, case


def test_each_stall_is_counted(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "active")
    for _ in range(2):
        memory_service.handle(
            c.MarkStalled(escalation_id=escalation_id, reason="r", noticed_by="mia.manager"), actor="m"
        )
        memory_service.handle(c.ResumeProgress(escalation_id=escalation_id, note="n"), actor="m")

    assert memory_service.state(escalation_id)["stall_count"] == 2


def test_a_new_lead_keeps_the_one_before_and_an_update_with_blockers_shows_no_progress(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    escalation_id = in_phase(memory_service, "active")
    memory_service.handle(
        c.AssignLeadEngineer(escalation_id=escalation_id, engineer="li", engineer_region="EMEA"), actor="m"
    )
    progress = memory_service.state(escalation_id)["progress_at"]
    clock.advance(hours=3)

    memory_service.handle(c.PostUpdate(escalation_id=escalation_id, **(UPDATE | {"blockers": ["vendor"]})), actor="li")

    state = memory_service.state(escalation_id)
    assert (state["previous_leads"], state["lead_engineer"]) == (["priya"], "li")
    assert state["progress_at"] == progress


def test_a_just_opened_escalation_has_nothing_yet_that_later_steps_record(memory_service: EscalationService) -> None:
    state = memory_service.state(in_phase(memory_service, "opened"))

    assert {key: state[key] for key in LATER} == LATER


LATER: dict[str, Any] = {
    "cs_process_followed": False,
    "tickets_reviewed": [],
    "lead_engineer": None,
    "lead_region": None,
    "backup_engineer": None,
    "related_tickets": [],
    "unrelated_tickets": [],
    "exit_criteria": {},
    "phase": "opened",
}


def test_an_escalation_may_be_opened_back_to_exactly_its_horizon(clock: SteppingClock) -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    horizon = clock.now - timedelta(days=365)

    opened = service.handle(c.OpenEscalation(**OPENING, occurred_at=horizon), actor="m").escalation_id

    assert service.state(opened)["opened_at"] == horizon
    with pytest.raises(InvalidCommandError, match="is more than"):
        service.handle(
            c.OpenEscalation(**(OPENING | {"customer": "Initech"}), occurred_at=horizon - timedelta(seconds=1)),
            actor="m",
        )
