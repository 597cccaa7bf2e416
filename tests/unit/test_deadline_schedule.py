"""The watcher's schedule, event by event: what each handbook step changes in what the deadlines wait on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.calendar import RegionCalendar
from projections.deadlines import DeadlinePolicy, deadline_id, deadlines, fold, new_schedule

OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
UTC_CALENDAR = RegionCalendar("EMEA")


def at(days: float) -> str:
    return (OPENED + timedelta(days=days)).isoformat()


def cadence(days: int | None) -> dict[str, Any]:
    return {"update_cadence": {"max_working_days_between_updates": days}}


# Each step: the event, its data, and what it changes in the schedule.
STEPS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "EscalationOpened",
        {"occurred_at": at(0), "region": "EMEA", "severity": "high", **cadence(2)},
        {"region": "EMEA", "severity": "high", "cadence_days": 2, "opened_at": at(0)},
    ),
    ("PreparationCompleted", {"occurred_at": at(0.1)}, {"phase": "prepared"}),
    ("LeadEngineerAssigned", {"occurred_at": at(0.2)}, {"phase": "lead_assigned"}),
    ("ScopeDefined", {"occurred_at": at(1)}, {"phase": "active", "progress_at": at(1)}),
    ("ScopeDefined", {"occurred_at": at(1.5)}, {}),  # a redefined scope is no progress
    ("UpdatePosted", {"occurred_at": at(2), "blockers": ["vendor"]}, {"last_update_at": at(2)}),
    ("ProgressStalled", {"occurred_at": at(5), "deadline_id": "stall-1"}, {"stalled": True, "fired": ["stall-1"]}),
    ("EscalatedToSpecialistTeam", {"occurred_at": at(6)}, {"progress_at": at(6)}),  # still stalled
    ("ProgressResumed", {"occurred_at": at(7)}, {"progress_at": at(7), "stalled": False}),
    ("ExitCriterionMet", {"occurred_at": at(6.5)}, {}),  # corrected to earlier: the later progress stands
    ("ExitCriterionMet", {"occurred_at": at(8)}, {"progress_at": at(8)}),
    ("UpdatePosted", {"occurred_at": at(8.5), "blockers": []}, {"last_update_at": at(8.5), "progress_at": at(8.5)}),
    (
        "SeverityChanged",
        {"occurred_at": at(9), "severity": "critical", **cadence(1)},
        {"severity": "critical", "cadence_days": 1},
    ),
    ("UpdatesPaused", {"occurred_at": at(9.5), "resume_on": "2026-11-16"}, {"paused_until": "2026-11-16"}),
    (
        "MonitoringStarted",
        {"occurred_at": at(10), "period_days": 14},
        {"phase": "monitoring", "monitoring_ends_at": at(24)},
    ),
    (
        "MonitoringInterrupted",
        {"occurred_at": at(11)},
        {"phase": "active", "monitoring_ends_at": None, "paused_until": None, "progress_at": at(11)},
    ),
    ("UpdatePosted", {"occurred_at": at(11.5), "blockers": ["db"]}, {"last_update_at": at(11.5)}),
    (
        "MonitoringStarted",
        {"occurred_at": at(12), "period_days": 7},
        {"phase": "monitoring", "monitoring_ends_at": at(19)},
    ),
    (
        "MonitoringPeriodEnded",
        {"occurred_at": at(19), "deadline_id": "ended-1"},
        {"fired": ["stall-1", "ended-1"]},
    ),
    ("EscalationClosed", {"occurred_at": at(20)}, {"phase": "closed", "closed_at": at(20)}),
    (
        "FollowUpActionAdded",
        {"occurred_at": at(21), "action_id": "a1", "due_on": "2026-12-01"},
        {"actions": {"a1": "2026-12-01"}},
    ),
    (
        "FollowUpActionAdded",
        {"occurred_at": at(21), "action_id": "a2", "due_on": "2026-12-04"},
        {"actions": {"a1": "2026-12-01", "a2": "2026-12-04"}},
    ),
    ("FollowUpActionSettled", {"occurred_at": at(22), "action_id": "a1"}, {"actions": {"a2": "2026-12-04"}}),
    ("FollowUpActionSettled", {"occurred_at": at(22), "action_id": "gone"}, {}),  # settling twice is harmless
    ("RetrospectiveOpened", {"occurred_at": at(23)}, {"retrospective": True}),
]


def test_each_handbook_step_changes_exactly_what_the_deadlines_wait_on() -> None:
    schedule = new_schedule()
    expected = {
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
    assert schedule == expected

    for name, data, changes in STEPS:
        before = {**schedule, "actions": dict(schedule["actions"]), "fired": list(schedule["fired"])}
        schedule = fold(schedule, name, data)
        expected |= changes
        assert schedule == expected, f"after {name} at {data['occurred_at']}"
        assert fold(before, name, data) == schedule  # and left the one it was given alone


def test_the_fold_never_changes_the_schedule_it_was_given() -> None:
    schedule = fold(new_schedule(), "EscalationOpened", STEPS[0][1])
    kept = {**schedule, "actions": {"a1": "2026-12-01"}, "fired": ["x"]}
    snapshot = {**kept, "actions": dict(kept["actions"]), "fired": list(kept["fired"])}

    fold(kept, "FollowUpActionSettled", {"occurred_at": at(1), "action_id": "a1"})
    fold(kept, "ProgressStalled", {"occurred_at": at(1), "deadline_id": "y"})

    assert kept == snapshot


def test_before_the_first_update_the_gap_counts_from_opening_and_the_stall_from_the_scope() -> None:
    schedule = new_schedule()
    for name, data, _ in STEPS[:4]:  # opened Monday 09:00, scope defined Tuesday 09:00, no update yet
        schedule = fold(schedule, name, data)

    found = {d.kind: d for d in deadlines("e1", schedule, UTC_CALENDAR, DeadlinePolicy())}

    overdue = found["update_overdue"]
    assert overdue.deadline_id == deadline_id("e1", "update_overdue", at(0))
    assert overdue.due_at == datetime(2026, 11, 5, tzinfo=UTC)  # Tuesday and Wednesday were the two days
    assert overdue.facts == {"gap_started_at": at(0), "allowed_working_days": 2}
    stall = found["progress_stalled"]
    assert stall.facts == {"no_progress_since": at(1), "working_days": 3}
    assert stall.due_at == datetime(2026, 11, 7, tzinfo=UTC)  # once Wednesday, Thursday and Friday are over
