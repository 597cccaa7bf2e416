"""Every rule the escalation keeps: each broken rule gives a clear error, and nothing is recorded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import commands as c
from domain.errors import (
    EscalationNotFoundError,
    IllegalTransitionError,
    InvalidCommandError,
    VersionConflictError,
)
from domain.service import EscalationService
from infra.local.stories import ldap_proxy_story
from infra.settings import Settings
from tests.fakes import SteppingClock

OPENING: dict[str, Any] = {
    "customer": "Globex",
    "region": "EMEA",
    "account_owner": "dana.owner",
    "dri_manager": "mia.manager",
    "source": "customer_success",
    "severity": "critical",
    "summary": "Sign-in fails",
}
SCOPE: dict[str, Any] = {
    "exit_criteria": [{"id": "auth", "description": "All users sign in"}],
    "related_tickets": ["ZD-1"],
    "unrelated_tickets": ["ZD-2"],
    "agreed_with": "dana.owner",
    "customer_acknowledged_delays": True,
}
UPDATE: dict[str, Any] = {
    "progress": "p",
    "status": "s",
    "current_tasks": [],
    "next_steps": ["n"],
    "next_steps_owner": "priya",
    "blockers": [],
}
CLOSING: dict[str, Any] = {
    "outcome": "positive",
    "exit_criteria_met": True,
    "summary": "done",
    "closing_checklist_done": True,
    "customer_comfortable": True,
    "agreed_with_account_owner": True,
}

Steps = list[Callable[[EscalationService, UUID], object]]
STEPS: Steps = [
    lambda s, e: s.handle(
        c.CompletePreparation(escalation_id=e, cs_process_followed=True, tickets_reviewed=[]), actor="m"
    ),
    lambda s, e: s.handle(c.AssignLeadEngineer(escalation_id=e, engineer="priya", engineer_region="EMEA"), actor="m"),
    lambda s, e: s.handle(c.DefineScope(escalation_id=e, **SCOPE), actor="m"),
    lambda s, e: s.handle(c.MeetExitCriterion(escalation_id=e, criterion_id="auth", evidence="logs"), actor="m"),
    lambda s, e: s.handle(c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="dana.owner"), actor="m"),
]
PHASE_STEPS = {"opened": 0, "prepared": 1, "lead_assigned": 2, "active": 3, "criteria_met": 4, "monitoring": 5}


def escalation_in(service: EscalationService, phase: str) -> UUID:
    escalation_id = service.handle(c.OpenEscalation(**OPENING), actor="mia.manager").escalation_id
    if phase == "closed":
        service.handle(
            c.CloseEscalation(escalation_id=escalation_id, override_reason="opened by mistake", **CLOSING), actor="m"
        )
        return escalation_id
    for step in STEPS[: PHASE_STEPS[phase]]:
        step(service, escalation_id)
    return escalation_id


CASES: list[tuple[str, str, Callable[[EscalationService, UUID], object], type[Exception], str]] = [
    (
        "lead before preparation",
        "opened",
        lambda s, e: s.handle(c.AssignLeadEngineer(escalation_id=e, engineer="p", engineer_region="EMEA"), actor="m"),
        IllegalTransitionError,
        "complete preparation first",
    ),
    (
        "preparation twice",
        "prepared",
        lambda s, e: s.handle(
            c.CompletePreparation(escalation_id=e, cs_process_followed=True, tickets_reviewed=[]), actor="m"
        ),
        IllegalTransitionError,
        "already complete",
    ),
    (
        "lead outside the customer's region",
        "prepared",
        lambda s, e: s.handle(
            c.AssignLeadEngineer(escalation_id=e, engineer="kenji", engineer_region="APAC"), actor="m"
        ),
        InvalidCommandError,
        "give a region_override_reason",
    ),
    (
        "the same lead again",
        "lead_assigned",
        lambda s, e: s.handle(
            c.AssignLeadEngineer(escalation_id=e, engineer="priya", engineer_region="EMEA"), actor="m"
        ),
        IllegalTransitionError,
        "already the lead engineer",
    ),
    (
        "unknown region",
        "prepared",
        lambda s, e: s.handle(c.AssignLeadEngineer(escalation_id=e, engineer="p", engineer_region="MARS"), actor="m"),
        InvalidCommandError,
        "use one of: AMER, EMEA, APAC",
    ),
    (
        "scope before a lead",
        "prepared",
        lambda s, e: s.handle(c.DefineScope(escalation_id=e, **SCOPE), actor="m"),
        IllegalTransitionError,
        "assign the lead engineer first",
    ),
    (
        "scope not agreed with the account owner",
        "lead_assigned",
        lambda s, e: s.handle(c.DefineScope(escalation_id=e, **{**SCOPE, "agreed_with": "bob"}), actor="m"),
        InvalidCommandError,
        "agree it with dana.owner",
    ),
    (
        "scope without the customer's acknowledgement",
        "lead_assigned",
        lambda s, e: s.handle(
            c.DefineScope(escalation_id=e, **{**SCOPE, "customer_acknowledged_delays": False}), actor="m"
        ),
        InvalidCommandError,
        "must acknowledge",
    ),
    (
        "scope without exit criteria",
        "lead_assigned",
        lambda s, e: s.handle(c.DefineScope(escalation_id=e, **{**SCOPE, "exit_criteria": []}), actor="m"),
        InvalidCommandError,
        "at least one exit criterion",
    ),
    (
        "duplicate exit criterion ids",
        "lead_assigned",
        lambda s, e: s.handle(
            c.DefineScope(escalation_id=e, **{**SCOPE, "exit_criteria": [{"id": "a", "description": "x"}] * 2}),
            actor="m",
        ),
        InvalidCommandError,
        "must be unique",
    ),
    (
        "a ticket both related and unrelated",
        "lead_assigned",
        lambda s, e: s.handle(c.DefineScope(escalation_id=e, **{**SCOPE, "unrelated_tickets": ["ZD-1"]}), actor="m"),
        InvalidCommandError,
        "both related and unrelated",
    ),
    (
        "update before scope",
        "lead_assigned",
        lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **UPDATE), actor="priya"),
        IllegalTransitionError,
        "cannot post an update before scope is defined; define scope first",
    ),
    (
        "update without next steps",
        "active",
        lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **{**UPDATE, "next_steps": []}), actor="priya"),
        InvalidCommandError,
        "at least one next step",
    ),
    (
        "unknown exit criterion",
        "active",
        lambda s, e: s.handle(c.MeetExitCriterion(escalation_id=e, criterion_id="nope", evidence="x"), actor="m"),
        InvalidCommandError,
        "use one of: auth",
    ),
    (
        "resume without a stall",
        "active",
        lambda s, e: s.handle(c.ResumeProgress(escalation_id=e, note="x"), actor="m"),
        IllegalTransitionError,
        "not stalled",
    ),
    (
        "stall before scope",
        "prepared",
        lambda s, e: s.handle(c.MarkStalled(escalation_id=e, reason="r", noticed_by="m"), actor="m"),
        IllegalTransitionError,
        "assign the lead engineer and define scope first",
    ),
    (
        "specialist team during monitoring",
        "monitoring",
        lambda s, e: s.handle(
            c.EscalateToSpecialistTeam(escalation_id=e, team="t", reference="r", reason="x"), actor="m"
        ),
        IllegalTransitionError,
        "interrupt monitoring first",
    ),
    (
        "in-hours emergency not with the lead",
        "active",
        lambda s, e: s.handle(
            c.RaiseEmergency(escalation_id=e, ticket="ZD-9", out_of_hours=False, handled_by="bob"), actor="m"
        ),
        InvalidCommandError,
        "goes to the lead engineer priya",
    ),
    (
        "review an unknown emergency",
        "active",
        lambda s, e: s.handle(c.ReviewEmergencyWork(escalation_id=e, emergency_id="E7", notes="x"), actor="m"),
        InvalidCommandError,
        "not known",
    ),
    (
        "risk for an unknown uncertainty",
        "active",
        lambda s, e: s.handle(
            c.DefineRisk(
                escalation_id=e, uncertainty_id="U9", description="d", likelihood="low", impact="low", mitigation="m"
            ),
            actor="m",
        ),
        InvalidCommandError,
        "not known",
    ),
    (
        "monitoring before scope",
        "lead_assigned",
        lambda s, e: s.handle(c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="dana.owner"), actor="m"),
        IllegalTransitionError,
        "define scope first",
    ),
    (
        "monitoring not agreed with the account owner",
        "active",
        lambda s, e: s.handle(c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="bob"), actor="m"),
        InvalidCommandError,
        "the monitoring period must be agreed with the account owner dana.owner, not bob; agree it with dana.owner",
    ),
    (
        "a sync cadence not agreed with the account owner",
        "active",
        lambda s, e: s.handle(c.AgreeSyncCadence(escalation_id=e, cadence="daily", agreed_with="bob"), actor="m"),
        InvalidCommandError,
        "the sync cadence must be agreed with the account owner dana.owner, not bob",
    ),
    (
        "scope redefined during monitoring",
        "monitoring",
        lambda s, e: s.handle(c.DefineScope(escalation_id=e, **SCOPE), actor="m"),
        IllegalTransitionError,
        "cannot redefine scope during monitoring; interrupt monitoring first",
    ),
    (
        "monitoring for zero days",
        "active",
        lambda s, e: s.handle(c.StartMonitoring(escalation_id=e, period_days=0, agreed_with="dana.owner"), actor="m"),
        InvalidCommandError,
        "at least 1",
    ),
    (
        "close before monitoring",
        "active",
        lambda s, e: s.handle(c.CloseEscalation(escalation_id=e, **CLOSING), actor="m"),
        IllegalTransitionError,
        "start monitoring first, or give an override_reason",
    ),
    (
        "close before the monitoring period has passed",
        "monitoring",
        lambda s, e: s.handle(c.CloseEscalation(escalation_id=e, **CLOSING), actor="m"),
        IllegalTransitionError,
        "close after that",
    ),
    (
        "close without the customer comfortable",
        "monitoring",
        lambda s, e: s.handle(
            c.CloseEscalation(escalation_id=e, override_reason="x", **{**CLOSING, "customer_comfortable": False}),
            actor="m",
        ),
        IllegalTransitionError,
        "customer must be comfortable",
    ),
    (
        "close without the closing checklist",
        "monitoring",
        lambda s, e: s.handle(
            c.CloseEscalation(escalation_id=e, override_reason="x", **{**CLOSING, "closing_checklist_done": False}),
            actor="m",
        ),
        IllegalTransitionError,
        "cannot close yet: the closing checklist must be done; do that first",
    ),
    (
        "close without the account owner's agreement",
        "monitoring",
        lambda s, e: s.handle(
            c.CloseEscalation(escalation_id=e, override_reason="x", **{**CLOSING, "agreed_with_account_owner": False}),
            actor="m",
        ),
        IllegalTransitionError,
        "cannot close yet: closing must be agreed with the account owner",
    ),
    (
        "retrospective before closing",
        "active",
        lambda s, e: s.handle(c.OpenRetrospective(escalation_id=e, retro_reference="r#1"), actor="m"),
        IllegalTransitionError,
        "close the escalation first",
    ),
    (
        "any change after closing",
        "closed",
        lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **UPDATE), actor="priya"),
        IllegalTransitionError,
        "the escalation is closed",
    ),
    (
        "pause updates outside monitoring",
        "active",
        lambda s, e: s.handle(c.PauseUpdates(escalation_id=e, resume_on=date(2026, 12, 1), reason="x"), actor="m"),
        IllegalTransitionError,
        "start monitoring first",
    ),
    (
        "a correction of an event that does not exist",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(escalation_id=e, corrects_version=99, reason="r", correction="c"), actor="m"
        ),
        InvalidCommandError,
        "use 1 to 4",
    ),
    (
        "a blank actor",
        "active",
        lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **UPDATE), actor="  "),
        InvalidCommandError,
        "actor must not be empty",
    ),
]


@pytest.mark.parametrize(("phase", "command", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_rule_is_refused_with_a_clear_error_and_nothing_is_recorded(
    memory_service: EscalationService,
    phase: str,
    command: Callable[[EscalationService, UUID], object],
    error: type[Exception],
    message: str,
) -> None:
    escalation_id = escalation_in(memory_service, phase)
    before = memory_service.history(escalation_id)

    with pytest.raises(error, match=message):
        command(memory_service, escalation_id)

    assert memory_service.history(escalation_id) == before


def test_an_exit_criterion_is_met_once(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "active")
    memory_service.handle(
        c.MeetExitCriterion(escalation_id=escalation_id, criterion_id="auth", evidence="ok"), actor="m"
    )
    before = memory_service.history(escalation_id)

    with pytest.raises(IllegalTransitionError, match="exit criterion 'auth' is already met; nothing to record"):
        memory_service.handle(
            c.MeetExitCriterion(escalation_id=escalation_id, criterion_id="auth", evidence="again"), actor="m"
        )

    assert memory_service.history(escalation_id) == before


def test_a_product_dri_is_only_for_high_or_critical_escalations(memory_service: EscalationService) -> None:
    low = memory_service.handle(c.OpenEscalation(**{**OPENING, "severity": "low"}), actor="mia.manager").escalation_id

    with pytest.raises(IllegalTransitionError, match="only to high or critical"):
        memory_service.handle(c.AssignProductDri(escalation_id=low, product_dri="pat"), actor="m")

    assert len(memory_service.history(low)) == 1


def test_a_time_in_the_future_is_refused(memory_service: EscalationService, clock: SteppingClock) -> None:
    with pytest.raises(InvalidCommandError, match="is in the future"):
        memory_service.handle(
            c.OpenEscalation(**OPENING, occurred_at=clock.now + timedelta(minutes=5)), actor="mia.manager"
        )


def test_a_time_without_a_zone_is_refused(memory_service: EscalationService, clock: SteppingClock) -> None:
    with pytest.raises(InvalidCommandError, match="has no time zone"):
        memory_service.handle(
            c.OpenEscalation(**OPENING, occurred_at=clock.now.replace(tzinfo=None)), actor="mia.manager"
        )


def test_a_time_before_the_escalation_opened_is_refused(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    escalation_id = escalation_in(memory_service, "opened")

    with pytest.raises(InvalidCommandError, match="before the escalation was opened"):
        memory_service.handle(
            c.CompletePreparation(
                escalation_id=escalation_id,
                cs_process_followed=True,
                tickets_reviewed=[],
                occurred_at=clock.now - timedelta(days=1),
            ),
            actor="m",
        )


def test_a_stale_expected_version_is_a_conflict(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "prepared")

    with pytest.raises(VersionConflictError, match="is at version 2, not the expected 1; read it again"):
        memory_service.handle(
            c.AssignLeadEngineer(escalation_id=escalation_id, engineer="priya", engineer_region="EMEA"),
            actor="m",
            expected_version=1,
        )


def test_an_unknown_escalation_is_not_found(memory_service: EscalationService) -> None:
    with pytest.raises(EscalationNotFoundError, match="no escalation has id"):
        memory_service.handle(c.PostUpdate(escalation_id=uuid4(), **UPDATE), actor="priya")


def test_the_history_of_an_unknown_escalation_names_the_id(memory_service: EscalationService) -> None:
    unknown = uuid4()

    with pytest.raises(EscalationNotFoundError, match=f"no escalation has id {unknown}"):
        memory_service.history(unknown)


def test_only_closing_frees_the_channel_every_other_step_keeps_it(memory_service: EscalationService) -> None:
    active = escalation_in(memory_service, "active")
    memory_service.handle(c.PostUpdate(escalation_id=active, **UPDATE), actor="priya")

    with pytest.raises(InvalidCommandError, match="customer Globex already has an open escalation; give a reason"):
        memory_service.handle(c.OpenEscalation(**OPENING), actor="mia.manager")


def test_a_second_open_escalation_of_a_customer_needs_its_own_reason(
    memory_service: EscalationService,
) -> None:
    first = memory_service.handle(c.OpenEscalation(**OPENING, reason="LDAP"), actor="mia.manager").escalation_id

    with pytest.raises(IllegalTransitionError, match="already has an open escalation for 'ldap'"):
        memory_service.handle(c.OpenEscalation(**OPENING, reason="ldap"), actor="mia.manager")
    second = memory_service.handle(c.OpenEscalation(**OPENING, reason="Backups"), actor="mia.manager").escalation_id

    assert memory_service.state(first)["channel"] == "#a_globex_escalation"
    assert memory_service.state(second)["channel"] == "#a_globex_escalation_backups"


def test_closing_frees_the_customer_channel(memory_service: EscalationService) -> None:
    first = escalation_in(memory_service, "closed")

    again = memory_service.handle(c.OpenEscalation(**OPENING), actor="mia.manager").escalation_id

    assert memory_service.state(again)["channel"] == memory_service.state(first)["channel"]


def test_the_channel_template_is_configuration(clock: SteppingClock) -> None:
    service = EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, channel_template="#esc-{customer}"
    )

    escalation_id = service.handle(
        c.OpenEscalation(**{**OPENING, "customer": "Acme Corp"}), actor="mia.manager"
    ).escalation_id

    assert service.state(escalation_id)["channel"] == "#esc-acme-corp"


def test_the_update_cadence_table_is_configuration(clock: SteppingClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATIONS_UPDATE_CADENCES", '{"medium": ["twice a week", 3]}')
    settings = Settings()
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, cadences=settings.cadences)

    medium = service.handle(c.OpenEscalation(**{**OPENING, "severity": "medium"}), actor="mia.manager").escalation_id
    critical = service.handle(
        c.OpenEscalation(**{**OPENING, "customer": "Acme", "severity": "critical"}), actor="mia.manager"
    ).escalation_id

    assert service.state(medium)["cadence"].description == "twice a week"
    assert service.state(medium)["cadence"].max_working_days_between_updates == 3
    assert service.state(critical)["cadence"].description == "daily"


def test_a_copy_of_an_escalation_shares_no_mutable_state(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    original = memory_service._load(ldap_proxy_story(memory_service, clock.now - timedelta(days=14)))

    copied = copy.deepcopy(original)
    copied.uncertainties["U1"]["state"] = "changed"
    copied.related_tickets.append("ZD-9")
    copied.exit_criteria.clear()

    assert vars(copied).keys() == vars(original).keys()
    assert original.uncertainties["U1"]["state"] != "changed"
    assert "ZD-9" not in original.related_tickets
    assert original.exit_criteria
