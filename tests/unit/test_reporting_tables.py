"""The reporting tables' own plumbing: which statements a write runs, the region calendar, loading back.

The rows themselves are pinned by the golden file (`test_golden_outputs.py`); here is what the rows
cannot show: that writing what did not change runs no statement, that the calendar grows by exactly
the missing days, and that the views and events read back the same on every dialect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from functools import reduce
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from projections import tables
from projections.bulk import as_tuples
from projections.facts import EscalationFacts, RecordedEvent, fold
from tests.unit.golden_stories import record_stories

EVERY_CHILD_TABLE = frozenset(t.name for t in tables.CHILD_TABLES)


@pytest.fixture
def ldap() -> EscalationFacts:
    """The handbook's LDAP story folded: updates, a stall, a specialist team, tickets, an emergency."""
    facts = reduce(fold, record_stories().ldap, None)
    assert facts is not None
    return facts


@pytest.fixture
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    tables.create_schema(engine)
    return engine


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[tuple[str, int]]]:
    """Every statement sent to the driver while inside, with how many parameter rows it ran for."""
    seen: list[tuple[str, int]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        seen.append((" ".join(statement.split()), len(parameters) if many else 1))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def written(seen: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(sql, rows) for sql, rows in seen if not sql.startswith("SELECT")]


def insert_into(table: sa.Table) -> str:
    columns, values = ", ".join(c.name for c in table.columns), ", ".join("?" * len(table.columns))
    return f"INSERT INTO {table.name} ({columns}) VALUES ({values})"  # noqa: S608 - our own table


def every_row(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)))) for t in tables.READ_MODEL_TABLES}


def test_writing_facts_that_did_not_change_replaces_only_the_state_and_the_escalation_row(
    engine: sa.Engine, ldap: EscalationFacts
) -> None:
    key = ldap.escalation_id
    with engine.begin() as conn:
        tables.write_many(conn, [(ldap, EVERY_CHILD_TABLE)], before={key: None})
    rows = every_row(engine)

    with engine.begin() as conn, statements(engine) as seen:
        tables.write_many(conn, [(ldap, EVERY_CHILD_TABLE)], before={key: ldap})

    # The child tables and the compliance windows are left alone: none of their rows changed.
    assert written(seen) == [
        ("DELETE FROM reporting_state WHERE escalation_id = ?", 1),
        ("DELETE FROM escalations WHERE escalation_id = ?", 1),
        (insert_into(tables.reporting_state), 1),
        (insert_into(tables.escalations), 1),
    ]
    assert every_row(engine) == rows


def test_without_what_was_written_before_every_touched_table_is_replaced_and_ends_the_same(
    engine: sa.Engine, ldap: EscalationFacts
) -> None:
    with engine.begin() as conn:
        tables.write_facts(conn, ldap, EVERY_CHILD_TABLE)
    rows = every_row(engine)

    with engine.begin() as conn, statements(engine) as seen:
        tables.write_facts(conn, ldap, EVERY_CHILD_TABLE)

    deleted = {sql.split()[2] for sql, _ in written(seen) if sql.startswith("DELETE")}
    assert deleted == {"reporting_state", "escalations", "escalation_compliance_windows", *EVERY_CHILD_TABLE}
    assert every_row(engine) == rows


def test_one_changed_update_replaces_that_row_alone(engine: sa.Engine, ldap: EscalationFacts) -> None:
    key = ldap.escalation_id
    with engine.begin() as conn:
        tables.write_many(conn, [(ldap, EVERY_CHILD_TABLE)], before={key: None})
    first, *rest = ldap.updates
    changed = replace(ldap, updates=(replace(first, lead="someone.else"), *rest))

    with engine.begin() as conn, statements(engine) as seen:
        tables.write_many(conn, [(changed, frozenset({"escalation_updates"}))], before={key: ldap})

    assert ("DELETE FROM escalation_updates WHERE escalation_id = ? AND update_number = ?", 1) in written(seen)
    with engine.connect() as conn:
        leads = conn.execute(sa.select(tables.escalation_updates.c.lead_engineer)).scalars().all()
    assert sorted(map(str, leads)) == sorted(["someone.else", *(str(u.lead) for u in rest)])


