"""Audit-ready timelines: one human-readable, hash-chained entry per event, and the retrospective.

Each entry's hash covers its event's canonical bytes and the previous entry's hash, so one changed,
missing or reordered entry breaks the chain from that point on. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import hours_between, working_days_between
from projections.facts import RecordedEvent

GENESIS = "0" * 64
UTC_ZONE = ZoneInfo("UTC")
# The local time shown beside UTC is the customer region's: the zones of the region calendars the
# composition root builds from the settings (`ESCALATIONS_REGION_CALENDARS`), passed in.
Zones = Mapping[str, ZoneInfo]


@dataclass(frozen=True)
class TimelineEntry:
    escalation_id: str
    version: int
    position: int
    event_id: str
    event_type: str
    actor: str
    region: str
    occurred_at_utc: str
    occurred_at_local: str
    summary: str
    tickets: str
    hash: str
    prev_hash: str


class ChainBrokenError(ValueError):
    """A stored timeline is not what its events give."""


def canonical_bytes(event: RecordedEvent) -> bytes:
    """The event as one stable byte string: sorted keys, no spaces, UTF-8."""
    document = {"type": event.name, "escalation_id": event.escalation_id, "version": event.version, "data": event.data}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: RecordedEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_bytes(event)).hexdigest()


def next_entry(previous: TimelineEntry | None, event: RecordedEvent, zones: Zones) -> TimelineEntry:
    region = event.data["region"] if event.name == "EscalationOpened" else (previous.region if previous else "")
    prev_hash = previous.hash if previous else GENESIS
    moment = event.occurred_at
    zone = zones.get(region, UTC_ZONE)
    return TimelineEntry(
        escalation_id=event.escalation_id,
        version=event.version,
        position=event.position,
        event_id=event.event_id,
        event_type=event.name,
        actor=event.data.get("actor", ""),
        region=region,
        occurred_at_utc=moment.astimezone(UTC_ZONE).strftime("%Y-%m-%d %H:%M UTC"),
        occurred_at_local=moment.astimezone(zone).strftime(f"%Y-%m-%d %H:%M {zone.key}"),
        summary=summarize(event),
        tickets=", ".join(tickets_of(event)),
        hash=chain_hash(prev_hash, event),
        prev_hash=prev_hash,
    )


def timeline(events: list[RecordedEvent], zones: Zones) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for event in events:
        entries.append(next_entry(entries[-1] if entries else None, event, zones))
    return entries


def first_difference(stored: list[TimelineEntry], expected: list[TimelineEntry]) -> str | None:
    """Names the first stored entry that is not what history gives, or None when all agree."""
    for index, want in enumerate(expected):
        if index >= len(stored):
            return f"entry v{want.version} ({want.event_type}) is missing from the stored timeline"
        have = stored[index]
        # The position is where the event sits in the log, not part of what happened.
        fields = [name for name, value in asdict(want).items() if name != "position" and asdict(have)[name] != value]
        if fields:
            return (
                f"entry v{have.version} ({have.event_type}) differs from history in {', '.join(fields)}; "
                f"expected v{want.version} ({want.event_type}) with hash {want.hash[:12]}"
            )
    if len(stored) > len(expected):
        extra = stored[len(expected)]
        return f"entry v{extra.version} ({extra.event_type}) is stored but not in history"
    return None


def tickets_of(event: RecordedEvent) -> list[str]:
    d = event.data
    found: list[str] = []
    for key in ("tickets_reviewed", "handed_off_tickets", "related_tickets", "unrelated_tickets"):
        found += d.get(key) or []
    corrected = d.get("corrected_facts") or {}  # a corrected ticket is touched again by its correction
    for key in ("ticket", "tickets_reviewed", "handed_off_tickets", "related_tickets", "unrelated_tickets"):
        value = corrected.get(key)
        found += [value] if isinstance(value, str) else value or []
    for task in d.get("current_tasks") or []:
        found += task["tickets"]
    if d.get("ticket"):
        found.append(d["ticket"])
    return list(dict.fromkeys(found))


def summarize(event: RecordedEvent) -> str:  # noqa: C901, PLR0911, PLR0912 - one line per event type
    d = event.data
    match event.name:
        case "EscalationOpened":
            return f"Escalation opened for {d['customer']} ({d['region']}, {d['severity']}): {d['summary']}"
        case "PreparationCompleted":
            followed = "followed" if d["cs_process_followed"] else "not followed"
            return (
                f"Preparation complete: CS escalation process {followed}; {len(d['tickets_reviewed'])} tickets reviewed"
            )
        case "LeadEngineerAssigned":
            handed = f"; handed off {len(d['handed_off_tickets'])} tickets" if d["handed_off_tickets"] else ""
            return f"Lead engineer set to {d['engineer']} ({d['engineer_region']}){handed}"
        case "ProductDriAssigned":
            return f"Product DRI set to {d['product_dri']}"
        case "ScopeDefined":
            return (
                f"Scope v{d['scope_version']} agreed with {d['agreed_with']}: {len(d['exit_criteria'])} exit criteria, "
                f"{len(d['related_tickets'])} related and {len(d['unrelated_tickets'])} unrelated tickets"
            )
        case "ExitCriterionMet":
            return f"Exit criterion {d['criterion_id']} met: {d['evidence']}"
        case "UncertaintyRaised":
            return f"Uncertainty {d['uncertainty_id']} raised: {d['question']}"
        case "RiskDefined":
            return (
                f"Uncertainty {d['uncertainty_id']} became a risk ({d['likelihood']} likelihood, {d['impact']} impact)"
            )
        case "UncertaintyAnswered":
            return f"Uncertainty {d['uncertainty_id']} answered: {d['answer']}"
        case "UpdatePosted":
            return f"Update {d['update_number']} in {d['channel']}: {d['status']}; {d['progress']}"
        case "ProgressStalled":
            return f"Progress stalled (noticed by {d['noticed_by']}): {d['reason']}"
        case "ProgressResumed":
            return f"Progress resumed: {d['note']}"
        case "EscalatedToSpecialistTeam":
            return f"Escalated further to {d['team']} ({d['reference']}): {d['reason']}"
        case "EmergencyRaised":
            hours = "out of hours" if d["out_of_hours"] else "in hours"
            return f"Emergency {d['emergency_id']} on {d['ticket']} ({hours}), handled by {d['handled_by']}"
        case "EmergencyWorkReviewed":
            override = f" ({d['reviewer_override_reason']})" if d.get("reviewer_override_reason") else ""
            return f"Emergency {d['emergency_id']} work reviewed by {d['reviewed_by']}{override}"
        case "SyncCadenceAgreed":
            return f"Sync cadence agreed with {d['agreed_with']}: {d['cadence']}"
        case "MonitoringStarted":
            override = f" (exit criteria unmet: {d['override_reason']})" if d.get("override_reason") else ""
            return f"Monitoring started for {d['period_days']} days, agreed with {d['agreed_with']}{override}"
        case "UpdatesPaused":
            return f"Updates paused until {d['resume_on']}: {d['reason']}"
        case "MonitoringInterrupted":
            return f"Monitoring interrupted: {d['reason']}"
        case "EscalationClosed":
            return f"Closed ({d['outcome']} outcome; exit criteria met: {'yes' if d['exit_criteria_met'] else 'no'})"
        case "RetrospectiveOpened":
            return f"Retrospective opened: {d['retro_reference']}"
        case "CorrectionRecorded":
            facts = d.get("corrected_facts") or {}
            changed = "; ".join(f"{name} now {value}" for name, value in sorted(facts.items()))
            what = f" {d['corrects_event']}" if d.get("corrects_event") else ""
            return f"Correction to v{d['corrects_version']}{what}: {d['correction']} ({d['reason']})" + (
                f" [{changed}]" if changed else ""
            )
        case "SeverityChanged":
            dri = f"; product DRI {d['product_dri']}" if d["product_dri"] else ""
            return (
                f"Severity {d['previous_severity']} -> {d['severity']} (updates {d['update_cadence']['description']})"
                f"{dri}: {d['reason']}"
            )
        case "RoleHandedOver":
            role = d["role"].replace("_", " ").capitalize()
            return f"{role} handed over from {d['previous']} to {d['successor']}: {d['reason']}"
        case "HelperAdded":
            return f"{d['engineer']} ({d['engineer_region']}) joined as {d['kind']}: {d['reason']}"
        case "HelperRemoved":
            return f"{d['engineer']} left the escalation: {d['reason']}"
        case "RiskRecorded":
            return (
                f"Risk {d['risk_id']} recorded ({d['likelihood']} likelihood, {d['impact']} impact): {d['description']}"
            )
        case "RiskSettled":
            return f"Risk {d['risk_id']} {d['outcome']}: {d['note']}"
        case "FollowUpActionAdded":
            return f"Follow-up {d['action_id']} for {d['owner']}, due {d['due_on']}: {d['what']}"
        case "FollowUpActionSettled":
            return f"Follow-up {d['action_id']} {d['outcome']}: {d['note']}"
        case "RetrospectiveCompleted":
            return f"Retrospective completed on {d['completed_on']}"
        case "UpdateOverdue":
            return (
                f"Update overdue since {d['due_at'][:16]} ({d['working_days_overdue']} working day(s) past the "
                f"{d['severity']} cadence of {d['allowed_working_days']}); lead {d['lead_engineer'] or 'none'}"
            )
        case "MonitoringPeriodEnded":
            return f"Monitoring period ended at {d['ended_at'][:16]}; ready to close"
        case "RetrospectiveDue":
            return f"Retrospective due: closed {d['working_days_since_closing']} working day(s) ago, none opened"
        case "FollowUpActionOverdue":
            return f"Follow-up {d['action_id']} for {d['owner']} overdue (due {d['due_on']})"
    return event.name


def marks(events: list[RecordedEvent], now: datetime) -> dict[str, Any]:
    """The derived marks of a timeline: key durations, gaps between updates, stalls, monitoring."""
    first: dict[str, datetime] = {}
    updates: list[datetime] = []
    stalls: list[tuple[datetime, datetime | None]] = []
    for event in events:
        first.setdefault(event.name, event.occurred_at)
        if event.name == "UpdatePosted":
            updates.append(event.occurred_at)
        elif event.name == "ProgressStalled":
            stalls.append((event.occurred_at, None))
        elif event.name == "ProgressResumed" and stalls and stalls[-1][1] is None:
            stalls[-1] = (stalls[-1][0], event.occurred_at)
    opened = first["EscalationOpened"]
    end = first.get("EscalationClosed", now)
    gaps = [
        {"from": a.isoformat(), "to": b.isoformat(), "working_days": working_days_between(a.date(), b.date())}
        for a, b in itertools.pairwise(updates)
        if working_days_between(a.date(), b.date()) > 1
    ]
    return {
        "hours_to_lead": round(hours_between(opened, first["LeadEngineerAssigned"]), 1)
        if "LeadEngineerAssigned" in first
        else None,
        "hours_to_scope": round(hours_between(opened, first["ScopeDefined"]), 1) if "ScopeDefined" in first else None,
        "update_gaps_over_one_working_day": gaps,
        "stalled_periods": [
            {"from": s.isoformat(), "to": e.isoformat() if e else None, "hours": round(hours_between(s, e or end), 1)}
            for s, e in stalls
        ],
        "further_escalations": [e.data["team"] for e in events if e.name == "EscalatedToSpecialistTeam"],
        "monitoring": {
            "from": first["MonitoringStarted"].isoformat(),
            "days": next(e.data["period_days"] for e in events if e.name == "MonitoringStarted"),
        }
        if "MonitoringStarted" in first
        else None,
        "total_hours": round(hours_between(opened, end), 1),
    }
