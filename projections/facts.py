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
    return evolve(
        facts,
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


def _lead(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(
        facts,
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


def _monitoring(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(
        facts, status="monitoring", monitoring_started_at=facts.monitoring_started_at or e.data["occurred_at"]
    ), NOTHING


def _interrupted(facts: EscalationFacts, _: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, status="active"), NOTHING


def _closed(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, status="closed", closed_at=e.data["occurred_at"], outcome=e.data["outcome"]), NOTHING


def _severity(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    return evolve(facts, severity=e.data["severity"]), NOTHING


def _handed_over(facts: EscalationFacts, e: RecordedEvent) -> tuple[EscalationFacts, frozenset[str]]:
    if e.data["role"] != "dri_manager":
        return facts, NOTHING
    return evolve(facts, dri_manager=e.data["successor"]), NOTHING


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
    # What changes midway. The other new events (helpers, risks, follow-up actions, corrections)
    # still advance the version through `_ignore` until the reports use them.
    "SeverityChanged": _severity,
    "RoleHandedOver": _handed_over,
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
        }
    )


def passed_over(facts: EscalationFacts | None, event: RecordedEvent) -> EscalationFacts:
    """The facts moved past an event that could not be applied (it waits in the dead-letter topic)."""
    current = facts or EscalationFacts(escalation_id=event.escalation_id)
    if event.version != current.version + 1:
        return current
    return evolve(current, version=event.version, position=event.position, touched=frozenset({"escalations"}))