def test_the_duty_moves_when_the_region_does(engine: sa.Engine, ldap: EscalationFacts) -> None:
    key = ldap.escalation_id
    with engine.begin() as conn:
        tables.write_many(conn, [(ldap, frozenset())], before={key: None})
    moved = replace(ldap, region="APAC" if ldap.region != "APAC" else "EMEA")

    with engine.begin() as conn:
        tables.write_many(conn, [(moved, frozenset())], before={key: ldap})

    with engine.connect() as conn:
        regions = set(conn.execute(sa.select(tables.escalation_compliance_windows.c.region)).scalars())
    assert regions == {moved.region}


def calendar_days(engine: sa.Engine) -> dict[str, list[str]]:
    t = tables.region_working_days
    with engine.connect() as conn:
        found: dict[str, list[str]] = {}
        for region, day in conn.execute(sa.select(t.c.region, t.c.day).order_by(t.c.region, t.c.day)):
            found.setdefault(region, []).append(day)
    return found


def opened_on(facts: EscalationFacts, day: date) -> EscalationFacts:
    return replace(facts, escalation_id=f"{facts.escalation_id}-{day}", opened_at=f"{day}T09:00:00+00:00")


def test_the_region_calendar_runs_from_a_week_before_the_first_escalation_to_a_year_after_the_last(
    engine: sa.Engine, ldap: EscalationFacts
) -> None:
    with engine.begin() as conn:
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 11)), frozenset())  # a Wednesday

    days = calendar_days(engine)
    assert set(days) == {"AMER", "EMEA", "APAC"}
    for region in days.values():
        assert region[0] == "2026-11-04"  # a week before: Wednesday
        assert region[-1] == "2027-11-12"  # 366 days after: Friday
        assert "2026-11-07" not in region  # a Saturday


def test_an_earlier_or_later_escalation_adds_exactly_the_missing_days(engine: sa.Engine, ldap: EscalationFacts) -> None:
    with engine.begin() as conn:
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 11)), frozenset())
    before = calendar_days(engine)

    with engine.begin() as conn, statements(engine) as seen:  # one day earlier: Tuesday 3 November is missing
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 10)), frozenset())
    inserts = [rows for sql, rows in written(seen) if sql.startswith("INSERT INTO region_working_days")]
    assert inserts == [3]  # that one day, in each of the three regions
    assert calendar_days(engine) == {region: ["2026-11-03", *days] for region, days in before.items()}

    with engine.begin() as conn, statements(engine) as seen:  # within what is held: nothing to add
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 12)), frozenset())
    assert not [sql for sql, _ in written(seen) if sql.startswith("INSERT INTO region_working_days")]

    with engine.begin() as conn, statements(engine) as seen:  # a Saturday: its year ends on Monday 15 November
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 14)), frozenset())
    inserts = [rows for sql, rows in written(seen) if sql.startswith("INSERT INTO region_working_days")]
    assert inserts == [3]
    assert all(days[-1] == "2027-11-15" for days in calendar_days(engine).values())

    with engine.begin() as conn:  # a Sunday: the day right after the last one held, a Tuesday, is added
        tables.write_facts(conn, opened_on(ldap, date(2026, 11, 15)), frozenset())
    assert all(days[-2:] == ["2027-11-15", "2027-11-16"] for days in calendar_days(engine).values())


def test_a_region_without_a_configured_calendar_counts_in_utc_under_its_own_name() -> None:
    calendar = tables.calendar_of({}, "LATAM")

    assert calendar.region == "LATAM"
    assert calendar.zone.key == "UTC"


def test_events_load_back_in_version_order_with_their_ids(engine: sa.Engine) -> None:
    def event(escalation: str, version: int) -> RecordedEvent:
        return RecordedEvent(
            "UpdatePosted", escalation, version, version * 10, {"n": version}, f"{escalation}-{version}"
        )

    with engine.begin() as conn:
        tables.store_events(conn, [event("b", 2), event("a", 3), event("a", 1), event("b", 1), event("a", 2)])
        loaded = tables.load_events(conn, ["a", "b", "c"])

    assert loaded == {
        "a": [event("a", 1), event("a", 2), event("a", 3)],
        "b": [event("b", 1), event("b", 2)],
        "c": [],
    }


