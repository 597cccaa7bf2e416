"""The watcher with a stepping clock: each deadline fires once, at the right working moment in the
customer's region, and the events that answer it cancel it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from consumers.runtime import Decoded
from consumers.watcher import Watcher, WatcherProjector
from domain import commands as c
from domain.calendar import RegionCalendar
from domain.errors import DeadlineAlreadyFiredError
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.local.stories import updated_once
from projections.deadline_tables import (
    FIRED,
    SETTLED,
    create_watcher_schema,
    drop_watcher_schema,
    overdue_updates,
    watcher_deadlines,
)
from projections.deadlines import DeadlinePolicy
from tests.fakes import SteppingClock

LONDON = ZoneInfo("Europe/London")
HOLIDAY = date(2026, 11, 9)  # a Monday the EMEA calendar keeps as a public holiday in these tests
CALENDARS = {"EMEA": RegionCalendar("EMEA", LONDON, holidays=frozenset({HOLIDAY}))}
FRIDAY = datetime(2026, 11, 6, 10, 0, tzinfo=UTC)
LEDGER = "escalation-ledger"


class Watched:
    """A watcher over an in-memory ledger: `step` feeds it every new event, fires what is due, feeds again."""

    def __init__(self, tmp_path: Path, policy: DeadlinePolicy | None = None) -> None:
        self.clock = SteppingClock(FRIDAY)
        self.service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=self.clock)
        self.engine = sa.create_engine(f"sqlite:///{tmp_path / 'watcher.db'}")
        create_watcher_schema(self.engine)
        self.projector = WatcherProjector(CALENDARS, policy or DeadlinePolicy(stall_working_days={}))
        runner = SimpleNamespace(assigned={0}, run=lambda: None, stop=lambda: None)
        self.watcher = Watcher(
            runner=runner, engine=self.engine, handler=self.service, clock=self.clock, calendars=CALENDARS, actor=LEDGER
        )
        self.escalations: list[UUID] = []

    def open(self, start: datetime) -> UUID:
        """A high escalation (two working days between updates) in EMEA, updated once, 5 hours after `start`."""
        self.clock.now = max(self.clock.now, start + timedelta(hours=5))
        escalation = updated_once(self.service, start, customer=f"C{len(self.escalations)}", region="EMEA", lead="li")
        self.escalations.append(escalation.escalation_id)
        return escalation.escalation_id

    def feed(self) -> None:
        with self.engine.begin() as conn:
            for escalation in self.escalations:
                batch = [
                    Decoded(SimpleNamespace(partition=0), e) for e in history_as_recorded(self.service, escalation)
                ]
                self.projector.apply(conn, batch, lambda _record, error: pytest.fail(str(error)))

    def step_to(self, moment: datetime) -> list[str]:
        """Move the clock to `moment`, run a round, and say which events the ledger recorded by itself."""
        before = {e: self.service.state(e)["version"] for e in self.escalations}
        self.clock.now = moment
        self.feed()
        self.watcher.fire_due()
        self.feed()
        return [
            type(event).__name__
            for e in self.escalations
            for event in self.service.history(e)[before[e] :]
            if event.actor == LEDGER
        ]

    def handle(self, command: c.Command, at: datetime) -> None:
        self.clock.now = max(self.clock.now, at)
        self.service.handle(command, actor="sam.manager")

    def events(self, escalation: UUID, name: str) -> list[object]:
        return [e for e in self.service.history(escalation) if type(e).__name__ == name]


@pytest.fixture
def watched(tmp_path: Path) -> Watched:
    return Watched(tmp_path)


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def test_an_overdue_update_is_recorded_once_when_its_working_days_are_over_skipping_weekend_and_holiday(
    watched: Watched,
) -> None:
    escalation = watched.open(FRIDAY)  # updated Friday 15:00; high allows two working days

    # Saturday, Sunday and the Monday holiday do not count: Tuesday and Wednesday are the two days.
    assert watched.step_to(local(date(2026, 11, 11), 23, 59)) == []
    recorded = watched.step_to(local(date(2026, 11, 12), 0, 1))
    again = watched.step_to(local(date(2026, 11, 13), 9))

    assert recorded == ["UpdateOverdue"]
    assert again == []
    overdue = watched.events(escalation, "UpdateOverdue")[0]
    assert overdue.due_at == local(date(2026, 11, 12))  # type: ignore[attr-defined]
    assert overdue.working_days_overdue == 1  # type: ignore[attr-defined]
    assert overdue.lead_engineer == "li"  # type: ignore[attr-defined]
    assert watched.service.state(escalation)["update_overdue_since"] == local(date(2026, 11, 12))
    with watched.engine.connect() as conn:
        assert overdue_updates(conn) == {str(escalation): local(date(2026, 11, 12)).isoformat()}


def test_the_update_that_comes_answers_the_overdue_one(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    watched.step_to(local(date(2026, 11, 12), 9))
    update = c.PostUpdate(
        escalation_id=escalation,
        progress="p",
        status="on track",
        current_tasks=[],
        next_steps=["n"],
        next_steps_owner="li",
        blockers=[],
    )

    watched.handle(update, at=local(date(2026, 11, 12), 10))
    watched.step_to(local(date(2026, 11, 12), 11))

    assert watched.service.state(escalation)["update_overdue_since"] is None
    with watched.engine.connect() as conn:
        assert overdue_updates(conn) == {}


def test_a_new_update_cancels_the_overdue_deadline_and_starts_a_new_gap(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    watched.feed()
    watched.handle(
        c.PostUpdate(
            escalation_id=escalation,
            progress="p",
            status="on track",
            current_tasks=[],
            next_steps=["n"],
            next_steps_owner="li",
            blockers=[],
        ),
        at=local(date(2026, 11, 11), 17),
    )

    assert watched.step_to(local(date(2026, 11, 12), 9)) == []  # the old gap was answered in time
    assert watched.step_to(local(date(2026, 11, 13), 23, 59)) == []  # Thursday and Friday are the new gap's days
    assert watched.step_to(local(date(2026, 11, 14), 0, 1)) == ["UpdateOverdue"]


def test_a_pause_during_monitoring_holds_the_update_deadline_until_updates_resume(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    met = c.MeetExitCriterion(escalation_id=escalation, criterion_id="no-502", evidence="quiet")
    watched.handle(met, at=FRIDAY + timedelta(hours=6))
    monitor = c.StartMonitoring(escalation_id=escalation, period_days=30, agreed_with="c0.owner")
    watched.handle(monitor, at=FRIDAY + timedelta(hours=7))
    pause = c.PauseUpdates(escalation_id=escalation, resume_on=date(2026, 11, 23), reason="customer holiday")
    watched.handle(pause, at=FRIDAY + timedelta(hours=8))

    # Resuming on Monday 23rd counts like an update that day: Tuesday and Wednesday are allowed.
    assert watched.step_to(local(date(2026, 11, 25), 23)) == []
    assert watched.step_to(local(date(2026, 11, 26), 0, 1)) == ["UpdateOverdue"]


def test_monitoring_ends_once_at_the_agreed_moment_and_an_interruption_cancels_it(watched: Watched) -> None:
    ending, interrupted = watched.open(FRIDAY), watched.open(FRIDAY)
    for n, escalation in enumerate((ending, interrupted)):
        at = FRIDAY + timedelta(hours=6)
        watched.handle(c.MeetExitCriterion(escalation_id=escalation, criterion_id="no-502", evidence="q"), at)
        watched.handle(c.StartMonitoring(escalation_id=escalation, period_days=3, agreed_with=f"c{n}.owner"), at)
    watched.handle(c.InterruptMonitoring(escalation_id=interrupted, reason="502s again"), FRIDAY + timedelta(hours=1))

    before = watched.step_to(FRIDAY + timedelta(days=3, hours=6) - timedelta(minutes=1))
    at_end = watched.step_to(FRIDAY + timedelta(days=3, hours=6))

    assert "MonitoringPeriodEnded" not in before
    assert at_end.count("MonitoringPeriodEnded") == 1
    assert len(watched.events(ending, "MonitoringPeriodEnded")) == 1
    assert watched.events(interrupted, "MonitoringPeriodEnded") == []


def test_a_retrospective_is_due_some_working_days_after_closing_unless_it_was_opened(watched: Watched) -> None:
    forgotten, done = watched.open(FRIDAY), watched.open(FRIDAY)
    for escalation in (forgotten, done):
        close = c.CloseEscalation(
            escalation_id=escalation,
            outcome="positive",
            exit_criteria_met=False,
            summary="s",
            closing_checklist_done=True,
            customer_comfortable=True,
            agreed_with_account_owner=True,
            override_reason="customer asked",
        )
        watched.handle(close, FRIDAY + timedelta(hours=6))
    watched.handle(c.OpenRetrospective(escalation_id=done, retro_reference="retro#1"), FRIDAY + timedelta(hours=7))

    # Five working days after Friday, with the Monday holiday skipped: Tue..Fri and the next Monday.
    assert watched.step_to(local(date(2026, 11, 16), 23)) == []
    assert watched.step_to(local(date(2026, 11, 17), 0, 1)) == ["RetrospectiveDue"]
    assert watched.events(done, "RetrospectiveDue") == []


def test_the_ledger_notices_a_stall_itself_and_progress_cancels_it(tmp_path: Path) -> None:
    watched = Watched(tmp_path, DeadlinePolicy(stall_working_days={"high": 3}, update_overdue=False))
    stalled, progressing = watched.open(FRIDAY), watched.open(FRIDAY)
    met = c.MeetExitCriterion(escalation_id=progressing, criterion_id="no-502", evidence="quiet")
    watched.handle(met, local(date(2026, 11, 12), 10))

    recorded = watched.step_to(local(date(2026, 11, 13), 0, 1))  # Tue, Wed, Thu after the Friday update

    assert recorded == ["ProgressStalled"]
    noticed = watched.events(stalled, "ProgressStalled")[0]
    assert noticed.noticed_by == LEDGER  # type: ignore[attr-defined]
    assert noticed.deadline_id is not None  # type: ignore[attr-defined]
    assert watched.events(progressing, "ProgressStalled") == []


def test_a_second_command_for_the_same_deadline_is_refused_and_the_watcher_takes_it_as_done(
    watched: Watched,
) -> None:
    escalation = watched.open(FRIDAY)
    watched.step_to(local(date(2026, 11, 12), 9))
    fired = watched.events(escalation, "UpdateOverdue")[0]
    with watched.engine.begin() as conn:  # as if the watcher had crashed before marking it fired
        conn.execute(watcher_deadlines.update().values(state="pending"))

    with pytest.raises(DeadlineAlreadyFiredError, match="already recorded"):
        watched.service.handle(
            c.RecordUpdateOverdue(
                escalation_id=escalation,
                deadline_id=fired.deadline_id,  # type: ignore[attr-defined]
                due_at=fired.due_at,  # type: ignore[attr-defined]
                gap_started_at=fired.gap_started_at,  # type: ignore[attr-defined]
                working_days_overdue=1,
                allowed_working_days=2,
            ),
            actor=LEDGER,
        )
    again = watched.step_to(local(date(2026, 11, 12), 10))

    assert again == []
    with watched.engine.connect() as conn:
        assert set(conn.execute(sa.select(watcher_deadlines.c.state)).scalars()) <= {SETTLED, FIRED}


def test_a_rebuild_from_the_start_records_nothing_new(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    watched.step_to(local(date(2026, 11, 12), 9))

    drop_watcher_schema(watched.engine)
    create_watcher_schema(watched.engine)
    again = watched.step_to(local(date(2026, 11, 12), 10))

    assert again == []
    assert len(watched.events(escalation, "UpdateOverdue")) == 1


def test_a_back_dated_history_fires_what_is_already_due_once(watched: Watched) -> None:
    escalation = watched.open(FRIDAY - timedelta(days=40))
    watched.clock.now = FRIDAY

    first = watched.step_to(FRIDAY)
    second = watched.step_to(FRIDAY + timedelta(hours=1))

    assert first == ["UpdateOverdue"]
    assert second == []
    assert watched.events(escalation, "UpdateOverdue")[0].working_days_overdue > 20  # type: ignore[attr-defined]


def test_a_correction_back_dating_an_update_moves_the_overdue_deadline_earlier(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    update = c.PostUpdate(
        escalation_id=escalation,
        progress="p",
        status="on track",
        current_tasks=[],
        next_steps=["n"],
        next_steps_owner="li",
        blockers=[],
    )
    watched.handle(update, at=local(date(2026, 11, 11), 17))  # recorded Wednesday: due Saturday 00:00
    posted = watched.service.state(escalation)["version"]
    watched.step_to(local(date(2026, 11, 11), 17, 5))
    correction = c.RecordCorrection(
        escalation_id=escalation,
        corrects_version=posted,
        reason="posted late",
        correction="the update went out on Tuesday morning",
        corrected_facts={"occurred_at": local(date(2026, 11, 10), 9).isoformat()},
    )

    watched.handle(correction, at=local(date(2026, 11, 11), 18))

    # Tuesday morning's gap: Wednesday and Thursday are its two working days.
    assert watched.step_to(local(date(2026, 11, 12), 23, 59)) == []
    assert watched.step_to(local(date(2026, 11, 13), 0, 1)) == ["UpdateOverdue"]
    assert watched.step_to(local(date(2026, 11, 14), 0, 1)) == []  # the uncorrected deadline is gone
    overdue = watched.events(escalation, "UpdateOverdue")[0]
    assert overdue.gap_started_at == local(date(2026, 11, 10), 9)  # type: ignore[attr-defined]
    assert overdue.due_at == local(date(2026, 11, 13))  # type: ignore[attr-defined]


def correct_the_time_of(watched: Watched, escalation: UUID, event_name: str, moment: datetime, at: datetime) -> None:
    version = next(e.originator_version for e in watched.service.history(escalation) if type(e).__name__ == event_name)
    correction = c.RecordCorrection(
        escalation_id=escalation,
        corrects_version=version,
        reason="recorded late",
        correction=f"it happened at {moment.isoformat()}",
        corrected_facts={"occurred_at": moment.isoformat()},
    )
    watched.handle(correction, at=at)


def test_a_correction_moving_an_overdue_gap_earlier_does_not_record_the_same_gap_overdue_twice(
    watched: Watched,
) -> None:
    escalation = watched.open(FRIDAY)  # updated Friday 15:00: overdue from Thursday 00:00
    assert watched.step_to(local(date(2026, 11, 12), 9)) == ["UpdateOverdue"]

    # The update went out at 11:00, not 15:00: the same gap, started earlier (so a new deadline id).
    correct_the_time_of(watched, escalation, "UpdatePosted", FRIDAY + timedelta(hours=1), local(date(2026, 11, 12), 10))
    again = watched.step_to(local(date(2026, 11, 12), 11))

    assert again == []
    assert len(watched.events(escalation, "UpdateOverdue")) == 1


def test_after_an_overdue_gap_is_answered_by_a_corrected_later_update_the_new_gap_can_be_overdue(
    watched: Watched,
) -> None:
    escalation = watched.open(FRIDAY)
    assert watched.step_to(local(date(2026, 11, 12), 9)) == ["UpdateOverdue"]
    update = c.PostUpdate(
        escalation_id=escalation,
        progress="p",
        status="on track",
        current_tasks=[],
        next_steps=["n"],
        next_steps_owner="li",
        blockers=[],
    )
    watched.handle(update, at=local(date(2026, 11, 12), 10))

    # The same escalation's next gap (from Thursday 10:00: Friday and Monday are its days).
    assert watched.step_to(local(date(2026, 11, 17), 9)) == ["UpdateOverdue"]


def test_a_correction_moving_the_update_after_the_overdue_notice_opens_a_new_gap_that_can_be_overdue(
    watched: Watched,
) -> None:
    escalation = watched.open(FRIDAY)
    assert watched.step_to(local(date(2026, 11, 12), 9)) == ["UpdateOverdue"]

    # The update went out today at 9:30, after the ledger noticed the gap: it answered that one.
    correct_the_time_of(
        watched, escalation, "UpdatePosted", local(date(2026, 11, 12), 9, 30), local(date(2026, 11, 12), 10)
    )

    # Its own gap: Friday and Monday are its two working days.
    assert watched.step_to(local(date(2026, 11, 16), 23)) == []
    assert watched.step_to(local(date(2026, 11, 17), 0, 1)) == ["UpdateOverdue"]


def test_a_correction_moving_the_monitoring_period_does_not_end_it_twice(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    at = FRIDAY + timedelta(hours=6)
    watched.handle(c.MeetExitCriterion(escalation_id=escalation, criterion_id="no-502", evidence="q"), at)
    watched.handle(c.StartMonitoring(escalation_id=escalation, period_days=3, agreed_with="c0.owner"), at)
    assert "MonitoringPeriodEnded" in watched.step_to(at + timedelta(days=3, hours=1))

    correct_the_time_of(
        watched, escalation, "MonitoringStarted", at - timedelta(hours=1), at + timedelta(days=3, hours=2)
    )
    again = watched.step_to(at + timedelta(days=3, hours=3))

    assert "MonitoringPeriodEnded" not in again
    assert len(watched.events(escalation, "MonitoringPeriodEnded")) == 1


def test_a_correction_moving_the_closing_does_not_make_the_retrospective_due_twice(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)
    close = c.CloseEscalation(
        escalation_id=escalation,
        outcome="positive",
        exit_criteria_met=False,
        summary="s",
        closing_checklist_done=True,
        customer_comfortable=True,
        agreed_with_account_owner=True,
        override_reason="customer asked",
    )
    watched.handle(close, FRIDAY + timedelta(hours=6))
    assert watched.step_to(local(date(2026, 11, 17), 9)) == ["RetrospectiveDue"]

    correct_the_time_of(
        watched, escalation, "EscalationClosed", FRIDAY + timedelta(hours=5), local(date(2026, 11, 17), 10)
    )
    again = watched.step_to(local(date(2026, 11, 17), 11))

    assert again == []
    assert len(watched.events(escalation, "RetrospectiveDue")) == 1


def test_raising_the_severity_midway_brings_the_overdue_update_forward(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)  # high: updated Friday 15:00, overdue from Thursday 00:00
    watched.feed()  # the watcher already holds the high escalation's deadline

    raise_to_critical = c.ChangeSeverity(
        escalation_id=escalation, severity="critical", reason="outage spreads", product_dri="pat"
    )
    watched.handle(raise_to_critical, at=local(date(2026, 11, 10), 10))

    # Critical allows one working day: Tuesday is it, so the update is overdue from Wednesday 00:00.
    assert watched.step_to(local(date(2026, 11, 10), 23, 59)) == []
    assert watched.step_to(local(date(2026, 11, 11), 0, 1)) == ["UpdateOverdue"]
    overdue = watched.events(escalation, "UpdateOverdue")[0]
    assert overdue.due_at == local(date(2026, 11, 11))  # type: ignore[attr-defined]


def test_lowering_the_severity_midway_moves_the_overdue_update_later(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)  # high: overdue from Thursday 00:00
    watched.feed()

    watched.handle(
        c.ChangeSeverity(escalation_id=escalation, severity="medium", reason="workaround holds"),
        at=local(date(2026, 11, 10), 10),
    )

    assert watched.step_to(local(date(2026, 11, 12), 9)) == []  # the high cadence's moment no longer counts


def test_an_overdue_fired_for_the_old_cadence_is_refused_and_waits_for_the_new_one(watched: Watched) -> None:
    escalation = watched.open(FRIDAY)  # high: overdue from Thursday 00:00
    watched.feed()
    watched.handle(
        c.ChangeSeverity(escalation_id=escalation, severity="medium", reason="workaround holds"),
        at=local(date(2026, 11, 10), 10),
    )

    # A watcher that has not folded the severity change yet fires the high cadence's deadline.
    watched.clock.now = local(date(2026, 11, 12), 0, 1)
    watched.watcher.fire_due()

    assert watched.events(escalation, "UpdateOverdue") == []
    # Medium allows ten working days (the Monday holiday skipped): overdue from Tuesday 24 November.
    assert watched.step_to(local(date(2026, 11, 23), 23, 59)) == []
    assert watched.step_to(local(date(2026, 11, 24), 0, 1)) == ["UpdateOverdue"]
