"""The reporting facts, event by event, for the steps the stories leave out: a second stall, emergency
or risk, roles handed over, severity changes with and without a product DRI, events of older versions."""

from __future__ import annotations

from dataclasses import replace
from functools import reduce
from typing import Any

import pytest

from projections.facts import EscalationFacts, Mark, RecordedEvent, fold
from tests.unit.golden_stories import record_stories


@pytest.fixture
def opened() -> list[RecordedEvent]:
    """The quiet story up to its scope: opened, prepared, a lead, a scope (in APAC, high)."""
    quiet = record_stories().quiet
    return quiet[: next(i for i, e in enumerate(quiet) if e.name == "ScopeDefined") + 1]


def folded(opened: list[RecordedEvent], *steps: tuple[str, dict[str, Any]]) -> EscalationFacts:
    last = opened[-1]
    events = list(opened)
    for n, (name, data) in enumerate(steps, 1):
        at = f"2026-11-10T{n:02}:00:00Z"
        events.append(
            RecordedEvent(name, last.escalation_id, last.version + n, last.position + n, {"occurred_at": at, **data})
        )
    facts = reduce(fold, events, None)
    assert facts is not None
    return facts


def test_a_severity_change_names_the_product_dri_keeps_the_one_there_or_drops_it_for_a_reason(
    opened: list[RecordedEvent],
) -> None:
    cadence = {"update_cadence": {"description": "daily", "max_working_days_between_updates": 1}}
    named = ("SeverityChanged", {"severity": "critical", "product_dri": "pat", **cadence})
    kept = ("SeverityChanged", {"severity": "high", **cadence})
    dropped = ("SeverityChanged", {"severity": "critical", "product_dri_reason": "not product-related", **cadence})

    assert folded(opened, named).product_dri == "pat"
    assert folded(opened, named, kept).product_dri == "pat"
    assert folded(opened, named, kept, dropped).product_dri is None
    assert folded(opened, named).marks[-1] == Mark("2026-11-10T01:00:00Z", "cadence", "1")


def test_a_severity_change_recorded_before_events_carried_the_cadence_leaves_none(opened: list[RecordedEvent]) -> None:
    facts = folded(opened, ("SeverityChanged", {"severity": "low"}))

    assert (facts.severity, facts.marks[-1]) == ("low", Mark("2026-11-10T01:00:00Z", "cadence", None))


def test_each_role_handed_over_changes_that_role_alone(opened: list[RecordedEvent]) -> None:
    before = folded(opened)
    escalation_dri = folded(opened, ("RoleHandedOver", {"role": "escalation_dri", "successor": "erin"}))
    dri_manager = folded(opened, ("RoleHandedOver", {"role": "dri_manager", "successor": "sam"}))
    unknown = folded(opened, ("RoleHandedOver", {"role": "lead", "successor": "li"}))

    assert (escalation_dri.escalation_dri, escalation_dri.dri_manager) == ("erin", before.dri_manager)
    assert (dri_manager.escalation_dri, dri_manager.dri_manager) == (before.escalation_dri, "sam")
    assert (unknown.escalation_dri, unknown.dri_manager) == (before.escalation_dri, before.dri_manager)


def test_a_monitoring_period_recorded_before_it_had_a_length_counts_zero_days(opened: list[RecordedEvent]) -> None:
    facts = folded(opened, ("MonitoringStarted", {"agreed_with": "hooli.owner"}))

    assert facts.monitoring_periods[-1].period_days == 0


def test_an_interruption_without_a_period_changes_no_period(opened: list[RecordedEvent]) -> None:
    facts = folded(opened, ("MonitoringInterrupted", {"reason": "r"}))

    assert (facts.status, facts.monitoring_periods) == ("active", ())


def test_resuming_ends_only_the_last_stall(opened: list[RecordedEvent]) -> None:
    stall = ("ProgressStalled", {"reason": "r", "noticed_by": "mia"})
    resumed = ("ProgressResumed", {"note": "n"})

    facts = folded(opened, stall, resumed, stall, resumed)

    assert [(s.number, s.started_at, s.ended_at) for s in facts.stalls] == [
        (1, "2026-11-10T01:00:00Z", "2026-11-10T02:00:00Z"),
        (2, "2026-11-10T03:00:00Z", "2026-11-10T04:00:00Z"),
    ]


def test_a_review_and_a_settled_risk_change_only_the_one_named(opened: list[RecordedEvent]) -> None:
    def emergency(n: int) -> tuple[str, dict[str, Any]]:
        return "EmergencyRaised", {
            "emergency_id": f"E{n}",
            "ticket": f"ZD-{n}",
            "out_of_hours": True,
            "handled_by": "o",
        }

    def risk(n: int) -> tuple[str, dict[str, Any]]:
        return "RiskRecorded", {
            "risk_id": f"R{n}",
            "description": "d",
            "likelihood": "low",
            "impact": "high",
            "mitigation": "m",
        }

    facts = folded(
        opened,
        emergency(1),
        emergency(2),
        risk(1),
        risk(2),
        ("EmergencyWorkReviewed", {"emergency_id": "E2", "reviewed_by": "mia", "notes": "n"}),
        ("RiskSettled", {"risk_id": "R1", "outcome": "retired", "note": "n"}),
    )

    assert [(x.emergency_id, x.reviewed_at) for x in facts.emergencies] == [
        ("E1", None),
        ("E2", "2026-11-10T05:00:00Z"),
    ]
    assert [(r.risk_id, r.outcome, r.settled_at) for r in facts.risks] == [
        ("R1", "retired", "2026-11-10T06:00:00Z"),
        ("R2", None, None),
    ]


def test_a_new_lead_midway_keeps_the_escalation_active(opened: list[RecordedEvent]) -> None:
    facts = folded(opened, ("LeadEngineerAssigned", {"engineer": "li", "engineer_region": "APAC"}))

    assert (facts.status, facts.lead_engineer) == ("active", "li")


def test_a_redefined_scope_keeps_only_the_met_criteria_it_still_has(opened: list[RecordedEvent]) -> None:
    criteria = [{"id": "auth", "description": "a"}, {"id": "sync", "description": "s"}]
    scope = {"scope_version": 2, "exit_criteria": criteria, "related_tickets": [], "unrelated_tickets": []}
    met = ("ExitCriterionMet", {"criterion_id": "auth", "evidence": "e"})
    also = ("ExitCriterionMet", {"criterion_id": "sync", "evidence": "e"})
    narrowed = ("ScopeDefined", scope | {"scope_version": 3, "exit_criteria": criteria[1:]})

    facts = folded(opened, ("ScopeDefined", scope), met, also, narrowed)

    assert (facts.criteria, facts.criteria_met, facts.status) == (("sync",), ("sync",), "active")


def test_an_opening_recorded_before_escalation_dris_and_cadences_were_facts(opened: list[RecordedEvent]) -> None:
    first = opened[0]
    old = replace(
        first,
        data={k: v for k, v in first.data.items() if k not in {"escalation_dri", "update_cadence"}},
    )

    facts = fold(None, old)

    assert (facts.escalation_dri, facts.marks) == ("", (Mark(first.data["occurred_at"], "cadence", None),))
