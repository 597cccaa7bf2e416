"""Facts the reports gained: corrections applied, emergencies in hours, new read-model tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consumers.reporting import ReportingProjector
from consumers.runtime import Decoded
from domain import commands as c
from domain.service import EscalationService
from infra.local.stories import ldap_proxy_story
from projections.facts import Emergency, EscalationFacts, RecordedEvent, passed_over
from projections.tables import create_schema, write_facts
from tests.fakes import SteppingClock
from tests.unit.test_reporting_projection import MONDAY, NOW, as_consumed


def refuse(_: Any, error: Exception) -> None:
    raise error


def test_a_correction_after_closing_reaches_the_reports() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    escalation_id = ldap_proxy_story(service, MONDAY)
    first_update = next(e for e in service.history(escalation_id) if type(e).__name__ == "UpdatePosted")
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    projector = ReportingProjector()
    with engine.begin() as conn:
        projector.apply(conn, [Decoded(None, e) for e in as_consumed(service, escalation_id)], refuse)

    service.handle(
        c.RecordCorrection(
            escalation_id=escalation_id,
            corrects_version=first_update.originator_version,
            reason="posted under the wrong name",
            correction="ben wrote the first update",
            corrected_facts={"author": "ben"},
        ),
        actor="mia.manager",
    )
    with engine.begin() as conn:
        projector.apply(conn, [Decoded(None, as_consumed(service, escalation_id)[-1])], refuse)

    with engine.connect() as conn:
        authors = [
            r.author for r in conn.execute(sa.text("SELECT author FROM escalation_updates ORDER BY update_number"))
        ]
        corrections = conn.execute(sa.text("SELECT corrections FROM escalation_facts")).scalar()
    assert authors[0] == "ben"
    assert corrections == 1


def test_an_in_hours_emergency_needs_no_review() -> None:
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    facts = EscalationFacts(
        escalation_id="e1",
        customer="Acme",
        region="EMEA",
        opened_at="2026-11-02T08:00:00+00:00",
        emergencies=(
            Emergency("X1", "ZD-1", out_of_hours=False, handled_by="ana", raised_at="2026-11-02T10:00:00+00:00"),
            Emergency("X2", "ZD-2", out_of_hours=True, handled_by="oncall", raised_at="2026-11-02T22:00:00+00:00"),
        ),
    )
    with engine.begin() as conn:
        write_facts(conn, facts, frozenset({"escalation_emergencies"}))

    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM emergencies")).mappings().one()

    assert (row["in_hours"], row["out_of_hours"], row["unreviewed"]) == (1, 1, 1)


def test_facts_move_past_an_event_that_could_not_be_applied_only_when_it_is_the_next_one() -> None:
    def event(version: int) -> RecordedEvent:
        return RecordedEvent("UpdatePosted", "e-1", version, 40 + version, {})

    first = passed_over(None, event(1))
    second = passed_over(first, event(2))
    skipped = passed_over(second, event(4))
    repeated = passed_over(second, event(2))

    assert (first.escalation_id, first.version, first.position, first.touched) == ("e-1", 1, 41, {"escalations"})
    assert (second.version, second.position) == (2, 42)
    assert skipped is second
    assert repeated is second
    assert passed_over(None, event(2)) == EscalationFacts(escalation_id="e-1")
