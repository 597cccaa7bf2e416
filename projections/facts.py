"""The reporting facts of one escalation, folded from its events: pure, no I/O.

`fold(facts, event)` returns new facts; the same events in the same order always give the same
facts, so a rebuild from offset zero equals the live read model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import orjson

from domain.calendar import hours_between
from domain.uncertainties import OPEN, SETTLED_BY


@dataclass(frozen=True)
class RecordedEvent:
    """One escalation event as consumers see it: its type name, identity, and JSON data."""

    name: str
    escalation_id: str
    version: int
    position: int
    data: dict[str, Any]
    event_id: str = ""  # the event's own id (ce_id), stable across republishing

    @property
    def occurred_at(self) -> datetime:
        return at(self.data["occurred_at"])


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class Update:
    number: int
    occurred_at: str
    author: str
    lead: str | None


@dataclass(frozen=True)
class Stall:
    number: int
    started_at: str
    reason: str
    noticed_by: str
    ended_at: str | None = None


@dataclass(frozen=True)
class SpecialistEscalation:
    number: int
    team: str
    reference: str
    occurred_at: str
    hours_since_stall: float | None


@dataclass(frozen=True)
class Uncertainty:
    uncertainty_id: str
    question: str
    raised_at: str
    state: str = OPEN
    settled_at: str | None = None


@dataclass(frozen=True)
class Emergency:
    emergency_id: str
    ticket: str
    out_of_hours: bool
    handled_by: str
    raised_at: str
    reviewed_at: str | None = None


@dataclass(frozen=True)
class Mark:
    """A moment the update duty changed: who leads, which cadence, whether updates are owed."""

    at: str
    kind: str  # "lead", "cadence", "owed", "not_owed", "paused"
    value: str | None = None  # the lead, the cadence's working days, or the date a pause ends


@dataclass(frozen=True)
class MonitoringPeriod:
    number: int
    started_at: str
    period_days: int
    ended_at: str | None = None
    ended_by: str | None = None  # "interrupted" or "closed"


@dataclass(frozen=True)
class Helper:
    engineer: str
    engineer_region: str
    kind: str
    added_at: str
    removed_at: str | None = None


@dataclass(frozen=True)
class Risk:
    risk_id: str
    description: str
    likelihood: str
    impact: str
    recorded_at: str
    outcome: str | None = None
    settled_at: str | None = None


@dataclass(frozen=True)
class FollowUpAction:
    action_id: str
    what: str
    owner: str
    due_on: str
    ticket: str | None
    added_at: str
    outcome: str | None = None
    settled_at: str | None = None


@dataclass(frozen=True)
class EscalationFacts:
    escalation_id: str
    version: int = 0
    position: int = 0
    customer: str = ""
    region: str = ""
    severity: str = ""
    source: str = ""
    account_owner: str = ""
    dri_manager: str = ""
    channel: str = ""
    status: str = "opened"
    lead_engineer: str | None = None
    opened_at: str = ""
    lead_assigned_at: str | None = None
    scope_defined_at: str | None = None
    monitoring_started_at: str | None = None
    closed_at: str | None = None
    outcome: str | None = None
    last_update_at: str | None = None
    criteria: tuple[str, ...] = ()
    criteria_met: tuple[str, ...] = ()
    related_tickets: tuple[str, ...] = ()
    unrelated_tickets: tuple[str, ...] = ()
    updates: tuple[Update, ...] = ()
    stalls: tuple[Stall, ...] = ()
    specialist_escalations: tuple[SpecialistEscalation, ...] = ()
    uncertainties: tuple[Uncertainty, ...] = ()
    emergencies: tuple[Emergency, ...] = ()
    escalation_dri: str = ""
    lead_region: str | None = None
    lead_override_reason: str | None = None
    backup_engineer: str | None = None
    product_dri: str | None = None
    scope_versions: int = 0
    monitoring_periods: tuple[MonitoringPeriod, ...] = ()
    marks: tuple[Mark, ...] = ()
    helpers: tuple[Helper, ...] = ()
    risks: tuple[Risk, ...] = ()
    follow_up_actions: tuple[FollowUpAction, ...] = ()
    retrospective_completed_on: str | None = None
    corrections: int = 0
    touched: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def stalled(self) -> bool:
        return bool(self.stalls) and self.stalls[-1].ended_at is None

    def hours_between(self, start: str | None, end: str | None) -> float | None:
        if not start or not end:
            return None
        return hours_between(at(start), at(end))


class VersionGapError(ValueError):
    """An event arrived whose predecessor never did: the stream lost something upstream."""


def fold(facts: EscalationFacts | None, event: RecordedEvent) -> EscalationFacts:
    """The facts after one more event. Duplicates (an already-applied version) change nothing."""
    current = facts or EscalationFacts(escalation_id=event.escalation_id)
    if event.version <= current.version:
        return current
    if event.version != current.version + 1:
        msg = (
            f"escalation {event.escalation_id} jumps from version {current.version} to {event.version}; "
            f"events are missing upstream: republish from the relay (escalations relay --from-start)"
        )
        raise VersionGapError(msg)
    handler = HANDLERS.get(event.name, _ignore)
    changed, touched = handler(current, event)
    return evolve(changed, version=event.version, position=event.position, touched=touched | {"escalations"})


Handler = Callable[[EscalationFacts, RecordedEvent], tuple[EscalationFacts, frozenset[str]]]
NOTHING: frozenset[str] = frozenset()


def _ignore(facts: EscalationFacts, _: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return facts, NOTHING


def _opened(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    cadence = d.get("update_cadence", {}).get("max_working_days_between_updates")
    return evolve(
        facts,
        escalation_dri=d.get("escalation_dri", ""),
        marks=(Mark(d["occurred_at"], "cadence", _days(cadence)),),
        customer=d["customer"],
        region=d["region"],
        severity=d["severity"],
        source=d["source"],
        account_owner=d["account_owner"],
        dri_manager=d["dri_manager"],
        channel=d["channel"],
        opened_at=d["occurred_at"],
        status="opened",
    ), NOTHING


def _prepared(facts: EscalationFacts, _: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, status="prepared"), NOTHING


def _days(cadence: int | None) -> str | None:
    return None if cadence is None else str(cadence)


def _lead(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    return evolve(
        facts,
        lead_region=d.get("engineer_region"),
        lead_override_reason=d.get("region_override_reason"),
        backup_engineer=d.get("backup_engineer"),
        marks=(*facts.marks, Mark(d["occurred_at"], "lead", d["engineer"])),
        lead_engineer=e.data["engineer"],
        lead_assigned_at=facts.lead_assigned_at or e.data["occurred_at"],
        status="lead_assigned" if facts.status == "prepared" else facts.status,
    ), NOTHING


def _scope(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    criteria = tuple(c["id"] for c in e.data["exit_criteria"])
    return evolve(
        facts,
        criteria=criteria,
        criteria_met=tuple(c for c in facts.criteria_met if c in criteria),
        related_tickets=tuple(e.data["related_tickets"]),
        unrelated_tickets=tuple(e.data["unrelated_tickets"]),
        scope_defined_at=facts.scope_defined_at or e.data["occurred_at"],
        scope_versions=facts.scope_versions + 1,
        marks=facts.marks if facts.scope_defined_at else (*facts.marks, Mark(e.data["occurred_at"], "owed")),
        status="active" if facts.status == "lead_assigned" else facts.status,
    ), frozenset({"escalation_tickets"})


def _criterion_met(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, criteria_met=(*facts.criteria_met, e.data["criterion_id"])), NOTHING


def _update(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    update = Update(e.data["update_number"], e.data["occurred_at"], e.data["author"], facts.lead_engineer)
    return evolve(facts, updates=(*facts.updates, update), last_update_at=e.data["occurred_at"]), frozenset(
        {"escalation_updates"}
    )


def _stalled(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    stall = Stall(len(facts.stalls) + 1, e.data["occurred_at"], e.data["reason"], e.data["noticed_by"])
    return evolve(facts, stalls=(*facts.stalls, stall)), frozenset({"escalation_stalls"})


def _resumed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    if not facts.stalled:
        return facts, NOTHING
    ended = replace(facts.stalls[-1], ended_at=e.data["occurred_at"])
    return evolve(facts, stalls=(*facts.stalls[:-1], ended)), frozenset({"escalation_stalls"})


def _specialist(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    last_stall = facts.stalls[-1].started_at if facts.stalls else None
    escalation = SpecialistEscalation(
        len(facts.specialist_escalations) + 1,
        e.data["team"],
        e.data["reference"],
        e.data["occurred_at"],
        facts.hours_between(last_stall, e.data["occurred_at"]),
    )
    return evolve(facts, specialist_escalations=(*facts.specialist_escalations, escalation)), frozenset(
        {"escalation_specialist_teams"}
    )


def _uncertainty(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    raised = Uncertainty(e.data["uncertainty_id"], e.data["question"], e.data["occurred_at"])
    return evolve(facts, uncertainties=(*facts.uncertainties, raised)), frozenset({"escalation_uncertainties"})


def _settled(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    settled = tuple(
        replace(u, state=SETTLED_BY[e.name], settled_at=e.data["occurred_at"])
        if u.uncertainty_id == e.data["uncertainty_id"]
        else u
        for u in facts.uncertainties
    )
    return evolve(facts, uncertainties=settled), frozenset({"escalation_uncertainties"})


def _emergency(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    raised = Emergency(d["emergency_id"], d["ticket"], d["out_of_hours"], d["handled_by"], d["occurred_at"])
    return evolve(facts, emergencies=(*facts.emergencies, raised)), frozenset({"escalation_emergencies"})


def _reviewed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    reviewed = tuple(
        replace(x, reviewed_at=e.data["occurred_at"]) if x.emergency_id == e.data["emergency_id"] else x
        for x in facts.emergencies
    )
    return evolve(facts, emergencies=reviewed), frozenset({"escalation_emergencies"})


MONITORING: frozenset[str] = frozenset({"escalation_monitoring_periods"})


def _monitoring(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    started = e.data["occurred_at"]
    period = MonitoringPeriod(len(facts.monitoring_periods) + 1, started, e.data.get("period_days", 0))
    return evolve(
        facts,
        status="monitoring",
        monitoring_started_at=facts.monitoring_started_at or started,
        monitoring_periods=(*facts.monitoring_periods, period),
        marks=(*facts.marks, Mark(started, "not_owed")),
    ), MONITORING


def _end_monitoring(facts: EscalationFacts, at_: str, ended_by: str) -> tuple[MonitoringPeriod, ...]:
    periods = facts.monitoring_periods
    if not periods or periods[-1].ended_at is not None:
        return periods
    return (*periods[:-1], replace(periods[-1], ended_at=at_, ended_by=ended_by))


def _interrupted(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    moment = e.data["occurred_at"]
    return evolve(
        facts,
        status="active",
        monitoring_periods=_end_monitoring(facts, moment, "interrupted"),
        marks=(*facts.marks, Mark(moment, "owed")),
    ), MONITORING


def _paused(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, marks=(*facts.marks, Mark(e.data["occurred_at"], "paused", e.data["resume_on"]))), NOTHING


def _closed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    moment = e.data["occurred_at"]
    return evolve(
        facts,
        status="closed",
        closed_at=moment,
        outcome=e.data["outcome"],
        monitoring_periods=_end_monitoring(facts, moment, "closed"),
        marks=(*facts.marks, Mark(moment, "not_owed")),
    ), MONITORING


def _severity(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    cadence = d.get("update_cadence", {}).get("max_working_days_between_updates")
    return evolve(
        facts,
        severity=d["severity"],
        product_dri=d.get("product_dri") or (facts.product_dri if d.get("product_dri_reason") is None else None),
        marks=(*facts.marks, Mark(d["occurred_at"], "cadence", _days(cadence))),
    ), NOTHING


def _handed_over(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    role = e.data["role"]
    if role == "dri_manager":
        return evolve(facts, dri_manager=e.data["successor"]), NOTHING
    if role == "escalation_dri":
        return evolve(facts, escalation_dri=e.data["successor"]), NOTHING
    return facts, NOTHING


def _product_dri(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, product_dri=e.data["product_dri"]), NOTHING


HELPERS: frozenset[str] = frozenset({"escalation_helpers"})


def _helper_added(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    helper = Helper(d["engineer"], d["engineer_region"], d["kind"], d["occurred_at"])
    return evolve(facts, helpers=(*facts.helpers, helper)), HELPERS


def _helper_removed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    helpers = tuple(
        replace(h, removed_at=d["occurred_at"]) if h.engineer == d["engineer"] and h.removed_at is None else h
        for h in facts.helpers
    )
    return evolve(facts, helpers=helpers), HELPERS


RISKS: frozenset[str] = frozenset({"escalation_risks"})


def _risk_recorded(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    risk = Risk(d["risk_id"], d["description"], d["likelihood"], d["impact"], d["occurred_at"])
    return evolve(facts, risks=(*facts.risks, risk)), RISKS


def _risk_settled(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    risks = tuple(
        replace(r, outcome=d["outcome"], settled_at=d["occurred_at"]) if r.risk_id == d["risk_id"] else r
        for r in facts.risks
    )
    return evolve(facts, risks=risks), RISKS


ACTIONS: frozenset[str] = frozenset({"escalation_follow_up_actions"})


def _action_added(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    action = FollowUpAction(d["action_id"], d["what"], d["owner"], d["due_on"], d.get("ticket"), d["occurred_at"])
    return evolve(facts, follow_up_actions=(*facts.follow_up_actions, action)), ACTIONS


def _action_settled(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    d = e.data
    actions = tuple(
        replace(a, outcome=d["outcome"], settled_at=d["occurred_at"]) if a.action_id == d["action_id"] else a
        for a in facts.follow_up_actions
    )
    return evolve(facts, follow_up_actions=actions), ACTIONS


def _retro_completed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, retrospective_completed_on=e.data["completed_on"]), NOTHING


def _correction(facts: EscalationFacts, _: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    # Counted here; the projector refolds the escalation's corrected history (see consumers/reporting.py).
    return evolve(facts, corrections=facts.corrections + 1), NOTHING


HANDLERS: dict[str, Handler] = {
    "EscalationOpened": _opened,
    "PreparationCompleted": _prepared,
    "LeadEngineerAssigned": _lead,
    "ScopeDefined": _scope,
    "ExitCriterionMet": _criterion_met,
    "UpdatePosted": _update,
    "ProgressStalled": _stalled,
    "ProgressResumed": _resumed,
    "EscalatedToSpecialistTeam": _specialist,
    "UncertaintyRaised": _uncertainty,
    **dict.fromkeys(SETTLED_BY, _settled),
    "EmergencyRaised": _emergency,
    "EmergencyWorkReviewed": _reviewed,
    "MonitoringStarted": _monitoring,
    "MonitoringInterrupted": _interrupted,
    "EscalationClosed": _closed,
    "UpdatesPaused": _paused,
    "ProductDriAssigned": _product_dri,
    "SeverityChanged": _severity,
    "RoleHandedOver": _handed_over,
    "HelperAdded": _helper_added,
    "HelperRemoved": _helper_removed,
    "RiskRecorded": _risk_recorded,
    "RiskSettled": _risk_settled,
    "FollowUpActionAdded": _action_added,
    "FollowUpActionSettled": _action_settled,
    "RetrospectiveCompleted": _retro_completed,
    "CorrectionRecorded": _correction,
}


def evolve(facts: EscalationFacts, **changes: Any) -> EscalationFacts:
    """`dataclasses.replace` without its per-call walk over the fields: the fold's hot path."""
    if not changes.keys() <= _FIELDS:
        msg = f"EscalationFacts has no field {sorted(changes.keys() - _FIELDS)}"
        raise TypeError(msg)
    copy = object.__new__(EscalationFacts)
    copy.__dict__.update(facts.__dict__, **changes)
    return copy


