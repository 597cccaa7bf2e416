"""The reporting read model answers each question correctly for a handmade set of escalations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa

from domain.service import EscalationService
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.messaging import envelope
from projections.facts import (
    EscalationFacts,
    RecordedEvent,
    VersionGapError,
    evolve,
    facts_from_json,
    facts_to_json,
    fold,
)
from projections.reports import REPORTS
from projections.tables import ReadModelOutdatedError, create_schema, load_facts, write_facts
from tests.fakes import SteppingClock

MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def as_consumed(service: EscalationService, escalation_id: UUID) -> list[RecordedEvent]:
    """The events as a consumer receives them: encoded on the wire, then decoded."""
    events = []
    for position, event in enumerate(service.history(escalation_id), start=1):
        _, value, headers = envelope.encode(event, position, "urn:test")
        decoded = envelope.decode(headers, value)
        events.append(
            RecordedEvent(decoded.name, str(decoded.escalation_id), decoded.aggregate_version, position, decoded.data)
        )
    return events


@pytest.fixture
def handmade() -> tuple[sa.Engine, dict[str, UUID]]:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    ids = {
        "globex": ldap_proxy_story(service, MONDAY),
        "initech": quiet_escalation(
            service, MONDAY + timedelta(days=14), customer="Initech", region="AMER", lead="ana", ticket="ZD-2001"
        ),
        "umbrella": quiet_escalation(
            service, MONDAY + timedelta(days=15), customer="Umbrella", region="APAC", lead="kenji", ticket="ZD-2001"
        ),
    }
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    with engine.begin() as conn:
        for escalation_id in ids.values():
            facts: EscalationFacts | None = None
            touched: frozenset[str] = frozenset()
            for event in as_consumed(service, escalation_id):
                facts = fold(facts, event)
                touched |= facts.touched
            assert facts is not None
            write_facts(conn, facts, touched)
    return engine, ids


def report(engine: sa.Engine, name: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return REPORTS[name](conn, NOW)


def test_active_escalations_are_the_open_ones_with_their_state(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    rows = {r["customer"]: r for r in report(engine, "active")}

    assert set(rows) == {"Initech", "Umbrella"}
    assert rows["Initech"]["lead_engineer"] == "ana"
    assert rows["Initech"]["exit_criteria"] == "0/1"
    assert rows["Initech"]["days_open"] == 4
    assert rows["Initech"]["stalled"] is False


def test_lead_workload_counts_active_escalations_per_lead_and_region(
    handmade: tuple[sa.Engine, dict[str, UUID]],
) -> None:
    engine, _ = handmade

    rows = report(engine, "workload")

    assert sorted((r["lead_engineer"], r["region"], r["active_escalations"]) for r in rows) == [
        ("ana", "AMER", 1),
        ("kenji", "APAC", 1),
    ]


def test_stalls_and_the_further_escalation_that_followed(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    (row,) = report(engine, "stalls")

    assert row["customer"] == "Globex"
    assert row["stalls"] == 1
    assert row["hours_stalled"] == 5.0
    assert row["specialist_teams"] == "Authentication"
    assert row["hours_from_stall_to_escalation"] == 1.0


def test_lifecycle_durations_from_opening(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    rows = {(r["severity"], r["region"]): r for r in report(engine, "durations")}

    globex = rows[("critical", "EMEA")]
    assert globex["quarter"] == "2026-Q4"
    assert globex["hours_to_lead_median"] == 2.0
    assert globex["hours_to_scope_median"] == 3.0
    assert globex["hours_to_monitoring_median"] == 4 * 24 + 12
    assert globex["hours_to_close_median"] == 11 * 24 + 13


def test_update_compliance_follows_the_severity_cadence(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    rows = {(r["lead_engineer"], r["month"]): r for r in report(engine, "compliance")}

    # Critical (daily): scope Monday, updates Monday, Tuesday, Wednesday, none on Thursday, monitoring
    # from Friday: four windows, the one due by the end of Thursday missed.
    priya = rows[("priya.lead", "2026-11")]
    assert (priya["due_windows"], priya["met_windows"], priya["share_met"], priya["week"]) == (4, 3, 0.75, "2026-11-02")
    assert priya["overdue_now"] == 0


def test_scope_shows_tickets_claimed_by_two_open_escalations(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    # Closed too, with the same LDAP tickets as Globex: two closed claims are no clash.
    hooli: EscalationFacts | None = None
    for event in as_consumed(service, ldap_proxy_story(service, MONDAY, customer="Hooli")):
        hooli = fold(hooli, event)
    assert hooli is not None
    with engine.begin() as conn:
        write_facts(conn, hooli, hooli.touched | {"escalation_tickets"})

    rows = {r["customer"]: r for r in report(engine, "scope")}

    assert (rows["Globex"]["related_tickets"], rows["Globex"]["unrelated_tickets"]) == (2, 1)
    assert (rows["Globex"]["related_ticket_ids"], rows["Globex"]["unrelated_ticket_ids"]) == (
        "ZD-1001, ZD-1002",
        "ZD-0987",
    )
    assert rows["Globex"]["claimed_by_another_escalation"] == ""
    assert rows["Initech"]["claimed_by_another_escalation"] == "ZD-2001"


def test_uncertainties_and_how_long_they_stayed_unknown(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    rows = {r["uncertainty_id"]: r for r in report(engine, "uncertainty")}

    assert rows["U1"]["state"] == "answered"
    assert rows["U1"]["hours_unknown"] == 49.0  # the two days lost to the unknown LDAP proxy
    assert rows["U2"]["became_risk"] is True


def test_emergencies_during_escalations(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, _ = handmade

    (row,) = report(engine, "emergencies")

    assert (row["customer"], row["emergencies"], row["out_of_hours_share"], row["unreviewed"]) == ("Globex", 1, 1.0, 0)


def test_a_republished_duplicate_changes_nothing_and_a_gap_is_refused() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    events = as_consumed(service, ldap_proxy_story(service, MONDAY))
    facts = None
    for event in events[:5]:
        facts = fold(facts, event)

    assert fold(facts, events[3]) is facts
    with pytest.raises(VersionGapError, match="jumps from version 5 to 7"):
        fold(facts, events[6])


def test_the_stored_facts_read_back_equal(handmade: tuple[sa.Engine, dict[str, UUID]]) -> None:
    engine, ids = handmade
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    facts = None
    for event in as_consumed(service, ldap_proxy_story(service, MONDAY)):
        facts = fold(facts, event)

    with engine.connect() as conn:
        stored = load_facts(conn, str(ids["globex"]))

    assert stored is not None
    assert facts is not None
    assert stored.updates == facts.updates
    assert stored.stalls == facts.stalls
    assert stored.uncertainties == facts.uncertainties


def test_a_read_model_of_another_schema_version_asks_for_a_rebuild() -> None:
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("update read_model_schema set version = 0"))

    with pytest.raises(ReadModelOutdatedError, match="run `escalations rebuild reporting`"):
        create_schema(engine)


def test_the_facts_survive_their_json_whole() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    facts = None
    for event in as_consumed(service, ldap_proxy_story(service, MONDAY)):
        facts = fold(facts, event)
    assert facts is not None

    assert facts_from_json(facts_to_json(facts)) == facts
    assert facts_to_json(facts_from_json(facts_to_json(facts))) == facts_to_json(facts)


def test_a_fold_step_that_names_no_field_of_the_facts_is_refused() -> None:
    with pytest.raises(TypeError, match=r"no field \['stauts'\]"):
        evolve(EscalationFacts(escalation_id="e"), stauts="closed")
