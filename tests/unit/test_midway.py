"""What changes midway, the rules that used to accept too much, and the retrospective's follow-ups.

Each broken rule is refused with an error that names the fix, and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from domain import commands as c
from domain.errors import EscalationNotFoundError, IllegalTransitionError, InvalidCommandError
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.test_invariants import CLOSING, OPENING, UPDATE, escalation_in

Act = Callable[[EscalationService, UUID], object]
RISK: dict[str, Any] = {
    "description": "The second balancer has the same timeouts",
    "likelihood": "low",
    "impact": "high",
    "mitigation": "Watch its error rate",
}


def in_phase(service: EscalationService, phase: str) -> UUID:
    """The invariant tests' phases, plus an escalation with an emergency, and one whose retro is open."""
    if phase == "emergency":
        escalation_id = escalation_in(service, "active")
        service.handle(
            c.RaiseEmergency(escalation_id=escalation_id, ticket="ZD-9", out_of_hours=True, handled_by="oncall"),
            actor="m",
        )
        return escalation_id
    if phase == "retro":
        escalation_id = escalation_in(service, "closed")
        service.handle(c.OpenRetrospective(escalation_id=escalation_id, retro_reference="retro#1"), actor="m")
        return escalation_id
    return escalation_in(service, phase)


CASES: list[tuple[str, str, Act, type[Exception], str]] = [
    (
        "monitoring while exit criteria are unmet",
        "active",
        lambda s, e: s.handle(c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="dana.owner"), actor="m"),
        IllegalTransitionError,
        "exit criteria auth are not met yet; meet them first .* or give an override_reason",
    ),
    (
        "closing with exit criteria met when the record says otherwise",
        "active",
        lambda s, e: s.handle(
            c.CloseEscalation(escalation_id=e, override_reason="customer asked", **CLOSING), actor="m"
        ),
        IllegalTransitionError,
        "recorded exit criteria auth are not met; record them as met first, or close with exit_criteria_met false",
    ),
    (
        "a sync cadence agreed with someone other than the account owner",
        "active",
        lambda s, e: s.handle(c.AgreeSyncCadence(escalation_id=e, cadence="daily", agreed_with="bob"), actor="m"),
        InvalidCommandError,
        "the sync cadence must be agreed with the account owner dana.owner, not bob; agree it with dana.owner",
    ),
    (
        "emergency work reviewed by neither the DRI manager nor the lead",
        "emergency",
        lambda s, e: s.handle(
            c.ReviewEmergencyWork(escalation_id=e, emergency_id="E1", notes="ok", reviewed_by="bob"), actor="bob"
        ),
        InvalidCommandError,
        "reviewed by the DRI manager or the lead engineer .mia.manager or priya., not bob; .* reviewer_override_reason",
    ),
    (
        "the same severity again",
        "active",
        lambda s, e: s.handle(c.ChangeSeverity(escalation_id=e, severity="critical", reason="r"), actor="m"),
        IllegalTransitionError,
        "already critical; give a different severity",
    ),
    (
        "raising to high without a product DRI",
        "low",
        lambda s, e: s.handle(c.ChangeSeverity(escalation_id=e, severity="high", reason="worse"), actor="m"),
        InvalidCommandError,
        "a high escalation needs a product DRI; name the product_dri, or give a product_dri_reason",
    ),
    (
        "a product DRI named when lowering the severity",
        "active",
        lambda s, e: s.handle(
            c.ChangeSeverity(escalation_id=e, severity="medium", reason="better", product_dri="pat"), actor="m"
        ),
        InvalidCommandError,
        "only to high or critical escalations, not medium; leave product_dri out",
    ),
    (
        "a role handed over to its holder",
        "active",
        lambda s, e: s.handle(
            c.HandOverRole(escalation_id=e, role="dri_manager", successor="mia.manager", reason="r"), actor="m"
        ),
        IllegalTransitionError,
        "mia.manager is already the dri_manager; name someone else",
    ),
    (
        "a role that cannot be handed over this way",
        "active",
        lambda s, e: s.handle(c.HandOverRole(escalation_id=e, role="lead", successor="x", reason="r"), actor="m"),
        InvalidCommandError,
        "role 'lead' is not valid; use one of: escalation_dri, dri_manager",
    ),
    (
        "the lead added as a helper",
        "active",
        lambda s, e: s.handle(
            c.AddHelper(escalation_id=e, engineer="priya", engineer_region="APAC", reason="r"), actor="m"
        ),
        InvalidCommandError,
        "priya is the lead engineer; a backup or helper is someone else",
    ),
    (
        "removing someone who does not help",
        "active",
        lambda s, e: s.handle(c.RemoveHelper(escalation_id=e, engineer="bob", reason="r"), actor="m"),
        InvalidCommandError,
        "bob is not a backup or helper here; current ones: none",
    ),
    (
        "settling an unknown risk",
        "active",
        lambda s, e: s.handle(c.SettleRisk(escalation_id=e, risk_id="R9", outcome="retired", note="n"), actor="m"),
        InvalidCommandError,
        "risk 'R9' is not known here; known risks: none yet",
    ),
    (
        "a follow-up action before the retrospective",
        "closed",
        lambda s, e: s.handle(
            c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 12, 1)), actor="m"
        ),
        IllegalTransitionError,
        "before the retrospective is opened; close the escalation and open its retrospective first",
    ),
    (
        "a follow-up action due before it was agreed",
        "retro",
        lambda s, e: s.handle(
            c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 1, 1)), actor="m"
        ),
        InvalidCommandError,
        "due_on 2026-01-01 is before the action was agreed; give a date from then on",
    ),
    (
        "settling an unknown follow-up action",
        "retro",
        lambda s, e: s.handle(
            c.SettleFollowUpAction(escalation_id=e, action_id="A3", outcome="done", note="n"), actor="m"
        ),
        InvalidCommandError,
        "follow-up action 'A3' is not known here; known actions: none yet",
    ),
    (
        "a retrospective completed in the future",
        "retro",
        lambda s, e: s.handle(c.CompleteRetrospective(escalation_id=e, completed_on=date(2027, 1, 1)), actor="m"),
        InvalidCommandError,
        "completed_on 2027-01-01 is in the future",
    ),
    (
        "a correction of a fact the event does not have",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(
                escalation_id=e, corrects_version=3, reason="r", correction="c", corrected_facts={"ticket": "ZD-1"}
            ),
            actor="m",
        ),
        InvalidCommandError,
        "LeadEngineerAssigned has no correctable fact 'ticket'; correct one of: backup_engineer, engineer",
    ),
    (
        "a correction of who recorded the event",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(
                escalation_id=e, corrects_version=3, reason="r", correction="c", corrected_facts={"actor": "x"}
            ),
            actor="m",
        ),
        InvalidCommandError,
        "has no correctable fact 'actor'",
    ),
    (
        "a corrected fact of the wrong type",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(
                escalation_id=e, corrects_version=2, reason="r", correction="c", corrected_facts={"tickets_reviewed": 3}
            ),
            actor="m",
        ),
        InvalidCommandError,
        "the corrected tickets_reviewed 3 is not of the type PreparationCompleted.tickets_reviewed has",
    ),
    (
        "a corrected time in the future",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(
                escalation_id=e,
                corrects_version=2,
                reason="r",
                correction="c",
                corrected_facts={"occurred_at": "2030-01-01T00:00:00+00:00"},
            ),
            actor="m",
        ),
        InvalidCommandError,
        "the corrected occurred_at 2030-01-01T00:00:00.00:00 is in the future",
    ),
    (
        "a corrected time that is not a time",
        "active",
        lambda s, e: s.handle(
            c.RecordCorrection(
                escalation_id=e, corrects_version=2, reason="r", correction="c", corrected_facts={"occurred_at": "soon"}
            ),
            actor="m",
        ),
        InvalidCommandError,
        "'soon' is not an ISO time; give one like",
    ),
]


