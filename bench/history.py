"""The seeded generator: realistic escalations, many customers, leads and regions, every event type.

One in ten is the handbook's full LDAP-proxy story (stalls, a specialist team, uncertainties, an
emergency, monitoring, closing, the retrospective); one in ten a bumpy one (a corrected update,
updates paused over a holiday, monitoring interrupted by a relapse, then closed); the rest are
smaller, still-active escalations with their own leads and customers. Together they record every
event type, in legal orders. The same seed always gives the same escalations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain import commands as c
from domain.commands import CommandHandler
from domain.service import EscalationService
from infra.local.stories import ldap_proxy_story, quiet_escalation, updated_once

LEADS = [f"lead{n}" for n in range(1, 41)]
# Everyone the stories act as, with the role the API needs them to have.
ACTORS = {"mia.manager": "manager", "sam.manager": "manager", "priya.lead": "engineer"} | dict.fromkeys(
    LEADS, "engineer"
)


def escalations(
    service: CommandHandler, count: int, seed: int = 7, first: int = 0, now: datetime | None = None
) -> Iterator[UUID]:
    """Record `count` escalations through the service (or anything with its command methods).

    They happen in the 30 days before `now` (the service's clock must not be earlier).
    """
    rng = random.Random(seed + first)
    start = (now or datetime.now(UTC)) - timedelta(days=30)
    for i in range(first, first + count):
        opened_at = start + timedelta(hours=rng.randint(0, 400))
        region, lead = rng.choice(["AMER", "EMEA", "APAC"]), rng.choice(LEADS)
        if i % 10 == 0:
            yield ldap_proxy_story(service, start + timedelta(minutes=i % 10_000), customer=f"Globex {i}")
        elif i % 10 == 5:
            yield bumpy_escalation(service, opened_at, customer=f"Customer {i}", region=region, lead=lead)
        else:
            yield quiet_escalation(service, opened_at, customer=f"Customer {i}", region=region, lead=lead)


def bumpy_escalation(service: CommandHandler, start: datetime, *, customer: str, region: str, lead: str) -> UUID:
    """An update corrected, updates paused in monitoring, monitoring interrupted by a relapse, then closed."""
    updated = updated_once(service, start, customer=customer, region=region, lead=lead)
    eid = updated.escalation_id

    def at(hours: float) -> datetime:
        return start + timedelta(hours=hours)

    r = service.handle(
        c.RecordCorrection(
            escalation_id=eid,
            corrects_version=updated.version,
            reason="wrong ticket in the update",
            correction="The timeouts are tracked in ZD-2002, not ZD-2001",
            occurred_at=at(6),
        ),
        actor="sam.manager",
        expected_version=updated.version,
    )
    for midway in (
        c.ChangeSeverity(escalation_id=eid, severity="medium", reason="workaround holds", occurred_at=at(7)),
        c.HandOverRole(
            escalation_id=eid, role="dri_manager", successor="mia.manager", reason="sam on leave", occurred_at=at(8)
        ),
        c.AddHelper(
            escalation_id=eid, engineer="helper.apac", engineer_region="APAC", reason="nights", occurred_at=at(9)
        ),
        c.RecordRisk(
            escalation_id=eid,
            description="The second balancer has the same timeouts",
            likelihood="medium",
            impact="high",
            mitigation="Check its config",
            occurred_at=at(10),
        ),
        c.SettleRisk(escalation_id=eid, risk_id="R1", outcome="happened", note="It did", occurred_at=at(100)),
        c.RemoveHelper(escalation_id=eid, engineer="helper.apac", reason="stable", occurred_at=at(79)),
        c.MeetExitCriterion(
            escalation_id=eid, criterion_id="no-502", evidence="A week without 502s", occurred_at=at(80)
        ),
    ):
        r = service.handle(midway, actor="sam.manager", expected_version=r.version)
    r = service.handle(
        c.StartMonitoring(
            escalation_id=eid, period_days=7, agreed_with=f"{customer.lower()}.owner", occurred_at=at(81)
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.PauseUpdates(escalation_id=eid, resume_on=at(45 * 24).date(), reason="customer holiday", occurred_at=at(82)),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.InterruptMonitoring(escalation_id=eid, reason="502s again", occurred_at=at(100)),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.PostUpdate(
            escalation_id=eid,
            progress="Relapse traced to a second load balancer",
            status="on track",
            current_tasks=[{"description": "Apply the timeouts to the second balancer", "tickets": ["ZD-2002"]}],
            next_steps=["Monitor again"],
            next_steps_owner=lead,
            blockers=[],
            occurred_at=at(102),
        ),
        actor=lead,
        expected_version=r.version,
    )
    r = service.handle(
        c.StartMonitoring(
            escalation_id=eid, period_days=7, agreed_with=f"{customer.lower()}.owner", occurred_at=at(104)
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    r = service.handle(
        c.CloseEscalation(
            escalation_id=eid,
            outcome="positive",
            exit_criteria_met=True,
            summary="Timeouts fixed on both balancers; stable through monitoring",
            closing_checklist_done=True,
            customer_comfortable=True,
            agreed_with_account_owner=True,
            occurred_at=at(300),
        ),
        actor="sam.manager",
        expected_version=r.version,
    )
    # The retrospective, its follow-ups, and a mistake it found.
    for after_closing in (
        c.OpenRetrospective(escalation_id=eid, retro_reference=f"retro#{eid.hex[:6]}", occurred_at=at(301)),
        c.AddFollowUpAction(
            escalation_id=eid, what="Audit balancer timeouts", owner=lead, due_on=at(400).date(), occurred_at=at(302)
        ),
        c.AddFollowUpAction(
            escalation_id=eid, what="Alert on 502s", owner=lead, due_on=at(400).date(), occurred_at=at(302)
        ),
        c.SettleFollowUpAction(
            escalation_id=eid, action_id="A2", outcome="dropped", note="exists", occurred_at=at(303)
        ),
        c.RecordCorrection(
            escalation_id=eid,
            corrects_version=updated.version,
            reason="posted from the wrong account",
            correction="The update was written by the helper",
            corrected_facts={"author": "helper.apac"},
            occurred_at=at(304),
        ),
        c.CompleteRetrospective(escalation_id=eid, completed_on=at(305).date(), occurred_at=at(305)),
    ):
        r = service.handle(after_closing, actor="sam.manager", expected_version=r.version)
    return eid


def record(
    service: CommandHandler, count: int, advance: Callable[[], None] = lambda: None, now: datetime | None = None
) -> list[UUID]:
    recorded = []
    for escalation_id in escalations(service, count, now=now):
        recorded.append(escalation_id)
        advance()
    return recorded


def events_of(service: EscalationService, recorded: list[UUID]) -> int:
    """How many escalation events these escalations hold (the customer-channel registry not counted)."""
    return sum(service.state(escalation_id)["version"] for escalation_id in recorded)
