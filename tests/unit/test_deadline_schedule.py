"""The watcher's schedule, event by event: what each handbook step changes in what the deadlines wait on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import RegionCalendar
from projections.deadlines import Deadline, DeadlinePolicy, deadline_id, deadlines, fold, new_schedule

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
    expected: dict[str, Any] = {
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


def folded(steps: int) -> dict[str, Any]:
    """The schedule after the first `steps` of STEPS."""
    schedule = new_schedule()
    for name, data, _ in STEPS[:steps]:
        schedule = fold(schedule, name, data)
    return schedule


def step_index(name: str, occurred_at: str) -> int:
    """How many STEPS there are up to and including the named one."""
    return next(i + 1 for i, (n, data, _) in enumerate(STEPS) if n == name and data["occurred_at"] == occurred_at)


def standing(kind: str, basis: str, due: datetime, facts: dict[str, Any]) -> Deadline:
    return Deadline(deadline_id("e1", kind, basis), "e1", kind, due, facts)


OFF = DeadlinePolicy(
    update_overdue=False,
    stall_working_days={},
    monitoring_ended=False,
    retrospective_due_working_days=None,
    follow_up_overdue=False,
)


def test_no_deadline_stands_before_the_work_starts() -> None:
    for steps in (1, 2, 3):  # opened, prepared, lead assigned: the cadence is known but no clock runs yet
        assert deadlines("e1", folded(steps), UTC_CALENDAR, DeadlinePolicy()) == [], STEPS[steps - 1][0]


def test_once_the_scope_is_defined_the_update_and_the_stall_clocks_run() -> None:
    assert deadlines("e1", folded(4), UTC_CALENDAR, DeadlinePolicy()) == [
        standing(
            "update_overdue",
            at(0),
            datetime(2026, 11, 5, tzinfo=UTC),
            {"gap_started_at": at(0), "allowed_working_days": 2},
        ),
        standing(
            "progress_stalled",
            at(1),
            datetime(2026, 11, 7, tzinfo=UTC),
            {"no_progress_since": at(1), "working_days": 3},
        ),
    ]


def test_during_monitoring_the_update_clock_runs_the_stall_clock_does_not_and_the_period_has_an_end() -> None:
    schedule = folded(step_index("MonitoringStarted", at(12)))

    assert deadlines("e1", schedule, UTC_CALENDAR, DeadlinePolicy()) == [
        # Friday 21:00 UTC: one working day (Monday) for a critical escalation, due once Monday is over.
        standing(
            "update_overdue",
            at(11.5),
            datetime(2026, 11, 17, tzinfo=UTC),
            {"gap_started_at": at(11.5), "allowed_working_days": 1},
        ),
        standing("monitoring_ended", at(19), datetime(2026, 11, 21, 9, tzinfo=UTC), {}),
    ]


def test_after_closing_the_retrospective_and_each_follow_up_action_have_their_deadline() -> None:
    closed = folded(step_index("FollowUpActionAdded", at(21)) + 1)  # both actions added
    assert closed["monitoring_ends_at"] is not None  # kept from the period, yet no longer a deadline

    retrospective = standing("retrospective_due", at(20), datetime(2026, 11, 28, tzinfo=UTC), {"closed_at": at(20)})
    action_1 = Deadline(
        deadline_id("e1", "follow_up_overdue", "a1"),
        "e1",
        "follow_up_overdue",
        datetime(2026, 12, 2, tzinfo=UTC),  # overdue once its due day is over
        {"action_id": "a1"},
    )
    action_2 = Deadline(
        deadline_id("e1", "follow_up_overdue", "a2"),
        "e1",
        "follow_up_overdue",
        datetime(2026, 12, 5, tzinfo=UTC),
        {"action_id": "a2"},
    )
    assert deadlines("e1", closed, UTC_CALENDAR, DeadlinePolicy()) == [retrospective, action_1, action_2]

    assert deadlines("e1", folded(len(STEPS)), UTC_CALENDAR, DeadlinePolicy()) == [action_2]  # retrospective opened


def test_a_follow_up_is_overdue_when_its_day_is_over_in_the_customers_zone() -> None:
    tokyo = RegionCalendar("APAC", zone=ZoneInfo("Asia/Tokyo"))
    schedule = {**folded(4), "actions": {"a1": "2026-12-01"}}

    (action,) = [d for d in deadlines("e1", schedule, tokyo, DeadlinePolicy()) if d.kind == "follow_up_overdue"]

    assert action.due_at == datetime(2026, 12, 1, 15, tzinfo=UTC)  # midnight of 2 December in Tokyo


def test_a_fired_deadline_no_longer_stands_unless_asked_for() -> None:
    update, stall = deadlines("e1", folded(4), UTC_CALENDAR, DeadlinePolicy())
    schedule = {**folded(4), "fired": [update.deadline_id]}

    assert deadlines("e1", schedule, UTC_CALENDAR, DeadlinePolicy()) == [stall]
    assert deadlines("e1", schedule, UTC_CALENDAR, DeadlinePolicy(), include_fired=True) == [update, stall]


def test_a_policy_with_every_kind_off_keeps_no_deadline_at_any_step() -> None:
    for steps in range(1, len(STEPS) + 1):
        schedule = folded(steps)
        assert deadlines("e1", schedule, UTC_CALENDAR, OFF) == [], STEPS[steps - 1][0]
        assert deadlines("e1", schedule, UTC_CALENDAR, DeadlinePolicy()) or steps < 4 or steps == len(STEPS)


def test_turning_one_kind_off_removes_only_that_kind() -> None:
    schedules = [folded(steps) for steps in range(1, len(STEPS) + 1)]
    every = [d for s in schedules for d in deadlines("e1", s, UTC_CALENDAR, DeadlinePolicy())]
    kinds = {
        "update_overdue": {"update_overdue": False},
        "progress_stalled": {"stall_working_days": {}},
        "monitoring_ended": {"monitoring_ended": False},
        "retrospective_due": {"retrospective_due_working_days": None},
        "follow_up_overdue": {"follow_up_overdue": False},
    }
    assert {d.kind for d in every} == set(kinds)
    for kind, off in kinds.items():
        policy = DeadlinePolicy(**off)  # type: ignore[arg-type]
        fewer = [d for s in schedules for d in deadlines("e1", s, UTC_CALENDAR, policy)]
        assert fewer == [d for d in every if d.kind != kind], kind


def test_progress_only_moves_forward_whichever_step_reports_it() -> None:
    later = at(30)
    ahead = {**folded(3), "progress_at": later}  # lead assigned; a later progress already folded (a correction)

    assert fold(ahead, "ScopeDefined", {"occurred_at": at(1)})["progress_at"] == later
    active = {**folded(4), "progress_at": later}
    assert fold(active, "UpdatePosted", {"occurred_at": at(2), "blockers": []})["progress_at"] == later
    monitoring = {**folded(step_index("MonitoringStarted", at(10))), "progress_at": later}
    assert fold(monitoring, "MonitoringInterrupted", {"occurred_at": at(11)})["progress_at"] == later


def test_later_means_later_in_time_whatever_the_offset_it_was_written_in() -> None:
    schedule = {**folded(4), "progress_at": "2026-11-03T09:00:00+00:00"}

    moved = fold(schedule, "ExitCriterionMet", {"occurred_at": "2026-11-03T08:00:00-05:00"})  # 13:00 UTC

    assert moved["progress_at"] == "2026-11-03T08:00:00-05:00"


def test_an_update_stored_without_blockers_reports_progress() -> None:
    schedule = fold(folded(4), "UpdatePosted", {"occurred_at": at(3)})

    assert schedule["progress_at"] == at(3)