@pytest.mark.parametrize(("phase", "command", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_midway_rule_is_refused_with_the_fix_and_nothing_is_recorded(
    memory_service: EscalationService, phase: str, command: Act, error: type[Exception], message: str
) -> None:
    if phase == "low":
        escalation_id = memory_service.handle(
            c.OpenEscalation(**{**OPENING, "severity": "low"}), actor="m"
        ).escalation_id
    else:
        escalation_id = in_phase(memory_service, phase)
    before = memory_service.history(escalation_id)

    with pytest.raises(error, match=message):
        command(memory_service, escalation_id)

    assert memory_service.history(escalation_id) == before


def test_an_override_reason_starts_monitoring_with_unmet_criteria_and_is_recorded(
    memory_service: EscalationService,
) -> None:
    escalation_id = escalation_in(memory_service, "active")

    memory_service.handle(
        c.StartMonitoring(escalation_id=escalation_id, period_days=3, agreed_with="dana.owner", override_reason="x"),
        actor="m",
    )

    last = memory_service.history(escalation_id)[-1]
    assert type(last).__name__ == "MonitoringStarted"
    assert last.override_reason == "x"  # type: ignore[attr-defined]


def test_severity_changes_set_the_cadence_from_that_moment_and_keep_the_product_dri_rule(
    memory_service: EscalationService,
) -> None:
    escalation_id = memory_service.handle(
        c.OpenEscalation(**{**OPENING, "severity": "medium"}), actor="m"
    ).escalation_id

    memory_service.handle(
        c.ChangeSeverity(escalation_id=escalation_id, severity="critical", reason="outage", product_dri="pat"),
        actor="m",
    )
    worse = memory_service.state(escalation_id)
    memory_service.handle(c.ChangeSeverity(escalation_id=escalation_id, severity="low", reason="fixed"), actor="m")
    better = memory_service.state(escalation_id)

    assert (worse["severity"], worse["cadence"].description, worse["product_dri"]) == ("critical", "daily", "pat")
    assert (better["severity"], better["cadence"].max_working_days_between_updates, better["product_dri"]) == (
        "low",
        None,
        None,
    )


def test_roles_are_handed_over_and_helpers_from_other_regions_come_and_go(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "active")

    for command in (
        c.HandOverRole(escalation_id=escalation_id, role="dri_manager", successor="sam.manager", reason="leave"),
        c.HandOverRole(escalation_id=escalation_id, role="escalation_dri", successor="sam.manager", reason="leave"),
        c.AddHelper(escalation_id=escalation_id, engineer="kenji", engineer_region="APAC", reason="follow the sun"),
        c.AddHelper(escalation_id=escalation_id, engineer="ana", engineer_region="AMER", kind="backup", reason="r"),
        c.RemoveHelper(escalation_id=escalation_id, engineer="kenji", reason="APAC night is covered"),
    ):
        memory_service.handle(command, actor="m")
    state = memory_service.state(escalation_id)

    assert (state["dri_manager"], state["escalation_dri"]) == ("sam.manager", "sam.manager")
    assert state["helpers"] == {"ana": {"region": "AMER", "kind": "backup"}}
    assert memory_service.engineers_on(escalation_id) == {"priya", "ana"}


def test_a_helper_is_removed_by_name_however_it_was_typed(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "active")
    memory_service.handle(
        c.AddHelper(escalation_id=escalation_id, engineer=" kenji ", engineer_region="APAC", reason="r"), actor="m"
    )

    memory_service.handle(c.RemoveHelper(escalation_id=escalation_id, engineer=" kenji", reason="done"), actor="m")

    assert memory_service.state(escalation_id)["helpers"] == {}


def test_a_helper_becomes_lead_only_after_leaving_the_helpers(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "active")
    memory_service.handle(
        c.AddHelper(escalation_id=escalation_id, engineer="tom", engineer_region="EMEA", reason="r"), actor="m"
    )
    lead = c.AssignLeadEngineer(escalation_id=escalation_id, engineer="tom", engineer_region="EMEA")

    with pytest.raises(IllegalTransitionError, match="tom helps here as helper; remove them as a helper first"):
        memory_service.handle(lead, actor="m")
    memory_service.handle(c.RemoveHelper(escalation_id=escalation_id, engineer="tom", reason="now lead"), actor="m")
    memory_service.handle(lead, actor="m")

    state = memory_service.state(escalation_id)
    assert (state["lead_engineer"], state["helpers"]) == ("tom", {})


def test_a_risk_lives_on_recorded_directly_or_from_an_uncertainty(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "active")
    direct = memory_service.handle(c.RecordRisk(escalation_id=escalation_id, **RISK), actor="m").created
    memory_service.handle(c.RaiseUncertainty(escalation_id=escalation_id, question="q"), actor="m")
    memory_service.handle(c.DefineRisk(escalation_id=escalation_id, uncertainty_id="U1", **RISK), actor="m")

    memory_service.handle(
        c.SettleRisk(escalation_id=escalation_id, risk_id="R1", outcome="mitigated", note="n"), actor="m"
    )
    memory_service.handle(
        c.SettleRisk(escalation_id=escalation_id, risk_id="R1", outcome="happened", note="n"), actor="m"
    )
    memory_service.handle(
        c.SettleRisk(escalation_id=escalation_id, risk_id="U1", outcome="retired", note="n"), actor="m"
    )

    assert direct == "R1"
    assert memory_service.state(escalation_id)["risks"] == {
        "R1": {**RISK, "state": "happened"},
        "U1": {**RISK, "state": "retired"},
    }
    with pytest.raises(IllegalTransitionError, match="risk R1 is already happened; record a new risk"):
        memory_service.handle(
            c.SettleRisk(escalation_id=escalation_id, risk_id="R1", outcome="retired", note="n"), actor="m"
        )


def test_the_retrospective_tracks_follow_up_actions_and_is_completed_once(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    escalation_id = in_phase(memory_service, "retro")
    action = c.AddFollowUpAction(
        escalation_id=escalation_id, what="w", owner="o", due_on=date(2026, 12, 1), ticket="T-1"
    )

    first = memory_service.handle(action, actor="m").created
    second = memory_service.handle(action, actor="m").created
    memory_service.handle(
        c.SettleFollowUpAction(escalation_id=escalation_id, action_id="A1", outcome="done", note="n"), actor="m"
    )
    memory_service.handle(
        c.CompleteRetrospective(escalation_id=escalation_id, completed_on=clock.now.date()), actor="m"
    )

    state = memory_service.state(escalation_id)
    assert (first, second) == ("A1", "A2")
    assert {key: a["state"] for key, a in state["follow_up_actions"].items()} == {"A1": "done", "A2": "open"}
    with pytest.raises(IllegalTransitionError, match="already completed on 2026-11-02; nothing to record"):
        memory_service.handle(
            c.CompleteRetrospective(escalation_id=escalation_id, completed_on=clock.now.date()), actor="m"
        )
    with pytest.raises(IllegalTransitionError, match="follow-up action A1 is already done; add a new action"):
        memory_service.handle(
            c.SettleFollowUpAction(escalation_id=escalation_id, action_id="A1", outcome="dropped", note="n"), actor="m"
        )


def test_a_closed_escalation_accepts_a_correction_with_its_corrected_facts(memory_service: EscalationService) -> None:
    escalation_id = escalation_in(memory_service, "closed")

    memory_service.handle(
        c.RecordCorrection(
            escalation_id=escalation_id,
            corrects_version=1,
            reason="typo",
            correction="the summary was mistyped",
            corrected_facts={"summary": "Sign-in fails for SSO users"},
        ),
        actor="m",
    )

    last = memory_service.history(escalation_id)[-1]
    assert (last.corrects_event, last.corrected_facts) == (  # type: ignore[attr-defined]
        "EscalationOpened",
        {"summary": "Sign-in fails for SSO users"},
    )


def test_opening_further_back_than_the_horizon_is_refused(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    with pytest.raises(InvalidCommandError, match=r"more than 365 days ago .* raise ESCALATIONS_OPENING_HORIZON_DAYS"):
        memory_service.handle(c.OpenEscalation(**OPENING, occurred_at=clock.now - timedelta(days=366)), actor="m")

    opened = memory_service.handle(c.OpenEscalation(**OPENING, occurred_at=clock.now - timedelta(days=364)), actor="m")

    assert opened.version == 1


def test_the_opening_horizon_is_configuration(clock: SteppingClock) -> None:
    service = EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, opening_horizon=timedelta(days=7)
    )

    with pytest.raises(InvalidCommandError, match="more than 7 days ago"):
        service.handle(c.OpenEscalation(**OPENING, occurred_at=clock.now - timedelta(days=8)), actor="m")


def test_a_time_with_any_offset_is_stored_as_utc(memory_service: EscalationService, clock: SteppingClock) -> None:
    tokyo = (clock.now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=9)))

    escalation_id = memory_service.handle(c.OpenEscalation(**OPENING, occurred_at=tokyo), actor="m").escalation_id

    stored = memory_service.history(escalation_id)[0].occurred_at
    assert stored == tokyo
    assert stored.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("customer", "channel"),
    [
        ("トヨタ", "#a_トヨタ_escalation"),
        ("Газпром Нефть", "#a_газпром-нефть_escalation"),
        ("Société Générale", "#a_société-générale_escalation"),
        ("\uff21\uff23\uff2d\uff25 Corp.", "#a_acme-corp_escalation"),
        ("A" * 120, "#a_" + "a" * 67 + "_escalation"),
    ],
)
def test_a_customer_name_in_any_script_gets_a_slack_channel_name(
    memory_service: EscalationService, customer: str, channel: str
) -> None:
    escalation_id = memory_service.handle(
        c.OpenEscalation(**{**OPENING, "customer": customer}), actor="m"
    ).escalation_id

    named = memory_service.state(escalation_id)["channel"]
    assert named == channel
    assert len(named.lstrip("#")) <= 80


