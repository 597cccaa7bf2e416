"""The reporting projector writes only what changed, and the rows end up as a full rewrite leaves them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from bench import history
from consumers.log_client import LogRecord
from consumers.reporting import ReportingProjector
from consumers.runtime import Decoded
from domain.service import EscalationService
from infra.messaging.envelope import as_recorded
from projections import tables
from projections.bulk import as_tuples
from projections.facts import RecordedEvent, facts_from_json
from projections.tables import CHILD_TABLES, READ_MODEL_TABLES, create_schema, reporting_events, reporting_state
from tests.fakes import SteppingClock

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def seeded_events(count: int) -> list[RecordedEvent]:
    """The bench's escalations (full stories, corrections, quiet ones) in the order the relay publishes them."""
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    recorded = history.record(service, count, now=NOW)
    events = [e for escalation_id in recorded for e in service.history(escalation_id)]
    return [as_recorded(e, position) for position, e in enumerate(events, start=1)]


def project(batches: list[list[RecordedEvent]], engine: sa.Engine | None = None) -> sa.Engine:
    if engine is None:
        engine = sa.create_engine("sqlite://")
        create_schema(engine)
    projector = ReportingProjector()
    failed: list[Exception] = []
    for offset, batch in enumerate(batches):
        record = LogRecord("events", 0, offset, None, None, [], None)
        with engine.begin() as conn:
            projector.apply(conn, [Decoded(record, e) for e in batch], lambda _, error: failed.append(error))
    assert failed == []
    return engine


def every_row(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(sa.select(t)))
            for t in (*READ_MODEL_TABLES, reporting_state, reporting_events)
        }


def child_rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    rows = every_row(engine)
    return {t.name: sorted(rows[t.name], key=repr) for t in CHILD_TABLES}


def rows_from_facts(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """The child rows the stored facts call for: whatever a batch touched, the tables must hold these."""
    found: dict[str, list[tuple[object, ...]]] = {t.name: [] for t in CHILD_TABLES}
    with engine.connect() as conn:
        for stored in conn.execute(sa.select(reporting_state.c.facts)).scalars():
            for table, rows in tables._child_rows(facts_from_json(stored)).items():
                found[table.name] += as_tuples(table, rows)
    return {name: sorted(rows, key=repr) for name, rows in found.items()}


def test_event_by_event_with_resent_ones_leaves_the_rows_a_single_batch_writes() -> None:
    events = seeded_events(12)  # two full stories and a bumpy one with corrections among them
    assert any(e.name == "CorrectionRecorded" for e in events)

    whole = project([events])
    # Live: one event a batch, each one sent again right after it (a relay republishing); at every
    # step its rows equal those of a single batch of the events so far.
    live = project([])
    for n, event in enumerate(events, start=1):
        project([[event], [event]], live)
        assert every_row(live) == every_row(project([events[:n]])), f"after {n} events ({event.name})"
        assert child_rows(live) == rows_from_facts(live), f"after {n} events ({event.name})"
    # And every escalation's events in pairs, so a batch holds an event already applied.
    pairs = project([events[max(0, n - 1) : n + 1] for n in range(len(events))])

    expected = every_row(whole)
    assert sum(map(len, expected.values())) > len(events)
    assert every_row(live) == expected
    assert every_row(pairs) == expected
