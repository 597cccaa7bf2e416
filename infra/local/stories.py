"""Realistic escalations, told through the application service: the demo and the tests share them.

The first is the handbook's own example: LDAP authentication fails, the team spends two days on
assumptions, and on the third day a customer comment reveals an LDAP proxy that was misconfigured.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from domain import commands as c
from domain.commands import CommandHandler, CommandResult


def ldap_proxy_story(service: CommandHandler, start: datetime, customer: str = "Globex") -> UUID:
    def at(days: float, hours: float = 0) -> datetime:
        return start + timedelta(days=days, hours=hours)

    r: CommandResult = service.handle(
        c.OpenEscalation(
            customer=customer,
            region="EMEA",
            account_owner="dana.owner",
            dri_manager="mia.manager",
            source="customer_success",
            severity="critical",
            summary="Users cannot sign in: LDAP authentication fails for every group",
            occurred_at=at(0),
        ),
        actor="mia.manager",
    )
    eid = r.escalation_id
    # Step 0: preparation.
    r = service.handle(
        c.CompletePreparation(
            escalation_id=eid,
            cs_process_followed=True,
            tickets_reviewed=["ZD-1001", "ZD-1002", "ZD-0987"],
            notes="Two LDAP tickets and one unrelated CI ticket",
            occurred_at=at(0, 1),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    # Step 1: a lead engineer in the customer's region, with their queue handed off.
    r = service.handle(
        c.AssignLeadEngineer(
            escalation_id=eid,
            engineer="priya.lead",
            engineer_region="EMEA",
            handed_off_tickets=["ZD-0950", "ZD-0951", "ZD-0960"],
            backup_engineer="tom.backup",
            occurred_at=at(0, 2),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.AssignProductDri(escalation_id=eid, product_dri="pat.product", occurred_at=at(0, 2)),
        actor="mia.manager",
        expected_version=r.version,
    )
    # Step 2: scope and exit criteria, agreed with the account owner.
    r = service.handle(
        c.DefineScope(
            escalation_id=eid,
            exit_criteria=[
                {"id": "auth", "description": "All users can sign in through LDAP"},
                {"id": "stable", "description": "No authentication errors for 48 hours"},
            ],
            related_tickets=["ZD-1001", "ZD-1002"],
            unrelated_tickets=["ZD-0987"],
            agreed_with="dana.owner",
            customer_acknowledged_delays=True,
            occurred_at=at(0, 3),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.AgreeSyncCadence(
            escalation_id=eid, cadence="daily 15:00 UTC", agreed_with="dana.owner", occurred_at=at(0, 3)
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.RaiseUncertainty(
            escalation_id=eid, question="What sits between the instance and the directory?", occurred_at=at(0, 4)
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    uncertainty = r.created or "U1"
    # Step 3: daily updates while the team works on assumptions.
    for day, progress in (
        (0, "Reproducing bind failures"),
        (1, "Checked bind DN and TLS settings; no change"),
    ):
        r = service.handle(
            c.PostUpdate(
                escalation_id=eid,
                progress=progress,
                status="investigating",
                current_tasks=[{"description": "Trace LDAP binds", "tickets": ["ZD-1001"]}],
                next_steps=["Collect LDAP debug logs from the customer"],
                next_steps_owner="priya.lead",
                blockers=[] if day == 0 else ["No access to the directory server"],
                occurred_at=at(day, 8),
            ),
            actor="priya.lead",
            expected_version=r.version,
        )
    r = service.handle(
        c.RaiseEmergency(
            escalation_id=eid, ticket="ZD-1010", out_of_hours=True, handled_by="oncall.amer", occurred_at=at(1, 20)
        ),
        actor="priya.lead",
        expected_version=r.version,
    )
    emergency = r.created or "E1"
    # Step 4: progress has stalled; escalate further to a specialised team.
    r = service.handle(
        c.MarkStalled(
            escalation_id=eid,
            reason="Two days without a lead on the cause",
            noticed_by="mia.manager",
            occurred_at=at(2, 1),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.EscalateToSpecialistTeam(
            escalation_id=eid,
            team="Authentication",
            reference="INFRA-4242",
            reason="Need eyes on the LDAP integration",
            occurred_at=at(2, 2),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.ReviewEmergencyWork(
            escalation_id=eid,
            emergency_id=emergency,
            notes="On-call restarted the auth service; no lasting effect",
            occurred_at=at(2, 3),
        ),
        actor="priya.lead",
        expected_version=r.version,
    )
    # The customer's comment on day three: there is an LDAP proxy, and it was misconfigured.
    r = service.handle(
        c.AnswerUncertainty(
            escalation_id=eid,
            uncertainty_id=uncertainty,
            answer="An LDAP proxy, misconfigured after an upgrade",
            occurred_at=at(2, 5),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.ResumeProgress(escalation_id=eid, note="Proxy found; fix under way", occurred_at=at(2, 6)),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.RaiseUncertainty(
            escalation_id=eid, question="Will the proxy's upgrade job break it again?", occurred_at=at(2, 7)
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.DefineRisk(
            escalation_id=eid,
            uncertainty_id=r.created or "U2",
            description="Proxy config is overwritten by the nightly upgrade job",
            likelihood="medium",
            impact="high",
            mitigation="Customer pins the proxy config and alerts on change",
            occurred_at=at(2, 9),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.MeetExitCriterion(
            escalation_id=eid,
            criterion_id="auth",
            evidence="Customer confirmed all groups sign in",
            occurred_at=at(2, 10),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.PostUpdate(
            escalation_id=eid,
            progress="Proxy fixed; all users sign in",
            status="recovering",
            current_tasks=[{"description": "Watch auth error rates", "tickets": ["ZD-1001", "ZD-1002"]}],
            next_steps=["Monitor for 48 hours"],
            next_steps_owner="priya.lead",
            blockers=[],
            occurred_at=at(2, 11),
        ),
        actor="priya.lead",
        expected_version=r.version,
    )
    r = service.handle(
        c.MeetExitCriterion(
            escalation_id=eid,
            criterion_id="stable",
            evidence="No auth errors in 48 hours of logs",
            occurred_at=at(4, 11),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    # Step 5: stable; monitor for an agreed period, then close.
    r = service.handle(
        c.StartMonitoring(escalation_id=eid, period_days=7, agreed_with="dana.owner", occurred_at=at(4, 12)),
        actor="mia.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.PostUpdate(
            escalation_id=eid,
            progress="Stable in monitoring",
            status="monitoring",
            current_tasks=[],
            next_steps=["Close after the monitoring period"],
            next_steps_owner="mia.manager",
            blockers=[],
            occurred_at=at(7, 9),
        ),
        actor="priya.lead",
        expected_version=r.version,
    )
    r = service.handle(
        c.CloseEscalation(
            escalation_id=eid,
            outcome="positive",
            exit_criteria_met=True,
            summary="Misconfigured LDAP proxy fixed; customer stable for a week",
            closing_checklist_done=True,
            customer_comfortable=True,
            agreed_with_account_owner=True,
            occurred_at=at(11, 13),
        ),
        actor="mia.manager",
        expected_version=r.version,
    )
    # Step 6: retrospective.
    service.handle(
        c.OpenRetrospective(escalation_id=eid, retro_reference="escalated-customers#311", occurred_at=at(11, 14)),
        actor="mia.manager",
        expected_version=r.version,
    )
    return eid


def quiet_escalation(
    service: CommandHandler, start: datetime, *, customer: str, region: str, lead: str, ticket: str | None = None
) -> UUID:
    """A smaller, still-active escalation: opened, staffed, scoped and updated once."""
    return updated_once(service, start, customer=customer, region=region, lead=lead, ticket=ticket).escalation_id


def updated_once(
    service: CommandHandler, start: datetime, *, customer: str, region: str, lead: str, ticket: str | None = None
) -> CommandResult:
    """The quiet escalation's commands; the last one's result, for a story that goes on from there.

    Its ticket is the customer's own unless one is given (to stage two escalations claiming one ticket)."""
    ticket = ticket or f"ZD-{customer.upper().replace(' ', '-')}-1"
    r = service.handle(
        c.OpenEscalation(
            customer=customer,
            region=region,
            account_owner=f"{customer.lower()}.owner",
            dri_manager="sam.manager",
            source="support_engineer",
            severity="high",
            summary=f"{customer}: repeated 502s on the web tier",
            occurred_at=start,
        ),
        actor="sam.manager",
    )
    eid = r.escalation_id
    r = service.handle(
        c.CompletePreparation(
            escalation_id=eid,
            cs_process_followed=True,
            tickets_reviewed=[ticket],
            occurred_at=start + timedelta(hours=1),
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.AssignLeadEngineer(
            escalation_id=eid, engineer=lead, engineer_region=region, occurred_at=start + timedelta(hours=2)
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.DefineScope(
            escalation_id=eid,
            exit_criteria=[{"id": "no-502", "description": "No 502s for a week"}],
            related_tickets=[ticket],
            unrelated_tickets=[],
            agreed_with=f"{customer.lower()}.owner",
            customer_acknowledged_delays=True,
            occurred_at=start + timedelta(hours=3),
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    return service.handle(
        c.PostUpdate(
            escalation_id=eid,
            progress="Load balancer timeouts identified",
            status="on track",
            current_tasks=[{"description": "Tune upstream timeouts", "tickets": [ticket]}],
            next_steps=["Apply new timeouts in staging"],
            next_steps_owner=lead,
            blockers=[],
            occurred_at=start + timedelta(hours=5),
        ),
        actor=lead,
        expected_version=r.version,
    )
