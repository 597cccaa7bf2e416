"""Update compliance as the cadence asks, hand-computed (London calendar, 2024; 6 May is a bank holiday)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.calendar import RegionCalendar
from domain.service import EscalationService
from infra.local.stories import quiet_escalation
from infra.messaging.envelope import as_recorded
from projections.compliance import windows
from projections.facts import EscalationFacts, Mark, Update
from projections.tables import create_schema, write_facts
from tests.fakes import SteppingClock, project

LONDON = RegionCalendar("EMEA", ZoneInfo("Europe/London"), holidays={date(2024, 5, 6)})
UTC_ONLY = RegionCalendar("EMEA")


def escalation(cadence: int, *marks: Mark, updates: tuple[str, ...] = ()) -> EscalationFacts:
    return EscalationFacts(
        escalation_id="e1",
        region="EMEA",
        opened_at="2024-04-29T08:00:00+00:00",
        marks=(
            Mark("2024-04-29T08:00:00+00:00", "cadence", str(cadence)),
            Mark("2024-04-29T08:00:00+00:00", "lead", "ana"),
            *marks,
        ),
        updates=tuple(Update(n, moment, "ana", "ana") for n, moment in enumerate(updates, start=1)),
    )


def met(found: list) -> tuple[int, int]:  # type: ignore[type-arg]
    resolved = [w for w in found if w.met_at or w.missed]
    return sum(w.met_at is not None for w in resolved), len(resolved)


def test_a_high_severity_escalation_updated_on_cadence_is_fully_compliant() -> None:
    # Every two working days from scope on Monday 13 May; monitoring from Wednesday 22nd.
    facts = escalation(
        2,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-22T09:00:00+00:00", "not_owed"),
        updates=("2024-05-15T10:00:00+00:00", "2024-05-17T10:00:00+00:00", "2024-05-21T10:00:00+00:00"),
    )

    assert met(windows(facts, LONDON)) == (3, 3)


def test_a_critical_escalation_that_skipped_two_working_days_is_not() -> None:
    # Daily: Monday's update, then nothing Tuesday or Wednesday, then Thursday.
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-16T18:00:00+00:00", "not_owed"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-16T12:00:00+00:00"),
    )

    found = windows(facts, LONDON)

    assert met(found) == (2, 4)
    assert max(w.gap_working_days for w in found) == 3


def test_a_closed_escalation_stops_counting_and_an_interrupted_monitoring_counts_again() -> None:
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-13T15:00:00+00:00", "not_owed"),  # monitoring
        Mark("2024-05-20T09:00:00+00:00", "owed"),  # interrupted on the Monday after
        Mark("2024-05-21T15:00:00+00:00", "not_owed"),  # closed on Tuesday
        updates=("2024-05-13T12:00:00+00:00",),
    )

    found = windows(facts, LONDON)

    # Monday 13th met; nothing owed during monitoring; from the interruption a window due by the end
    # of Tuesday 21st was still open at closing, so it is dropped; nothing after closing.
    assert met(found) == (1, 1)
    assert [w.opened_at[:10] for w in found] == ["2024-05-13"]


def test_a_public_holiday_in_the_customers_region_is_not_a_working_day() -> None:
    # High (two working days) from Friday 3 May: Monday 6 May is a bank holiday in London, so
    # Wednesday's update is on time there; with no holidays the window due by the end of Tuesday is missed.
    facts = escalation(
        2,
        Mark("2024-05-03T09:00:00+00:00", "owed"),
        Mark("2024-05-08T18:00:00+00:00", "not_owed"),
        updates=("2024-05-08T12:00:00+00:00",),
    )

    assert met(windows(facts, LONDON)) == (1, 1)
    assert met(windows(facts, UTC_ONLY)) == (1, 2)


def test_a_lead_change_splits_the_credit() -> None:
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-14T09:00:00+00:00", "lead", "ben"),
        Mark("2024-05-16T18:00:00+00:00", "not_owed"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-14T12:00:00+00:00"),
    )

    found = [w for w in windows(facts, LONDON) if w.met_at or w.missed]

    assert [(w.lead_engineer, w.met_at is not None) for w in found] == [("ana", True), ("ben", True), ("ben", False)]


def test_a_severity_change_applies_its_cadence_from_its_moment() -> None:
    # Medium (ten days) becomes critical (daily) on Tuesday: Thursday's update comes too late.
    facts = escalation(
        10,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-14T09:00:00+00:00", "cadence", "1"),
        Mark("2024-05-16T18:00:00+00:00", "not_owed"),
        updates=("2024-05-16T12:00:00+00:00",),
    )

    assert met(windows(facts, LONDON)) == (1, 2)


def test_the_views_give_the_share_met_and_the_overdue_escalation_in_plain_sql() -> None:
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-16T12:00:00+00:00"),
    )
    facts = EscalationFacts(**{**facts.__dict__, "customer": "Acme", "status": "active", "lead_engineer": "ana"})

    with engine.begin() as conn:
        write_facts(conn, facts, frozenset(), {"EMEA": LONDON})
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM compliance_by_escalation")).mappings().all()
        active = conn.execute(sa.text("SELECT * FROM active")).mappings().one()

    # Met Monday, missed Tuesday and Wednesday, met Thursday; the window due after Friday is open and
    # long past due (the views use the database's clock), so it counts as missed and overdue now.
    assert [(r["due_windows"], r["met_windows"], r["share_met"], r["overdue_now"]) for r in rows] == [(5, 2, 0.4, 1)]
    assert active["next_update_due"] == "2024-05-17T23:00:00+00:00"  # the end of Friday in London
    assert active["overdue_by_working_days"] > 0


def test_the_longest_gap_includes_the_open_gap_up_to_now() -> None:
    now = datetime.now(UTC)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(now))
    escalation_id = quiet_escalation(service, now - timedelta(days=30), customer="Initech", region="AMER", lead="ana")
    events = [as_recorded(e, n) for n, e in enumerate(service.history(escalation_id), start=1)]
    (updated,) = [e.occurred_at for e in events if e.name == "UpdatePosted"]
    engine = sa.create_engine("sqlite://")
    project(engine, events)

    with engine.connect() as conn:
        (gap,) = conn.execute(sa.text("SELECT longest_gap_working_days FROM compliance_by_escalation")).scalars()

    assert gap == RegionCalendar("AMER").working_days_between(updated, datetime.now(UTC))


def test_updates_paused_until_a_date_are_owed_again_from_the_start_of_that_day_in_the_region() -> None:
    # Daily; paused on Monday 13 May until Thursday 16th: nothing owed on Tuesday or Wednesday. From
    # Thursday's London midnight an update is due by the end of Friday; none comes until Monday 20th.
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-13T15:00:00+00:00", "paused", "2024-05-16"),
        Mark("2024-05-20T18:00:00+00:00", "not_owed"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-20T12:00:00+00:00"),
    )

    found = windows(facts, LONDON)

    assert met(found) == (2, 3)
    assert [(w.opened_at, w.day, w.missed) for w in found[1:]] == [
        ("2024-05-15T23:00:00+00:00", "2024-05-17", True),
        ("2024-05-17T22:59:59+00:00", "2024-05-20", False),
    ]


def test_a_pause_whose_date_comes_after_monitoring_began_owes_nothing() -> None:
    # Paused until Thursday, but monitoring starts on Wednesday: Thursday resumes nothing.
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-13T15:00:00+00:00", "paused", "2024-05-16"),
        Mark("2024-05-15T09:00:00+00:00", "not_owed"),
        updates=("2024-05-13T12:00:00+00:00",),
    )

    found = windows(facts, LONDON)

    assert [(w.opened_at[:10], w.met_at is not None) for w in found] == [("2024-05-13", True)]


def test_a_window_met_at_its_last_moment_is_met_and_one_a_moment_later_is_missed() -> None:
    # Daily from Monday 13 May 09:00 London (08:00 UTC): the window allows all of Tuesday.
    def updated_at(moment: str) -> list:  # type: ignore[type-arg]
        facts = escalation(
            1,
            Mark("2024-05-13T08:00:00+00:00", "owed"),
            Mark("2024-05-15T12:00:00+00:00", "not_owed"),
            updates=(moment,),
        )
        return [(w.missed, w.day) for w in windows(facts, LONDON)]

    assert updated_at("2024-05-14T22:59:59+00:00") == [(False, "2024-05-14")]
    assert updated_at("2024-05-14T23:00:00+00:00") == [(True, "2024-05-14"), (False, "2024-05-15")]


def test_a_low_severity_escalation_on_standard_communication_owes_no_windows() -> None:
    # Low has no cadence: a week without an update, still owing updates at the end, misses nothing.
    facts = EscalationFacts(
        escalation_id="e1",
        region="EMEA",
        opened_at="2024-05-13T08:00:00+00:00",
        marks=(
            Mark("2024-05-13T08:00:00+00:00", "cadence", None),
            Mark("2024-05-13T08:00:00+00:00", "lead", "ana"),
            Mark("2024-05-13T09:00:00+00:00", "owed"),
        ),
        updates=(Update(1, "2024-05-20T12:00:00+00:00", "ana", "ana"),),
    )

    assert windows(facts, LONDON) == []


def test_lowering_the_severity_to_low_drops_the_open_window_and_later_updates_count_for_nothing() -> None:
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-14T09:00:00+00:00", "cadence", None),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-20T12:00:00+00:00"),
    )

    found = windows(facts, LONDON)

    assert [(w.opened_at[:10], w.met_at is not None) for w in found] == [("2024-05-13", True)]


def test_an_update_posted_at_the_moment_monitoring_starts_still_meets_its_window() -> None:
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-14T12:00:00+00:00", "not_owed"),
        updates=("2024-05-14T12:00:00+00:00",),
    )

    assert met(windows(facts, LONDON)) == (1, 1)


def test_updates_owed_again_before_a_pause_ends_count_from_that_moment_not_from_the_pause_date() -> None:
    # Paused on Monday until Thursday, but owed again (monitoring interrupted) on Tuesday at 09:00:
    # the daily window runs from Tuesday, so Thursday's midnight does not restart it.
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-13T15:00:00+00:00", "paused", "2024-05-16"),
        Mark("2024-05-14T09:00:00+00:00", "owed"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-16T12:00:00+00:00"),
    )

    found = windows(facts, LONDON)

    assert [(w.opened_at, w.met_at, w.missed) for w in found[1:3]] == [
        ("2024-05-14T09:00:00+00:00", None, True),  # due by the end of Wednesday: missed
        ("2024-05-15T22:59:59+00:00", "2024-05-16T12:00:00+00:00", False),
    ]


def test_an_update_at_the_very_moment_updates_resume_meets_the_window_that_opens_then() -> None:
    # Paused until Thursday 16 May: London's midnight is 23:00 UTC on the 15th, and the update comes then.
    facts = escalation(
        1,
        Mark("2024-05-13T09:00:00+00:00", "owed"),
        Mark("2024-05-13T15:00:00+00:00", "paused", "2024-05-16"),
        updates=("2024-05-13T12:00:00+00:00", "2024-05-15T23:00:00+00:00"),
    )

    found = windows(facts, LONDON)

    assert [(w.opened_at, w.met_at) for w in found[1:3]] == [
        ("2024-05-15T23:00:00+00:00", "2024-05-15T23:00:00+00:00"),
        ("2024-05-15T23:00:00+00:00", None),
    ]
