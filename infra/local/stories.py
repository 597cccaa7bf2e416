"""Realistic escalations, told through the application service: the demo and the tests share them.

The first is the handbook's own example: LDAP authentication fails, the team spends two days on
assumptions, and on the third day a customer comment reveals an LDAP proxy that was misconfigured.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from domain.service import CommandResult, EscalationService


def ldap_proxy_story(service: EscalationService, start: datetime, customer: str = "Globex") -> UUID:
    def at(days: float, hours: float = 0) -> datetime:
        return start + timedelta(days=days, hours=hours)

    r: CommandResult = service.open_escalation(
        actor="mia.manager",
        customer=customer,
        region="EMEA",
        account_owner="dana.owner",
        dri_manager="mia.manager",
        source="customer_success",
        severity="critical",
        summary="Users cannot sign in: LDAP authentication fails for every group",
        occurred_at=at(0),
    )
    eid = r.escalation_id
    # Step 0: preparation.
    r = service.complete_preparation(
        eid,
        r.version,
        actor="mia.manager",
        cs_process_followed=True,
        tickets_reviewed=["ZD-1001", "ZD-1002", "ZD-0987"],
        notes="Two LDAP tickets and one unrelated CI ticket",
        occurred_at=at(0, 1),
    )
    # Step 1: a lead engineer in the customer's region, with their queue handed off.
    r = service.assign_lead_engineer(
        eid,
        r.version,
        actor="mia.manager",
        engineer="priya.lead",
        engineer_region="EMEA",
        handed_off_tickets=["ZD-0950", "ZD-0951", "ZD-0960"],
        backup_engineer="tom.backup",
        occurred_at=at(0, 2),
    )
    r = service.assign_product_dri(eid, r.version, actor="mia.manager", product_dri="pat.product", occurred_at=at(0, 2))
    # Step 2: scope and exit criteria, agreed with the account owner.
    r = service.define_scope(
        eid,
        r.version,
        actor="mia.manager",
        exit_criteria=[
            {"id": "auth", "description": "All users can sign in through LDAP"},
            {"id": "stable", "description": "No authentication errors for 48 hours"},
        ],
        related_tickets=["ZD-1001", "ZD-1002"],
        unrelated_tickets=["ZD-0987"],
        agreed_with="dana.owner",
        customer_acknowledged_delays=True,
        occurred_at=at(0, 3),
    )
    r = service.agree_sync_cadence(
        eid,
        r.version,
        actor="mia.manager",
        cadence="daily 15:00 UTC",
        agreed_with="dana.owner",
        occurred_at=at(0, 3),
    )
    r = service.raise_uncertainty(
        eid,
        r.version,
        actor="mia.manager",
        question="What sits between the instance and the directory?",
        occurred_at=at(0, 4),
    )
    uncertainty = r.created or "U1"
    # Step 3: daily updates while the team works on assumptions.
    for day, progress in (
        (0, "Reproducing bind failures"),
        (1, "Checked bind DN and TLS settings; no change"),
    ):
        r = service.post_update(
            eid,
            r.version,
            actor="priya.lead",
            progress=progress,
            status="investigating",
            current_tasks=[{"description": "Trace LDAP binds", "tickets": ["ZD-1001"]}],
            next_steps=["Collect LDAP debug logs from the customer"],
            next_steps_owner="priya.lead",
            blockers=[] if day == 0 else ["No access to the directory server"],
            occurred_at=at(day, 8),
        )
    r = service.raise_emergency(
        eid,
        r.version,
        actor="priya.lead",
        ticket="ZD-1010",
        out_of_hours=True,
        handled_by="oncall.amer",
        occurred_at=at(1, 20),
    )
    emergency = r.created or "E1"
    # Step 4: progress has stalled; escalate further to a specialised team.
    r = service.mark_stalled(
        eid,
        r.version,
        actor="mia.manager",
        reason="Two days without a lead on the cause",
        noticed_by="mia.manager",
        occurred_at=at(2, 1),
    )
    r = service.escalate_to_specialist_team(
        eid,
        r.version,
        actor="mia.manager",
        team="Authentication",
        reference="INFRA-4242",
        reason="Need eyes on the LDAP integration",
        occurred_at=at(2, 2),
    )
    r = service.review_emergency_work(
        eid,
        r.version,
        actor="priya.lead",
        emergency_id=emergency,
        notes="On-call restarted the auth service; no lasting effect",
        occurred_at=at(2, 3),
    )
    # The customer's comment on day three: there is an LDAP proxy, and it was misconfigured.
    r = service.answer_uncertainty(
        eid,
        r.version,
        actor="mia.manager",
        uncertainty_id=uncertainty,
        answer="An LDAP proxy, misconfigured after an upgrade",
        occurred_at=at(2, 5),
    )
    r = service.resume_progress(
        eid, r.version, actor="mia.manager", note="Proxy found; fix under way", occurred_at=at(2, 6)
    )
    r = service.raise_uncertainty(
        eid,
        r.version,
        actor="mia.manager",
        question="Will the proxy's upgrade job break it again?",
        occurred_at=at(2, 7),
    )
    r = service.define_risk(
        eid,
        r.version,
        actor="mia.manager",
        uncertainty_id=r.created or "U2",
        description="Proxy config is overwritten by the nightly upgrade job",
        likelihood="medium",
        impact="high",
        mitigation="Customer pins the proxy config and alerts on change",
        occurred_at=at(2, 9),
    )
    r = service.meet_exit_criterion(
        eid,
        r.version,
        actor="mia.manager",
        criterion_id="auth",
        evidence="Customer confirmed all groups sign in",
        occurred_at=at(2, 10),
    )
    r = service.post_update(
        eid,
        r.version,
        actor="priya.lead",
        progress="Proxy fixed; all users sign in",
        status="recovering",
        current_tasks=[{"description": "Watch auth error rates", "tickets": ["ZD-1001", "ZD-1002"]}],
        next_steps=["Monitor for 48 hours"],
        next_steps_owner="priya.lead",
        blockers=[],
        occurred_at=at(2, 11),
    )
    r = service.meet_exit_criterion(
        eid,
        r.version,
        actor="mia.manager",
        criterion_id="stable",
        evidence="No auth errors in 48 hours of logs",
        occurred_at=at(4, 11),
    )
    # Step 5: stable; monitor for an agreed period, then close.
    r = service.start_monitoring(
        eid, r.version, actor="mia.manager", period_days=7, agreed_with="dana.owner", occurred_at=at(4, 12)
    )
    r = service.post_update(
        eid,
        r.version,
        actor="priya.lead",
        progress="Stable in monitoring",
        status="monitoring",
        current_tasks=[],
        next_steps=["Close after the monitoring period"],
        next_steps_owner="mia.manager",
        blockers=[],
        occurred_at=at(7, 9),
    )
    r = service.close_escalation(
        eid,
        r.version,
        actor="mia.manager",
        outcome="positive",
        exit_criteria_met=True,
        summary="Misconfigured LDAP proxy fixed; customer stable for a week",
        closing_checklist_done=True,
        customer_comfortable=True,
        agreed_with_account_owner=True,
        occurred_at=at(11, 13),
    )
    # Step 6: retrospective.
    service.open_retrospective(
        eid, r.version, actor="mia.manager", retro_reference="escalated-customers#311", occurred_at=at(11, 14)
    )
    return eid


def quiet_escalation(service: EscalationService, start: datetime, *, customer: str, region: str, lead: str) -> UUID:
    """A smaller, still-active escalation: opened, staffed, scoped and updated once."""
    return updated_once(service, start, customer=customer, region=region, lead=lead).escalation_id


def updated_once(
    service: EscalationService, start: datetime, *, customer: str, region: str, lead: str
) -> CommandResult:
    """The quiet escalation's commands; the last one's result, for a story that goes on from there."""
    r = service.open_escalation(
        actor="sam.manager",
        customer=customer,
        region=region,
        account_owner=f"{customer.lower()}.owner",
        dri_manager="sam.manager",
        source="support_engineer",
        severity="high",
        summary=f"{customer}: repeated 502s on the web tier",
        occurred_at=start,
    )
    eid = r.escalation_id
    r = service.complete_preparation(
        eid,
        r.version,
        actor="sam.manager",
        cs_process_followed=True,
        tickets_reviewed=["ZD-2001"],
        occurred_at=start + timedelta(hours=1),
    )
    r = service.assign_lead_engineer(
        eid,
        r.version,
        actor="sam.manager",
        engineer=lead,
        engineer_region=region,
        occurred_at=start + timedelta(hours=2),
    )
    r = service.define_scope(
        eid,
        r.version,
        actor="sam.manager",
        exit_criteria=[{"id": "no-502", "description": "No 502s for a week"}],
        related_tickets=["ZD-2001"],
        unrelated_tickets=[],
        agreed_with=f"{customer.lower()}.owner",
        customer_acknowledged_delays=True,
        occurred_at=start + timedelta(hours=3),
    )
    return service.post_update(
        eid,
        r.version,
        actor=lead,
        progress="Load balancer timeouts identified",
        status="on track",
        current_tasks=[{"description": "Tune upstream timeouts", "tickets": ["ZD-2001"]}],
        next_steps=["Apply new timeouts in staging"],
        next_steps_owner=lead,
        blockers=[],
        occurred_at=start + timedelta(hours=5),
    )