def test_facts_load_back_one_or_many_and_an_unknown_escalation_has_none(
    engine: sa.Engine, ldap: EscalationFacts
) -> None:
    ids = [f"e{n:04}" for n in range(1200)]
    stored = {ids[n]: replace(ldap, escalation_id=ids[n]) for n in (0, 499, 500, 999, 1000, 1001, 1199)}
    with engine.begin() as conn:
        tables.write_many(conn, [(f, frozenset()) for f in stored.values()], before=dict.fromkeys(stored))

    with engine.connect() as conn:
        assert tables.load_many_facts(conn, ids) == stored  # in chunks of 500 ids
        assert tables.load_facts(conn, "e0500") == stored["e0500"]
        assert tables.load_facts(conn, "nobody") is None


def test_each_dialect_gets_its_own_clock_and_an_unknown_one_gets_sqlites() -> None:
    for name in tables.VIEWS:
        sqlite, postgresql = tables.view_sql(name, "sqlite"), tables.view_sql(name, "postgresql")
        assert tables.view_sql(name, "mysql") == sqlite
        if "{now}" in tables.VIEWS[name] or "HOURS_UNTIL" in tables.VIEWS[name]:
            assert tables.NOW["postgresql"] in postgresql
            assert tables.NOW["sqlite"] not in postgresql
            assert tables.NOW["sqlite"] in sqlite


def test_rounding_wraps_exactly_the_bracketed_expression() -> None:
    sql = "SELECT ROUND1(a + (b * 2)) AS x, ROUND2(c) AS y, (d) FROM t"

    assert tables._expand_rounding(sql) == (
        "SELECT CAST(ROUND(CAST(a + (b * 2) AS NUMERIC), 1) AS DOUBLE PRECISION) AS x, "
        "CAST(ROUND(CAST(c AS NUMERIC), 2) AS DOUBLE PRECISION) AS y, (d) FROM t"
    )


@pytest.mark.parametrize(
    ("dialect", "kind", "sql_ends"),
    [
        (postgresql.dialect(), postgresql.Insert, "ON CONFLICT DO NOTHING"),
        (sqlite.dialect(), sqlite.Insert, "ON CONFLICT DO NOTHING"),
        (mysql.dialect(), sa.Insert, "VALUES (%s, %s, %s)"),  # no such clause there: a plain insert
    ],
)
def test_days_another_consumer_already_added_are_skipped_in_each_dialect(
    dialect: sa.Dialect, kind: type[sa.Insert], sql_ends: str
) -> None:
    conn = SimpleNamespace(dialect=dialect)

    statement = tables._insert_new(conn, tables.region_working_days)  # type: ignore[arg-type]

    assert type(statement) is kind
    assert str(statement.compile(dialect=dialect)).endswith(sql_ends)


def test_rows_become_tuples_in_column_order_with_none_for_what_a_row_does_not_name() -> None:
    meta = sa.MetaData()
    one = sa.Table("one", meta, sa.Column("a", sa.Integer))
    two = sa.Table("two", meta, sa.Column("a", sa.Integer), sa.Column("b", sa.Integer))

    assert as_tuples(one, [{"a": 1}, {}]) == [(1,), (None,)]
    assert as_tuples(two, [{"b": 2, "a": 1}, {"b": 3}]) == [(1, 2), (None, 3)]


def test_an_escalation_missing_from_what_was_written_before_is_replaced_whole(
    engine: sa.Engine, ldap: EscalationFacts
) -> None:
    with engine.begin() as conn:
        tables.write_facts(conn, ldap, EVERY_CHILD_TABLE)
    rows = every_row(engine)

    with engine.begin() as conn:
        tables.write_many(conn, [(ldap, EVERY_CHILD_TABLE)], before={})  # not known: not taken as new

    assert every_row(engine) == rows
