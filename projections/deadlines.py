"""The watcher's schedule: one escalation's events folded into the deadlines it has now. Pure, no I/O.

`fold(schedule, event)` keeps only what deadlines depend on (JSON-friendly, so it can be stored);
`deadlines(schedule, calendar, policy)` says which deadlines stand and when each is due, in the
customer region's working days. A deadline's id is derived from what it waits on (the escalation,
its kind and the moment its clock started), so every instance, restart or rebuild that computes it
computes the same id, and the aggregate can refuse a second event for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.calendar import RegionCalendar
from domain.events import reports_progress

Schedule = dict[str, Any]

UPDATE_OVERDUE = "update_overdue"
PROGRESS_STALLED = "progress_stalled"
MONITORING_ENDED = "monitoring_ended"
RETROSPECTIVE_DUE = "retrospective_due"
FOLLOW_UP_OVERDUE = "follow_up_overdue"
KINDS = (UPDATE_OVERDUE, PROGRESS_STALLED, MONITORING_ENDED, RETROSPECTIVE_DUE, FOLLOW_UP_OVERDUE)
WORKING = ("active", "monitoring")
_DEADLINE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:escalation-ledger:deadline")


@dataclass(frozen=True)
class DeadlinePolicy:
    """Which deadlines the watcher keeps, and how long each waits (None or False: that kind is off)."""

    update_overdue: bool = True
    stall_working_days: Mapping[str, int | None] = field(
        default_factory=lambda: {"critical": 2, "high": 3, "medium": 10, "low": None}
    )
    monitoring_ended: bool = True
    retrospective_due_working_days: int | None = 5
    follow_up_overdue: bool = True


@dataclass(frozen=True)
class Deadline:
    deadline_id: str
    escalation_id: str
    kind: str
    due_at: datetime
    facts: dict[str, Any]  # what the command needs besides the deadline id (JSON-friendly)


def deadline_id(escalation_id: str, kind: str, basis: str) -> str:
    return str(uuid5(_DEADLINE_NAMESPACE, f"{escalation_id}/{kind}/{basis}"))


def new_schedule() -> Schedule:
    return {
        "region": "",
        "severity": "",
        "cadence_days": None,
        "phase": "opened",
        "opened_at": None,
        "last_update_at": None,
        "paused_until": None,
        "progress_at": None,
        "stalled": False,
        "monitoring_ends_at": None,
        "closed_at": None,
        "retrospective": False,
        "actions": {},
        "fired": [],
    }


# Every fact `fold` reads (the watcher keeps only these of each event, to refold after a correction).
FOLDED_FACTS = frozenset(
    {
        "occurred_at",
        "region",
        "severity",
        "update_cadence",
        "blockers",
        "period_days",
        "resume_on",
        "action_id",
        "due_on",
        "deadline_id",
    }
)


def fold(schedule: Schedule, name: str, data: Mapping[str, Any]) -> Schedule:  # noqa: C901, PLR0912 - one branch per event type
    s = {**schedule, "actions": dict(schedule["actions"]), "fired": list(schedule["fired"])}
    at = str(data["occurred_at"])  # every event has one
    match name:
        case "EscalationOpened":
            s |= {"region": data["region"], "severity": data["severity"], "opened_at": at}
            s["cadence_days"] = data["update_cadence"]["max_working_days_between_updates"]
        case "PreparationCompleted":
            s["phase"] = "prepared"
        case "LeadEngineerAssigned" if s["phase"] == "prepared":
            s["phase"] = "lead_assigned"
        case "ScopeDefined" if s["phase"] == "lead_assigned":
            s |= {"phase": "active", "progress_at": _later(s["progress_at"], at)}
        case "ExitCriterionMet" | "ProgressResumed" | "EscalatedToSpecialistTeam":
            s["progress_at"] = _later(s["progress_at"], at)
            s["stalled"] = s["stalled"] and name != "ProgressResumed"
        case "UpdatePosted":
            s |= {"last_update_at": at, "paused_until": None}
            if reports_progress(list(data.get("blockers", []))):
                s["progress_at"] = _later(s["progress_at"], at)
        case "ProgressStalled":
            s["stalled"] = True
        case "SeverityChanged":
            s |= {"severity": data["severity"]}
            s["cadence_days"] = data["update_cadence"]["max_working_days_between_updates"]
        case "MonitoringStarted":
            ends = datetime.fromisoformat(at) + timedelta(days=int(data["period_days"]))
            s |= {"phase": "monitoring", "monitoring_ends_at": ends.isoformat()}
        case "UpdatesPaused":
            s["paused_until"] = data["resume_on"]
        case "MonitoringInterrupted":
            s |= {"phase": "active", "monitoring_ends_at": None, "paused_until": None}
            s["progress_at"] = _later(s["progress_at"], at)
        case "EscalationClosed":
            s |= {"phase": "closed", "closed_at": at}
        case "RetrospectiveOpened":
            s["retrospective"] = True
        case "FollowUpActionAdded":
            s["actions"][data["action_id"]] = data["due_on"]
        case "FollowUpActionSettled":
            s["actions"].pop(data["action_id"], None)
    if data.get("deadline_id"):
        s["fired"].append(data["deadline_id"])
    return s


def deadlines(
    escalation_id: str, s: Schedule, calendar: RegionCalendar, policy: DeadlinePolicy, *, include_fired: bool = False
) -> list[Deadline]:
    """Every deadline that stands for this escalation now: those not fired yet, or with fired ones too."""
    found = [
        *_update_overdue(escalation_id, s, calendar, policy),
        *_progress_stalled(escalation_id, s, calendar, policy),
        *_monitoring_ended(escalation_id, s, policy),
        *_retrospective_due(escalation_id, s, calendar, policy),
        *_follow_ups_overdue(escalation_id, s, calendar, policy),
    ]
    return [d for d in found if include_fired or d.deadline_id not in s["fired"]]


def _update_overdue(eid: str, s: Schedule, calendar: RegionCalendar, policy: DeadlinePolicy) -> list[Deadline]:
    allowed = s["cadence_days"]
    if not policy.update_overdue or allowed is None or s["phase"] not in WORKING:
        return []
    since = _time(s["last_update_at"] or s["opened_at"])
    if s["paused_until"] is not None:  # the gap starts afresh when updates resume
        since = max(since, calendar.start_of(date.fromisoformat(s["paused_until"])))
    facts = {"gap_started_at": since.isoformat(), "allowed_working_days": allowed}
    due = calendar.working_days_after(since, allowed)
    return [Deadline(deadline_id(eid, UPDATE_OVERDUE, since.isoformat()), eid, UPDATE_OVERDUE, due, facts)]


def _progress_stalled(eid: str, s: Schedule, calendar: RegionCalendar, policy: DeadlinePolicy) -> list[Deadline]:
    days = policy.stall_working_days.get(s["severity"])
    if days is None or s["phase"] != "active" or s["stalled"]:
        return []
    since = _time(s["progress_at"] or s["opened_at"])
    facts = {"no_progress_since": since.isoformat(), "working_days": days}
    due = calendar.working_days_after(since, days)
    return [Deadline(deadline_id(eid, PROGRESS_STALLED, since.isoformat()), eid, PROGRESS_STALLED, due, facts)]


def _monitoring_ended(eid: str, s: Schedule, policy: DeadlinePolicy) -> list[Deadline]:
    if not policy.monitoring_ended or s["phase"] != "monitoring" or s["monitoring_ends_at"] is None:
        return []
    ends = _time(s["monitoring_ends_at"])
    return [Deadline(deadline_id(eid, MONITORING_ENDED, ends.isoformat()), eid, MONITORING_ENDED, ends, {})]


def _retrospective_due(eid: str, s: Schedule, calendar: RegionCalendar, policy: DeadlinePolicy) -> list[Deadline]:
    days = policy.retrospective_due_working_days
    if days is None or s["phase"] != "closed" or s["retrospective"] or s["closed_at"] is None:
        return []
    closed = _time(s["closed_at"])
    facts = {"closed_at": closed.isoformat()}
    due = calendar.working_days_after(closed, days)
    return [Deadline(deadline_id(eid, RETROSPECTIVE_DUE, closed.isoformat()), eid, RETROSPECTIVE_DUE, due, facts)]


def _follow_ups_overdue(eid: str, s: Schedule, calendar: RegionCalendar, policy: DeadlinePolicy) -> list[Deadline]:
    if not policy.follow_up_overdue:
        return []
    return [
        Deadline(
            deadline_id(eid, FOLLOW_UP_OVERDUE, action_id),
            eid,
            FOLLOW_UP_OVERDUE,
            calendar.start_of(date.fromisoformat(due_on) + timedelta(days=1)),  # overdue once its day is over
            {"action_id": action_id},
        )
        for action_id, due_on in sorted(s["actions"].items())
    ]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _later(current: str | None, moment: str) -> str:
    if current is None:
        return moment
    return max(current, moment, key=datetime.fromisoformat)
