"""Every rule the escalation keeps: each broken rule gives a clear error, and nothing is recorded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

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
    "actor": "mia.manager",
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
    lambda s, e: s.complete_preparation(e, None, actor="m", cs_process_followed=True, tickets_reviewed=[]),
    lambda s, e: s.assign_lead_engineer(e, None, actor="m", engineer="priya", engineer_region="EMEA"),
    lambda s, e: s.define_scope(e, None, actor="m", **SCOPE),
    lambda s, e: s.start_monitoring(e, None, actor="m", period_days=3, agreed_with="dana.owner"),
]
PHASE_STEPS = {"opened": 0, "prepared": 1, "lead_assigned": 2, "active": 3, "monitoring": 4}


def escalation_in(service: EscalationService, phase: str) -> UUID:
    escalation_id = service.open_escalation(**OPENING).escalation_id
    if phase == "closed":
        service.close_escalation(escalation_id, None, actor="m", override_reason="opened by mistake", **CLOSING)
        return escalation_id
    for step in STEPS[: PHASE_STEPS[phase]]:
        step(service, escalation_id)
    return escalation_id


CASES: list[tuple[str, str, Callable[[EscalationService, UUID], object], type[Exception], str]] = [
    (
        "lead before preparation",
        "opened",
        lambda s, e: s.assign_lead_engineer(e, None, actor="m", engineer="p", engineer_region="EMEA"),
        IllegalTransitionError,
        "complete preparation first",
    ),
    (
        "preparation twice",
        "prepared",
        lambda s, e: s.complete_preparation(e, None, actor="m", cs_process_followed=True, tickets_reviewed=[]),
        IllegalTransitionError,
        "already complete",
    ),
    (
        "lead outside the customer's region",
        "prepared",
        lambda s, e: s.assign_lead_engineer(e, None, actor="m", engineer="kenji", engineer_region="APAC"),
        InvalidCommandError,
        "give a region_override_reason",
    ),
    (
        "the same lead again",
        "lead_assigned",
        lambda s, e: s.assign_lead_engineer(e, None, actor="m", engineer="priya", engineer_region="EMEA"),
        IllegalTransitionError,
        "already the lead engineer",
    ),
    (
        "unknown region",
        "prepared",
        lambda s, e: s.assign_lead_engineer(e, None, actor="m", engineer="p", engineer_region="MARS"),
        InvalidCommandError,
        "use one of: AMER, EMEA, APAC",
    ),
    (
        "scope before a lead",
        "prepared",
        lambda s, e: s.define_scope(e, None, actor="m", **SCOPE),
        IllegalTransitionError,
        "assign the lead engineer first",
    ),
    (
        "scope not agreed with the account owner",
        "lead_assigned",
        lambda s, e: s.define_scope(e, None, actor="m", **{**SCOPE, "agreed_with": "bob"}),
        InvalidCommandError,
        "agree it with dana.owner",
    ),
    (
        "scope without the customer's acknowledgement",
        "lead_assigned",
        lambda s, e: s.define_scope(e, None, actor="m", **{**SCOPE, "customer_acknowledged_delays": False}),
        InvalidCommandError,
        "must acknowledge",
    ),
    (
        "scope without exit criteria",
        "lead_assigned",
        lambda s, e: s.define_scope(e, None, actor="m", **{**SCOPE, "exit_criteria": []}),
        InvalidCommandError,
        "at least one exit criterion",
    ),
    (
        "duplicate exit criterion ids",
        "lead_assigned",
        lambda s, e: s.define_scope(
            e, None, actor="m", **{**SCOPE, "exit_criteria": [{"id": "a", "description": "x"}] * 2}
        ),
        InvalidCommandError,
        "must be unique",
    ),
    (
        "a ticket both related and unrelated",
        "lead_assigned",
        lambda s, e: s.define_scope(e, None, actor="m", **{**SCOPE, "unrelated_tickets": ["ZD-1"]}),
        InvalidCommandError,
        "both related and unrelated",
    ),
    (
        "update before scope",
        "lead_assigned",
        lambda s, e: s.post_update(e, None, actor="priya", **UPDATE),
        IllegalTransitionError,
        "cannot post an update before scope is defined; define scope first",
    ),
    (
        "update without next steps",
        "active",
        lambda s, e: s.post_update(e, None, actor="priya", **{**UPDATE, "next_steps": []}),
        InvalidCommandError,
        "at least one next step",
    ),
    (
        "unknown exit criterion",
        "active",
        lambda s, e: s.meet_exit_criterion(e, None, actor="m", criterion_id="nope", evidence="x"),
        InvalidCommandError,
        "use one of: auth",
    ),
    (
        "resume without a stall",
        "active",
        lambda s, e: s.resume_progress(e, None, actor="m", note="x"),
        IllegalTransitionError,
        "not stalled",
    ),
    (
        "stall before scope",
        "prepared",
        lambda s, e: s.mark_stalled(e, None, actor="m", reason="r", noticed_by="m"),
        IllegalTransitionError,
        "assign the lead engineer and define scope first",
    ),
    (
        "specialist team during monitoring",
        "monitoring",
        lambda s, e: s.escalate_to_specialist_team(e, None, actor="m", team="t", reference="r", reason="x"),
        IllegalTransitionError,
        "interrupt monitoring first",
    ),
    (
        "in-hours emergency not with the lead",
        "active",
        lambda s, e: s.raise_emergency(e, None, actor="m", ticket="ZD-9", out_of_hours=False, handled_by="bob"),
        InvalidCommandError,
        "goes to the lead engineer priya",
    ),
    (
        "review an unknown emergency",
        "active",
        lambda s, e: s.review_emergency_work(e, None, actor="m", emergency_id="E7", notes="x"),
        InvalidCommandError,
        "not known",
    ),
    (
        "risk for an unknown uncertainty",
        "active",
        lambda s, e: s.define_risk(
            e,
            None,
            actor="m",
            uncertainty_id="U9",
            description="d",
            likelihood="low",
            impact="low",
            mitigation="m",
        ),
        InvalidCommandError,
        "not known",
    ),
    (
        "monitoring before scope",
        "lead_assigned",
        lambda s, e: s.start_monitoring(e, None, actor="m", period_days=3, agreed_with="dana.owner"),
        IllegalTransitionError,
        "define scope first",
    ),
    (
        "monitoring for zero days",
        "active",
        lambda s, e: s.start_monitoring(e, None, actor="m", period_days=0, agreed_with="dana.owner"),
        InvalidCommandError,
        "at least 1",
    ),
    (
        "close before monitoring",
        "active",
        lambda s, e: s.close_escalation(e, None, actor="m", **CLOSING),
        IllegalTransitionError,
        "start monitoring first, or give an override_reason",
    ),
    (
        "close before the monitoring period has passed",
        "monitoring",
        lambda s, e: s.close_escalation(e, None, actor="m", **CLOSING),
        IllegalTransitionError,
        "close after that",
    ),
    (
        "close without the customer comfortable",
        "monitoring",
        lambda s, e: s.close_escalation(
            e, None, actor="m", override_reason="x", **{**CLOSING, "customer_comfortable": False}
        ),
        IllegalTransitionError,
        "customer must be comfortable",
    ),
    (
        "retrospective before closing",
        "active",
        lambda s, e: s.open_retrospective(e, None, actor="m", retro_reference="r#1"),
        IllegalTransitionError,
        "close the escalation first",
    ),
    (
        "any change after closing",
        "closed",
        lambda s, e: s.post_update(e, None, actor="priya", **UPDATE),
        IllegalTransitionError,
        "the escalation is closed",
    ),
    (
        "pause updates outside monitoring",
        "active",
        lambda s, e: s.pause_updates(e, None, actor="m", resume_on=date(2026, 12, 1), reason="x"),
        IllegalTransitionError,
        "start monitoring first",
    ),
    (
        "a correction of an event that does not exist",
        "active",
        lambda s, e: s.record_correction(e, None, actor="m", corrects_version=99, reason="r", correction="c"),
        InvalidCommandError,
        "use 1 to 4",
    ),
    (
        "a blank actor",
        "active",
        lambda s, e: s.post_update(e, None, actor="  ", **UPDATE),
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


def test_a_product_dri_is_only_for_high_or_critical_escalations(memory_service: EscalationService) -> None:
    low = memory_service.open_escalation(**{**OPENING, "severity": "low"}).escalation_id

    with pytest.raises(IllegalTransitionError, match="only to high or critical"):
        memory_service.assign_product_dri(low, None, actor="m", product_dri="pat")

    assert len(memory_service.history(low)) == 1


def test_a_time_in_the_future_is_refused(memory_service: EscalationService, clock: SteppingClock) -> None:
    with pytest.raises(InvalidCommandError, match="is in the future"):
        memory_service.open_escalation(**OPENING, occurred_at=clock.now + timedelta(minutes=5))


def test_a_time_without_a_zone_is_refused(memory_service: EscalationService, clock: SteppingClock) -> None:
    with pytest.raises(InvalidCommandError, match="has no time zone"):
        memory_service.open_escalation(**OPENING, occurred_at=clock.now.replace(tzinfo=None))


def test_a_time_before_the_escalation_opened_is_refused(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    escalation_id = escalation_in(memory_service, "opened")

    with pytest.raises(InvalidCommandError, match="before the escalation was opened"):
        memory_service.complete_preparation(
            escalation_id,
            None,
            actor="m",
            cs_process_followed=True,
            tickets_reviewed=[],
            occurred_at=clock.now - timedelta(days=1),
        )


def test_a_stale_expected_version_is_a_conflict(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "prepared")

    with pytest.raises(VersionConflictError, match="is at version 2, not the expected 1; read it again"):
        memory_service.assign_lead_engineer(escalation_id, 1, actor="m", engineer="priya", engineer_region="EMEA")


def test_an_unknown_escalation_is_not_found(memory_service: EscalationService) -> None:
    with pytest.raises(EscalationNotFoundError, match="no escalation has id"):
        memory_service.post_update(uuid4(), None, actor="priya", **UPDATE)


def test_a_second_open_escalation_of_a_customer_needs_its_own_reason(
    memory_service: EscalationService,
) -> None:
    first = memory_service.open_escalation(**OPENING, reason="LDAP").escalation_id

    with pytest.raises(IllegalTransitionError, match="already has an open escalation for 'ldap'"):
        memory_service.open_escalation(**OPENING, reason="ldap")
    second = memory_service.open_escalation(**OPENING, reason="Backups").escalation_id

    assert memory_service.escalation(first).channel == "#a_globex_escalation"
    assert memory_service.escalation(second).channel == "#a_globex_escalation_backups"


def test_closing_frees_the_customer_channel(memory_service: EscalationService) -> None:
    first = escalation_in(memory_service, "closed")

    again = memory_service.open_escalation(**OPENING).escalation_id

    assert memory_service.escalation(again).channel == memory_service.escalation(first).channel


def test_the_channel_template_is_configuration(clock: SteppingClock) -> None:
    service = EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, channel_template="#esc-{customer}"
    )

    escalation_id = service.open_escalation(**{**OPENING, "customer": "Acme Corp"}).escalation_id

    assert service.escalation(escalation_id).channel == "#esc-acme-corp"


def test_the_update_cadence_table_is_configuration(clock: SteppingClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATIONS_UPDATE_CADENCES", '{"medium": ["twice a week", 3]}')
    settings = Settings()
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, cadences=settings.cadences)

    medium = service.open_escalation(**{**OPENING, "severity": "medium"}).escalation_id
    critical = service.open_escalation(**{**OPENING, "customer": "Acme", "severity": "critical"}).escalation_id

    assert service.escalation(medium).cadence.description == "twice a week"
    assert service.escalation(medium).cadence.max_working_days_between_updates == 3
    assert service.escalation(critical).cadence.description == "daily"


def test_a_copy_of_an_escalation_shares_no_mutable_state(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    original = memory_service.escalation(ldap_proxy_story(memory_service, clock.now - timedelta(days=14)))

    copied = copy.deepcopy(original)
    copied.uncertainties["U1"]["state"] = "changed"
    copied.related_tickets.append("ZD-9")
    copied.exit_criteria.clear()

    assert vars(copied).keys() == vars(original).keys()
    assert original.uncertainties["U1"]["state"] != "changed"
    assert "ZD-9" not in original.related_tickets
    assert original.exit_criteria
