"""One account escalation walked through the handbook, step by step, on the pure aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.escalation import Escalation
from domain.events import (
    EmergencyRaised,
    EscalatedToSpecialistTeam,
    EscalationClosed,
    EscalationOpened,
    LeadEngineerAssigned,
    MonitoringStarted,
    ProgressStalled,
    RetrospectiveOpened,
    RiskDefined,
    ScopeDefined,
    UpdatePosted,
)
from domain.values import DEFAULT_CADENCES, Phase, Severity, Stamp

MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def stamp(actor: str, days: float = 0, hours: float = 0) -> Stamp:
    moment = MONDAY + timedelta(days=days, hours=hours)
    return Stamp(actor=actor, occurred_at=moment, recorded_at=moment)


def open_escalation() -> Escalation:
    return Escalation.open(
        stamp("mia.manager"),
        escalation_id=uuid4(),
        customer="Globex",
        region="EMEA",
        account_owner="dana.owner",
        dri_manager="mia.manager",
        source="customer_success",
        severity="critical",
        summary="Users cannot sign in",
        channel="#a_globex_escalation",
        cadence=DEFAULT_CADENCES[Severity.CRITICAL],
    )


def test_an_escalation_walks_from_opening_to_retrospective() -> None:
    # Customer Success opens the escalation for a customer in trouble.
    escalation = open_escalation()
    assert escalation.phase is Phase.OPENED
    assert escalation.cadence.description == "daily"

    # Step 0: the manager checks the CS process was followed and reviews recent tickets.
    escalation.complete_preparation(stamp("mia.manager", hours=1), cs_process_followed=True, tickets_reviewed=["ZD-1"])

    # Step 1: a lead engineer in the customer's region, with their tickets handed off.
    escalation.assign_lead_engineer(
        stamp("mia.manager", hours=2),
        engineer="priya",
        engineer_region="EMEA",
        handed_off_tickets=["ZD-7", "ZD-8"],
    )

    # Step 2: scope and exit criteria, agreed with the account owner; which tickets are related.
    escalation.define_scope(
        stamp("mia.manager", hours=3),
        exit_criteria=[{"id": "auth", "description": "All users sign in"}],
        related_tickets=["ZD-1"],
        unrelated_tickets=["ZD-2"],
        agreed_with="dana.owner",
        customer_acknowledged_delays=True,
    )
    assert escalation.phase is Phase.ACTIVE

    # The manager turns uncertainty into a well-defined risk.
    question = escalation.raise_uncertainty(stamp("mia.manager", hours=4), question="Is there a proxy?")
    escalation.define_risk(
        stamp("mia.manager", hours=5),
        uncertainty_id=question,
        description="Proxy may be misconfigured",
        likelihood="high",
        impact="high",
        mitigation="Ask for the architecture diagram",
    )

    # Step 3: a daily update in #a_globex_escalation.
    escalation.post_update(
        stamp("priya", hours=6),
        progress="Reproduced",
        status="investigating",
        current_tasks=[{"description": "Trace binds", "tickets": ["ZD-1"]}],
        next_steps=["Read proxy config"],
        next_steps_owner="priya",
        blockers=[],
    )

    # An out-of-hours emergency goes through the emergency process.
    escalation.raise_emergency(stamp("dana.owner", hours=14), ticket="ZD-9", out_of_hours=True, handled_by="oncall")

    # Step 4: progress stalls, so the manager escalates further to a specialised team.
    escalation.mark_stalled(stamp("mia.manager", days=1), reason="No progress in a day", noticed_by="mia.manager")
    escalation.escalate_to_specialist_team(
        stamp("mia.manager", days=1, hours=1),
        team="Authentication",
        reference="INFRA-1",
        reason="LDAP expertise",
    )
    escalation.resume_progress(stamp("mia.manager", days=2), note="Proxy fixed")
    escalation.meet_exit_criterion(stamp("priya", days=2, hours=1), criterion_id="auth", evidence="All sign in")

    # Step 5: the customer is stable; monitor for an agreed period, then close.
    escalation.start_monitoring(stamp("mia.manager", days=3), period_days=5, agreed_with="dana.owner")
    escalation.close(
        stamp("mia.manager", days=8),
        outcome="positive",
        exit_criteria_met=True,
        summary="Proxy fixed",
        closing_checklist_done=True,
        customer_comfortable=True,
        agreed_with_account_owner=True,
    )

    # Step 6: the retrospective.
    escalation.open_retrospective(stamp("mia.manager", days=8, hours=1), retro_reference="escalated-customers#1")

    recorded = [type(event) for event in escalation.collect_events()]
    for expected in (
        EscalationOpened,
        LeadEngineerAssigned,
        ScopeDefined,
        RiskDefined,
        UpdatePosted,
        EmergencyRaised,
        ProgressStalled,
        EscalatedToSpecialistTeam,
        MonitoringStarted,
        EscalationClosed,
        RetrospectiveOpened,
    ):
        assert expected in recorded
    assert escalation.phase is Phase.CLOSED
    assert escalation.retrospective == "escalated-customers#1"


def test_an_update_carries_the_channel_and_progress_toward_exit_criteria() -> None:
    escalation = open_escalation()
    escalation.complete_preparation(stamp("m", hours=1), cs_process_followed=True, tickets_reviewed=[])
    escalation.assign_lead_engineer(stamp("m", hours=1), engineer="priya", engineer_region="EMEA")
    escalation.define_scope(
        stamp("m", hours=1),
        exit_criteria=[{"id": "a", "description": "A"}, {"id": "b", "description": "B"}],
        related_tickets=[],
        unrelated_tickets=[],
        agreed_with="dana.owner",
        customer_acknowledged_delays=True,
    )
    escalation.meet_exit_criterion(stamp("m", hours=2), criterion_id="a", evidence="done")

    escalation.post_update(
        stamp("priya", hours=3),
        progress="Half way",
        status="on track",
        current_tasks=[],
        next_steps=["B"],
        next_steps_owner="priya",
        blockers=["Waiting on logs"],
        exit_criteria_change="B now includes staging",
    )

    update = escalation.collect_events()[-1]
    assert isinstance(update, UpdatePosted)
    assert update.channel == "#a_globex_escalation"
    assert (update.criteria_met, update.criteria_total) == (1, 2)
    assert update.author == "priya"
    assert update.exit_criteria_changed is True
    assert update.blockers == ["Waiting on logs"]


def test_redefining_scope_keeps_every_version_and_the_criteria_still_in_scope() -> None:
    escalation = open_escalation()
    escalation.complete_preparation(stamp("m"), cs_process_followed=True, tickets_reviewed=[])
    escalation.assign_lead_engineer(stamp("m"), engineer="priya", engineer_region="EMEA")
    scope = {
        "related_tickets": [],
        "unrelated_tickets": [],
        "agreed_with": "dana.owner",
        "customer_acknowledged_delays": True,
    }
    escalation.define_scope(
        stamp("m"), exit_criteria=[{"id": "a", "description": "A"}, {"id": "b", "description": "B"}], **scope
    )  # type: ignore[arg-type]
    escalation.meet_exit_criterion(stamp("m", hours=1), criterion_id="a", evidence="ok")
    escalation.meet_exit_criterion(stamp("m", hours=1), criterion_id="b", evidence="ok")

    escalation.define_scope(
        stamp("m", hours=2),
        exit_criteria=[{"id": "a", "description": "A"}, {"id": "c", "description": "C"}],
        **scope,
    )  # type: ignore[arg-type]

    scopes = [e for e in escalation.collect_events() if isinstance(e, ScopeDefined)]
    assert [s.scope_version for s in scopes] == [1, 2]
    assert escalation.criteria_met == {"a": "ok"}
    assert list(escalation.exit_criteria) == ["a", "c"]
