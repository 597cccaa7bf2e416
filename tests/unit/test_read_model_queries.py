"""The read models' own queries on SQLite: the API's escalation list, the timeline table and the notifier's tables."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain import commands as c
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.local.stories import quiet_escalation, updated_once
from projections import reports
from projections.deadline_tables import (
    FIRED,
    UPDATE_OVERDUE,
    create_watcher_schema,
    drop_watcher_schema,
    overdue_updates,
    watcher_deadlines,
)
from projections.facts import RecordedEvent
from projections.notification_tables import (
    PENDING,
    SKIPPED,
    NewDelivery,
    StoredSubscription,
    active_contexts,
    create_notifier_schema,
    load_contexts,
    load_subscriptions,
    notify_context,
    notify_deliveries,
    notify_subscriptions,
    record_deliveries,
    reset_notifier_context,
    save_contexts,
)
from projections.notifications import EscalationContext, Subscription
from projections.queries import list_escalations, position_seen, positions_seen
from projections.reports import active_escalations
from projections.timeline import GENESIS, TimelineEntry, timeline
from projections.timeline_tables import (
    create_timeline_schema,
    drop_timeline_schema,
    entries_of,
    escalation_ids,
    insert_entries,
    last_entries,
    timeline_entries,
)
from tests.fakes import SteppingClock, project
from tests.unit.golden_stories import NOW, Stories, record_stories

LDAP, BUMPY, QUIET, CLASHING = (f"00000000-0000-0000-0000-00000000000{n}" for n in range(1, 5))


@pytest.fixture
def stories() -> Stories:
    return record_stories()


@pytest.fixture
def engine(stories: Stories) -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    project(engine, stories.all)
    return engine


# --- the API's queries ------------------------------------------------------------------------


def test_escalations_are_listed_oldest_first_and_filtered_by_each_column(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        every = list_escalations(conn)
        by_status = [r["customer"] for r in list_escalations(conn, status="active")]
        by_customer = list_escalations(conn, customer="Initech")
        by_region = [r["customer"] for r in list_escalations(conn, region="EMEA")]
        by_lead = [r["customer"] for r in list_escalations(conn, lead_engineer="lead9", status=None)]
        both = list_escalations(conn, region="AMER", status="closed")

    assert [r["customer"] for r in every] == ["Globex", "Initech", "Hooli", "Umbrella"]
    assert every[0]["escalation_id"] == LDAP
    assert every[0]["lead_engineer"] == "priya.lead"
    assert by_status == ["Hooli", "Umbrella"]
    assert [(r["escalation_id"], r["status"]) for r in by_customer] == [(BUMPY, "closed")]
    assert by_region == ["Globex"]
    assert by_lead == ["Hooli"]
    assert [r["customer"] for r in both] == ["Initech"]


def test_listing_by_an_unknown_column_names_the_ones_there_are(engine: sa.Engine) -> None:
    message = "cannot filter escalations by 'severity'; use one of: status, customer, region, lead_engineer"
    with engine.connect() as conn, pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        list_escalations(conn, severity="high")


def test_positions_seen_are_each_escalations_newest_applied_one(engine: sa.Engine, stories: Stories) -> None:
    newest = {events[-1].escalation_id: events[-1].position for events in (stories.ldap, stories.bumpy)}

    with engine.connect() as conn:
        seen = positions_seen(conn, [LDAP, BUMPY, "never-seen"])
        nothing = positions_seen(conn, [])
        overall = position_seen(conn)
        one = position_seen(conn, BUMPY)
        unknown = position_seen(conn, "never-seen")

    assert seen == newest
    assert nothing == {}
    assert overall == stories.all[-1].position
    assert one == newest[BUMPY]
    assert unknown == 0


def test_positions_seen_before_any_position_is_applied_are_zero() -> None:
    engine = sa.create_engine("sqlite://")
    project(engine, [])

    with engine.connect() as conn:
        assert position_seen(conn) == 0


# --- the timeline table -----------------------------------------------------------------------


def test_the_timeline_table_gives_each_escalations_entries_in_order_and_its_newest(stories: Stories) -> None:
    engine = sa.create_engine("sqlite://")
    create_timeline_schema(engine)
    expected = {events[0].escalation_id: timeline(events, {}) for events in (stories.ldap, stories.bumpy)}
    with engine.begin() as conn:
        for entries in expected.values():
            insert_entries(conn, list(reversed(entries)))  # stored in any order, read by version
        insert_entries(conn, [])

    with engine.connect() as conn:
        ldap = entries_of(conn, LDAP)
        none = entries_of(conn, QUIET)
        ids = sorted(escalation_ids(conn))
        newest = last_entries(conn, [LDAP, BUMPY, QUIET])

    assert ldap == expected[LDAP]
    assert ldap[0].prev_hash == GENESIS
    assert none == []
    assert ids == [LDAP, BUMPY]
    assert newest == {LDAP: expected[LDAP][-1], BUMPY: expected[BUMPY][-1]}


def test_the_newest_entries_of_more_than_500_escalations_are_all_found() -> None:
    engine = sa.create_engine("sqlite://")
    create_timeline_schema(engine)
    ids = [f"escalation-{n:04}" for n in range(1002)]
    with engine.begin() as conn:
        insert_entries(conn, [_entry(i, version) for i in ids for version in (1, 2)])

    with engine.connect() as conn:
        newest = last_entries(conn, ids)
        nothing = last_entries(conn, [])

    assert len(newest) == 1002
    assert {e.version for e in newest.values()} == {2}
    assert newest["escalation-0500"] == _entry("escalation-0500", 2)
    assert newest["escalation-1001"] == _entry("escalation-1001", 2)
    assert nothing == {}


def test_dropping_the_timeline_schema_drops_its_table() -> None:
    engine = sa.create_engine("sqlite://")
    create_timeline_schema(engine)

    drop_timeline_schema(engine)

    assert not sa.inspect(engine).has_table(timeline_entries.name)


def _entry(escalation_id: str, version: int) -> TimelineEntry:
    return TimelineEntry(
        escalation_id=escalation_id,
        version=version,
        position=version,
        event_id=f"{escalation_id}-{version}",
        event_type="UpdatePosted",
        actor="lead1",
        region="EMEA",
        occurred_at_utc="2026-11-02 08:00 UTC",
        occurred_at_local="2026-11-02 08:00 UTC",
        summary=f"Update {version}",
        tickets="",
        hash=f"{version:064}",
        prev_hash=GENESIS,
    )


# --- the notifier's tables --------------------------------------------------------------------

GLOBEX = EscalationContext("e1", "Globex", "EMEA", "critical", "#a_globex_escalation", lead="priya", stalled=True)
INITECH = EscalationContext("e2", "Initech", "AMER", "high", "#a_initech_escalation", phase="closed")
HOOLI = EscalationContext("e3", "Hooli", "APAC", "medium", "#a_hooli_escalation", criteria_total=2, criteria_met=1)


@pytest.fixture
def notifier() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    create_notifier_schema(engine)
    return engine


def test_contexts_are_saved_replaced_and_loaded_by_escalation(notifier: sa.Engine) -> None:
    with notifier.begin() as conn:
        save_contexts(conn, {})
        save_contexts(conn, {"e1": (3, GLOBEX), "e2": (9, INITECH), "e3": (1, HOOLI)})
        save_contexts(conn, {"e1": (4, replace(GLOBEX, stalled=False))})

    with notifier.connect() as conn:
        loaded = load_contexts(conn, ["e1", "e2", "e9"])
        active = sorted(active_contexts(conn), key=lambda c: c.escalation_id)
        rows = conn.execute(sa.select(notify_context).order_by(notify_context.c.escalation_id)).all()

    assert loaded == {"e1": (4, replace(GLOBEX, stalled=False)), "e2": (9, INITECH)}
    assert active == [replace(GLOBEX, stalled=False), HOOLI]  # the closed one is not active
    assert [(r.escalation_id, r.version) for r in rows] == [("e1", 4), ("e2", 9), ("e3", 1)]
    assert json.loads(rows[2].context) == {
        "escalation_id": "e3",
        "customer": "Hooli",
        "region": "APAC",
        "severity": "medium",
        "channel": "#a_hooli_escalation",
        "lead": None,
        "dri_manager": None,
        "phase": "open",
        "criteria_total": 2,
        "criteria_met": 1,
        "last_update_at": None,
        "stalled": False,
    }


def test_a_reset_drops_the_contexts_and_keeps_deliveries_and_subscriptions(notifier: sa.Engine) -> None:
    with notifier.begin() as conn:
        save_contexts(conn, {"e1": (3, GLOBEX)})
        record_deliveries(conn, [_delivery("d1", "ev1", "slack:#a_globex_escalation")])
        conn.execute(notify_subscriptions.insert(), [_subscription_row("s1", {})])

    reset_notifier_context(notifier)
    reset_notifier_context(notifier)  # twice: the second finds the table there and still starts it empty

    with notifier.connect() as conn:
        assert load_contexts(conn, ["e1"]) == {}
        assert conn.execute(sa.select(sa.func.count()).select_from(notify_deliveries)).scalar() == 1
        assert [s.subscription.subscription_id for s in load_subscriptions(conn)] == ["s1"]


def test_a_delivery_is_recorded_once_per_event_and_destination(notifier: sa.Engine) -> None:
    first = _delivery("d1", "ev1", "slack:#a_globex_escalation")
    with notifier.begin() as conn:
        assert record_deliveries(conn, []) == 0
        recorded = record_deliveries(
            conn,
            [
                first,
                _delivery("d2", "ev1", "webhook:s1", state=SKIPPED),
                _delivery("d3", "ev1", "slack:#a_globex_escalation"),  # the same pair again in one batch
            ],
        )
        again = record_deliveries(
            conn, [_delivery("d4", "ev1", "webhook:s1"), _delivery("d5", "ev2", "webhook:s1", escalation=None)]
        )

    with notifier.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(notify_deliveries).order_by("delivery_id")).mappings()]

    assert (recorded, again) == (2, 1)
    assert [(r["delivery_id"], r["event_id"], r["destination"], r["state"]) for r in rows] == [
        ("d1", "ev1", "slack:#a_globex_escalation", PENDING),
        ("d2", "ev1", "webhook:s1", SKIPPED),
        ("d5", "ev2", "webhook:s1", PENDING),
    ]
    assert rows[0] == {
        "delivery_id": "d1",
        "event_id": "ev1",
        "destination": "slack:#a_globex_escalation",
        "escalation_id": "e1",
        "position": 7,
        "kind": "update",
        "payload": '{"text": "d1"}',
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": 1000.5,
        "leased_until": None,
        "last_error": None,
        "created_at": 1000.5,
        "sent_at": None,
    }
    assert rows[2]["escalation_id"] is None


def test_subscriptions_load_with_their_filters_and_pause(notifier: sa.Engine) -> None:
    with notifier.begin() as conn:
        conn.execute(
            notify_subscriptions.insert(),
            [
                _subscription_row("s1", {"event_types": ["UpdatePosted"], "customers": ["Globex", "Hooli"]}),
                _subscription_row("s2", {"regions": ["EMEA"], "severities": ["critical"]}, paused=True),
            ],
        )

    with notifier.connect() as conn:
        loaded = sorted(load_subscriptions(conn), key=lambda s: s.subscription.subscription_id)

    assert loaded == [
        StoredSubscription(
            Subscription(
                "s1",
                "https://hooks.example/s1",
                event_types=frozenset({"UpdatePosted"}),
                customers=frozenset({"Globex", "Hooli"}),
            ),
            1700.0,
            "mia.manager",
        ),
        StoredSubscription(
            Subscription(
                "s2",
                "https://hooks.example/s2",
                regions=frozenset({"EMEA"}),
                severities=frozenset({"critical"}),
                paused=True,
            ),
            1700.0,
            "mia.manager",
        ),
    ]


def _delivery(
    delivery_id: str, event_id: str, destination: str, state: str = PENDING, escalation: str | None = "e1"
) -> NewDelivery:
    return NewDelivery(
        delivery_id=delivery_id,
        event_id=event_id,
        destination=destination,
        escalation_id=escalation,
        position=7,
        kind="update",
        payload={"text": delivery_id},
        state=state,
        created_at=1000.5,
    )


def _subscription_row(subscription_id: str, filters: dict[str, list[str]], *, paused: bool = False) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "url": f"https://hooks.example/{subscription_id}",
        "secret": "not-a-real-secret",
        "filters": json.dumps(filters),
        "paused": paused,
        "created_at": 1700.0,
        "created_by": "mia.manager",
    }


# --- what the watcher found overdue, in the active report ---------------------------------------


def test_the_active_report_says_since_when_the_watcher_found_an_update_overdue(engine: sa.Engine) -> None:
    create_watcher_schema(engine)
    deadline = {"partition": 0, "facts": "{}", "settled_at": None, "note": None}
    with engine.begin() as conn:
        assert overdue_updates(conn) == {}
        conn.execute(
            watcher_deadlines.insert(),
            [
                deadline
                | {"deadline_id": "u1", "escalation_id": QUIET, "kind": UPDATE_OVERDUE, "state": FIRED}
                | {"due_at": "2026-11-10T00:00:00+00:00"},
                deadline
                | {"deadline_id": "u2", "escalation_id": CLASHING, "kind": UPDATE_OVERDUE, "state": PENDING}
                | {"due_at": "2026-11-11T00:00:00+00:00"},
                deadline
                | {"deadline_id": "s1", "escalation_id": CLASHING, "kind": "stall", "state": FIRED}
                | {"due_at": "2026-11-12T00:00:00+00:00"},
            ],
        )
    try:
        with engine.connect() as conn:
            overdue = overdue_updates(conn)
            active = {r["customer"]: r["update_overdue_since"] for r in active_escalations(conn, NOW)}
    finally:
        drop_watcher_schema(engine)

    assert overdue == {QUIET: "2026-11-10T00:00:00+00:00"}
    assert active == {"Hooli": "2026-11-10T00:00:00+00:00", "Umbrella": None}


def test_without_a_watcher_nothing_is_overdue_and_without_an_update_there_are_no_hours_since_one(
    stories: Stories,
) -> None:
    engine = sa.create_engine("sqlite://")
    project(engine, stories.quiet[:4])  # opened, prepared, staffed and scoped: no update yet

    with engine.connect() as conn:
        (row,) = active_escalations(conn, NOW)

    assert (row["customer"], row["hours_since_update"], row["update_overdue_since"]) == ("Hooli", None, None)
    assert (row["days_open"], row["updates_posted"], row["exit_criteria"]) == (15, 0, "0/1")


def test_the_reports_join_several_tickets_count_a_stall_and_round_shares_and_hours() -> None:
    """An open escalation sharing two tickets with another, stalled, with three emergencies (one out of hours)."""
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    other = quiet_escalation(service, start, customer="Hooli", region="EMEA", lead="lead9", ticket="ZD-1")
    r = updated_once(service, start, customer="Acme", region="EMEA", lead="lead8", ticket="ZD-2")
    eid = r.escalation_id
    for command in (
        c.DefineScope(
            escalation_id=eid,
            exit_criteria=[{"id": "ok", "description": "Works"}],
            related_tickets=["ZD-1", "ZD-2"],
            unrelated_tickets=["ZD-8", "ZD-9"],
            agreed_with="acme.owner",
            customer_acknowledged_delays=True,
            occurred_at=start + timedelta(hours=6),
        ),
        c.MarkStalled(
            escalation_id=eid, reason="No lead", noticed_by="sam.manager", occurred_at=start + timedelta(hours=7)
        ),
        *(
            c.RaiseEmergency(
                escalation_id=eid,
                ticket=f"ZD-{n}",
                out_of_hours=n == 3,
                handled_by="lead8",
                occurred_at=start + timedelta(hours=8 + n),
            )
            for n in (3, 4, 5)
        ),
    ):
        r = service.handle(command, actor="sam.manager", expected_version=r.version)
    engine = sa.create_engine("sqlite://")
    project(engine, [*history_as_recorded(service, other), *history_as_recorded(service, eid)])
    later = NOW + timedelta(minutes=20)

    with engine.connect() as conn:
        scope = {row["customer"]: row for row in reports.scope(conn, later)}
        active = {row["customer"]: row for row in active_escalations(conn, later)}
        (emergencies,) = reports.emergencies(conn, later)

    assert scope["Acme"]["related_ticket_ids"] == "ZD-1, ZD-2"
    assert scope["Acme"]["unrelated_ticket_ids"] == "ZD-8, ZD-9"
    assert scope["Acme"]["claimed_by_another_escalation"] == "ZD-1"
    assert (active["Acme"]["stalled"], active["Hooli"]["stalled"]) == (True, False)
    assert active["Acme"]["hours_since_update"] == 427.3  # 17 days 19 h 20 min after 13:00 on the 2nd
    assert (emergencies["emergencies"], emergencies["out_of_hours_share"]) == (3, 0.333)


def test_a_reset_creates_the_context_table_where_there_is_none() -> None:
    engine = sa.create_engine("sqlite://")

    reset_notifier_context(engine)

    assert sa.inspect(engine).has_table(notify_context.name)


def test_the_newest_entry_is_each_escalations_own_when_their_lengths_differ() -> None:
    engine = sa.create_engine("sqlite://")
    create_timeline_schema(engine)
    with engine.begin() as conn:
        insert_entries(conn, [_entry("a", 1), _entry("a", 2), _entry("a", 3), _entry("b", 1), _entry("b", 2)])

    with engine.connect() as conn:
        newest = last_entries(conn, ["a", "b"])

    assert newest == {"a": _entry("a", 3), "b": _entry("b", 2)}


def test_an_escalation_applied_at_position_zero_has_seen_position_zero(stories: Stories) -> None:
    engine = sa.create_engine("sqlite://")
    project(engine, [replace(e, position=0) for e in stories.quiet])  # as history gives them, without a broker

    with engine.connect() as conn:
        assert positions_seen(conn, [QUIET]) == {QUIET: 0}


def test_the_scope_report_lists_every_ticket_another_open_escalation_claims() -> None:
    stories = record_stories()

    def claiming(events: list[RecordedEvent]) -> list[RecordedEvent]:
        return [
            replace(e, data=e.data | {"related_tickets": ["ZD-7", "ZD-8"]}) if e.name == "ScopeDefined" else e
            for e in events
        ]

    engine = sa.create_engine("sqlite://")
    project(engine, [*claiming(stories.quiet), *claiming(stories.clashing)])
    with engine.connect() as conn:
        rows = reports.scope(conn, NOW)

    assert [(r["customer"], r["claimed_by_another_escalation"]) for r in rows] == [
        ("Hooli", "ZD-7, ZD-8"),
        ("Umbrella", "ZD-7, ZD-8"),
    ]