_FIELDS = frozenset(f.name for f in fields(EscalationFacts))
_STORED_FIELDS = tuple(sorted(_FIELDS - {"touched"}))


def facts_to_json(facts: EscalationFacts) -> str:
    # orjson writes the nested dataclasses itself; sorted keys keep equal facts byte-identical.
    document = {name: getattr(facts, name) for name in _STORED_FIELDS}
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def facts_from_json(text: str) -> EscalationFacts:
    d = orjson.loads(text)
    return EscalationFacts(
        **{
            **d,
            "criteria": tuple(d["criteria"]),
            "criteria_met": tuple(d["criteria_met"]),
            "related_tickets": tuple(d["related_tickets"]),
            "unrelated_tickets": tuple(d["unrelated_tickets"]),
            "updates": tuple(Update(**u) for u in d["updates"]),
            "stalls": tuple(Stall(**s) for s in d["stalls"]),
            "specialist_escalations": tuple(SpecialistEscalation(**s) for s in d["specialist_escalations"]),
            "uncertainties": tuple(Uncertainty(**u) for u in d["uncertainties"]),
            "emergencies": tuple(Emergency(**x) for x in d["emergencies"]),
            "monitoring_periods": tuple(MonitoringPeriod(**m) for m in d["monitoring_periods"]),
            "marks": tuple(Mark(**m) for m in d["marks"]),
            "helpers": tuple(Helper(**h) for h in d["helpers"]),
            "risks": tuple(Risk(**r) for r in d["risks"]),
            "follow_up_actions": tuple(FollowUpAction(**a) for a in d["follow_up_actions"]),
        }
    )


def passed_over(facts: EscalationFacts | None, event: RecordedEvent) -> EscalationFacts:
    """The facts moved past an event that could not be applied (it waits in the dead-letter topic)."""
    current = facts or EscalationFacts(escalation_id=event.escalation_id)
    if event.version != current.version + 1:
        return current
    return evolve(current, version=event.version, position=event.position, touched=frozenset({"escalations"}))