def test_an_existing_customer_keeps_its_channel_record_under_the_old_key() -> None:
    from domain.channels import CustomerChannels  # noqa: PLC0415

    assert CustomerChannels.id_for("Globex") == CustomerChannels.id_for("GLOBEX!")
    assert CustomerChannels.id_for("トヨタ") != CustomerChannels.id_for("Газпром")


def test_the_state_at_an_occurred_time_uses_corrections_known_then(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    opened_at = clock.now
    escalation_id = escalation_in(memory_service, "active")  # v1 opened .. v4 scope, all at opened_at
    clock.advance(hours=5)
    memory_service.handle(c.PostUpdate(escalation_id=escalation_id, **UPDATE), actor="priya")  # v5, at +5h
    clock.advance(hours=1)
    recorded_before_correction = clock.now
    clock.advance(hours=1)
    memory_service.handle(
        c.RecordCorrection(
            escalation_id=escalation_id,
            corrects_version=5,
            reason="posted late in the ledger",
            correction="the update went out at +1h",
            corrected_facts={"occurred_at": (opened_at + timedelta(hours=1)).isoformat()},
        ),
        actor="m",
    )
    two_hours_in = opened_at + timedelta(hours=2)

    as_known_now = memory_service.state_as_occurred(escalation_id, two_hours_in)
    as_known_then = memory_service.state_as_occurred(escalation_id, two_hours_in, known_at=recorded_before_correction)

    assert as_known_now["updates_posted"] == 1
    assert as_known_now["last_update_at"] == opened_at + timedelta(hours=1)
    assert as_known_then["updates_posted"] == 0
    a_minute_before = opened_at - timedelta(minutes=1)
    with pytest.raises(EscalationNotFoundError) as too_early:
        memory_service.state_as_occurred(escalation_id, a_minute_before)
    assert str(too_early.value) == (
        f"escalation {escalation_id} was not yet open at {a_minute_before.isoformat()}; give a later time"
    )


def test_a_correction_after_closing_shows_in_the_timeline_and_the_retro_uses_the_corrected_facts(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    from infra.audit import history_as_recorded  # noqa: PLC0415
    from infra.bootstrap import build_region_zones  # noqa: PLC0415
    from infra.settings import Settings  # noqa: PLC0415
    from projections.retro import render_markdown, retrospective  # noqa: PLC0415
    from projections.timeline import timeline  # noqa: PLC0415

    escalation_id = in_phase(memory_service, "retro")
    memory_service.handle(
        c.RecordCorrection(
            escalation_id=escalation_id,
            corrects_version=1,
            reason="wrong account owner",
            correction="the account owner is dan",
            corrected_facts={"account_owner": "dan.owner"},
        ),
        actor="m",
    )
    memory_service.handle(
        c.AddFollowUpAction(escalation_id=escalation_id, what="Fix the runbook", owner="o", due_on=clock.now.date()),
        actor="m",
    )
    clock.advance(days=2)
    history = history_as_recorded(memory_service, escalation_id)

    entries = timeline(history, build_region_zones(Settings()))
    retro = retrospective(history, clock.now, entries)

    assert "Escalation opened" in entries[0].summary
    assert entries[-2].summary == (
        "Correction to v1 EscalationOpened: the account owner is dan (wrong account owner) [account_owner now dan.owner]"
    )
    assert retro["people"]["account_owner"] == "dan.owner"
    assert retro["follow_up_actions"][0]["overdue"] is True
    assert "- [ ] Fix the runbook: o, due 2026-11-02 (OVERDUE)" in render_markdown(retro)


def test_the_state_as_recorded_at_a_moment_includes_what_was_recorded_at_that_very_moment(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    opened_at = clock.now
    escalation_id = escalation_in(memory_service, "opened")
    clock.advance(hours=1)
    memory_service.handle(
        c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=True, tickets_reviewed=[]),
        actor="m",
    )

    then, now = (
        memory_service.state_as_of(escalation_id, opened_at),
        memory_service.state_as_of(escalation_id, clock.now),
    )

    assert (then["version"], then["phase"]) == (1, "opened")
    assert (now["version"], now["phase"]) == (2, "prepared")
    assert memory_service.state(escalation_id, version=1)["phase"] == "opened"
    with pytest.raises(Exception, match=r"was not yet recorded at .*; give a later time"):
        memory_service.state_as_of(escalation_id, opened_at - timedelta(seconds=1))


def test_the_state_as_occurred_at_the_opening_moment_as_known_at_it_is_the_opened_escalation(
    memory_service: EscalationService, clock: SteppingClock
) -> None:
    opened_at = clock.now
    escalation_id = escalation_in(memory_service, "opened")

    state = memory_service.state_as_occurred(escalation_id, opened_at, known_at=opened_at)

    assert state["version"] == 1
    with pytest.raises(Exception, match=r"was not yet open at .* as known at .*; give a later time"):
        memory_service.state_as_occurred(escalation_id, opened_at - timedelta(minutes=1), known_at=opened_at)


def test_the_history_of_an_unknown_escalation_is_refused_with_how_to_find_the_id(
    memory_service: EscalationService,
) -> None:
    with pytest.raises(Exception, match=r"no escalation has id .*; check the id"):
        memory_service.history(UUID(int=7))


def test_the_relays_topic_filter_selects_every_escalation_event_and_nothing_else(
    memory_service: EscalationService,
) -> None:
    escalation_id = escalation_in(memory_service, "active")  # the customer's channel register is saved too

    selected = memory_service.recorder.select_notifications(start=None, limit=100, topics=memory_service.event_topics())

    assert {n.originator_id for n in selected} == {escalation_id}
    assert len(selected) == memory_service.state(escalation_id)["version"]


def test_a_commands_result_gives_the_log_position_of_its_escalations_last_event_for_reading_it_back(
    memory_service: EscalationService,
) -> None:
    # Opening also saves the customer's channel register: the position to wait for is the escalation's.
    opened = memory_service.handle(c.OpenEscalation(**OPENING), actor="mia.manager")
    closed = memory_service.handle(
        c.CloseEscalation(escalation_id=opened.escalation_id, override_reason="opened by mistake", **CLOSING),
        actor="m",
    )

    log = memory_service.recorder.select_notifications(start=None, limit=100)
    own = [n.id for n in log if n.originator_id == opened.escalation_id]
    assert (opened.position, closed.position) == (own[0], own[-1])


def test_an_escalation_opened_with_an_id_chosen_by_the_caller_keeps_that_id(memory_service: EscalationService) -> None:
    chosen = UUID("6f1c1f55-6a6e-4b8e-9d1a-2f4f0b3c9a10")

    opened = memory_service.handle(c.OpenEscalation(escalation_id=chosen, **OPENING), actor="mia.manager")

    assert opened.escalation_id == chosen
    assert memory_service.state(chosen)["customer"] == "Globex"
