"""The LDAP-proxy escalation's timeline, its hash chain, its marks and its retrospective."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.bootstrap import build_region_zones
from infra.local.stories import ldap_proxy_story
from infra.messaging.envelope import event_id
from infra.settings import Settings
from projections.facts import RecordedEvent
from projections.retro import render_markdown, retrospective
from projections.timeline import GENESIS, TimelineEntry, canonical_bytes, first_difference, marks, timeline
from tests.fakes import SteppingClock

MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ZONES = build_region_zones(Settings())


@pytest.fixture
def ldap_events() -> list[RecordedEvent]:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    return history_as_recorded(service, ldap_proxy_story(service, MONDAY))


def test_each_event_becomes_one_readable_entry_with_both_times(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)

    assert len(entries) == 24
    assert entries[0].summary.startswith("Escalation opened for Globex (EMEA, critical)")
    assert entries[2].summary == "Lead engineer set to priya.lead (EMEA); handed off 3 tickets"
    assert entries[2].tickets == "ZD-0950, ZD-0951, ZD-0960"
    assert entries[0].occurred_at_utc == "2026-11-02 08:00 UTC"
    assert entries[0].occurred_at_local == "2026-11-02 08:00 Europe/London"
    assert [e.actor for e in entries if e.event_type == "UpdatePosted"] == ["priya.lead"] * 4
    assert entries[3].event_id == event_id(UUID(entries[3].escalation_id), 4)


def test_entries_form_a_hash_chain(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)

    assert entries[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert len({e.hash for e in entries}) == len(entries)


def test_the_marks_show_the_durations_and_what_went_slow(ldap_events: list[RecordedEvent]) -> None:
    found = marks(ldap_events, NOW)

    assert (found["hours_to_lead"], found["hours_to_scope"]) == (2.0, 3.0)
    assert found["stalled_periods"] == [
        {"from": "2026-11-04T09:00:00+00:00", "to": "2026-11-04T14:00:00+00:00", "hours": 5.0}
    ]
    assert found["further_escalations"] == ["Authentication"]
    assert found["monitoring"] == {"from": "2026-11-06T20:00:00+00:00", "days": 7}
    # Wednesday's last update, then none until the following Monday.
    assert [g["working_days"] for g in found["update_gaps_over_one_working_day"]] == [3]
    assert found["total_hours"] == 11 * 24 + 13


def test_the_retrospective_reads_like_a_retro_issue(ldap_events: list[RecordedEvent]) -> None:
    text = render_markdown(retrospective(ldap_events, NOW, timeline(ldap_events, ZONES)))

    assert text.startswith("# Retrospective: Globex account escalation")
    assert "- [x] All users can sign in through LDAP (Customer confirmed all groups sign in)" in text
    assert (
        "- What sits between the instance and the directory?: answered after 49.0 hours: "
        "An LDAP proxy, misconfigured after an upgrade"
    ) in text
    assert "- Authentication (INFRA-4242): Need eyes on the LDAP integration" in text
    assert "- ZD-1010: out of hours, handled by oncall.amer" in text
    assert "- Stalled: 5.0 hours in 1 period(s)" in text
    for section in ("## What went well", "## What went wrong", "## Follow-up actions", "## Timeline"):
        assert section in text


def test_a_changed_entry_is_named(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)
    stored = [*entries[:6], replace(entries[6], summary="Nothing to see"), *entries[7:]]

    assert first_difference(stored, entries) == (
        f"entry v7 (UncertaintyRaised) differs from history in summary; expected v7 (UncertaintyRaised) "
        f"with hash {entries[6].hash[:12]}"
    )


@pytest.mark.parametrize("column", ["hash", "prev_hash"])
def test_a_changed_hash_column_alone_is_named(ldap_events: list[RecordedEvent], column: str) -> None:
    entries = timeline(ldap_events, ZONES)
    stored = [*entries[:4], replace(entries[4], **{column: "f" * 64}), *entries[5:]]

    problem = first_difference(stored, entries)

    assert problem is not None
    assert problem.startswith(f"entry v5 ({entries[4].event_type}) differs from history in {column};")


def test_a_deleted_entry_is_named(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)
    stored = [*entries[:9], *entries[10:]]

    problem = first_difference(stored, entries)

    assert problem is not None
    assert problem.startswith("entry v11 (ProgressStalled) differs from history")
    assert "expected v10 (EmergencyRaised)" in problem


def test_reordered_entries_are_named(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)
    stored = [*entries[:3], entries[4], entries[3], *entries[5:]]

    problem = first_difference(stored, entries)

    assert problem is not None
    assert problem.startswith("entry v5 (ScopeDefined) differs from history")
    assert "expected v4 (ProductDriAssigned)" in problem


def test_a_rewritten_event_breaks_every_hash_after_it(ldap_events: list[RecordedEvent]) -> None:
    tampered = [*ldap_events]
    tampered[4] = replace(tampered[4], data={**tampered[4].data, "agreed_with": "someone.else"})

    original, rewritten = timeline(ldap_events, ZONES), timeline(tampered, ZONES)

    assert [a.hash == b.hash for a, b in zip(original, rewritten, strict=True)] == [True] * 4 + [False] * 20


def test_an_untouched_timeline_has_no_difference(ldap_events: list[RecordedEvent]) -> None:
    entries = timeline(ldap_events, ZONES)
    moved = [replace(e, position=e.position + 100) for e in entries]  # where it sits in the log is not history

    assert first_difference(moved, entries) is None
    assert first_difference([*entries, TimelineEntry(**{**entries[0].__dict__, "version": 25})], entries) == (
        "entry v25 (EscalationOpened) is stored but not in history"
    )


def test_times_are_shown_in_the_customer_region(ldap_events: list[RecordedEvent]) -> None:
    apac = replace(ldap_events[0], data={**ldap_events[0].data, "region": "APAC"})

    (entry,) = timeline([apac], ZONES)

    assert entry.occurred_at_local == (MONDAY + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M Asia/Singapore")


def test_the_local_time_is_the_zone_the_region_calendars_are_set_to(ldap_events: list[RecordedEvent]) -> None:
    berlin = build_region_zones(Settings(region_calendars={"EMEA": {"tz": "Europe/Berlin"}}))

    first = timeline(ldap_events[:1], berlin)[0]

    assert first.occurred_at_local == (MONDAY + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M Europe/Berlin")


def test_an_events_canonical_bytes_are_sorted_compact_utf8() -> None:
    event = RecordedEvent("UpdatePosted", "e-1", 3, 9, {"progress": "Köln · fixed", "b": 1, "a": [1, 2]})

    assert (
        canonical_bytes(event)
        == (
            '{"data":{"a":[1,2],"b":1,"progress":"Köln · fixed"},"escalation_id":"e-1","type":"UpdatePosted","version":3}'
        ).encode()
    )


def test_the_marks_of_an_escalation_without_lead_or_scope_that_stalled_twice() -> None:
    def event(name: str, moment: datetime, **data: object) -> RecordedEvent:
        return RecordedEvent(name, "e-1", 1, 1, {"occurred_at": moment.isoformat(), **data})

    monday = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    events = [
        event("EscalationOpened", monday),
        event("ProgressResumed", monday + timedelta(hours=1)),  # nothing stalled: ignored
        event("UpdatePosted", monday + timedelta(hours=2)),
        event("ProgressStalled", monday + timedelta(hours=3)),
        event("UpdatePosted", monday + timedelta(days=1)),  # Tuesday: one working day, no gap
        event("ProgressResumed", monday + timedelta(days=1, hours=1)),
        event("ProgressResumed", monday + timedelta(days=1, hours=2)),  # already resumed: ignored
        event("UpdatePosted", monday + timedelta(days=4)),  # Friday: three working days
        event("MonitoringStarted", monday + timedelta(days=4, hours=1), period_days=5),
        event("MonitoringStarted", monday + timedelta(days=4, hours=2), period_days=9),
        event("ProgressStalled", monday + timedelta(days=4, hours=3)),
    ]

    assert marks(events, monday + timedelta(days=5, hours=3)) == {
        "hours_to_lead": None,
        "hours_to_scope": None,
        "update_gaps_over_one_working_day": [
            {"from": "2026-11-03T08:00:00+00:00", "to": "2026-11-06T08:00:00+00:00", "working_days": 3}
        ],
        "stalled_periods": [
            {"from": "2026-11-02T11:00:00+00:00", "to": "2026-11-03T09:00:00+00:00", "hours": 22.0},
            {"from": "2026-11-06T11:00:00+00:00", "to": None, "hours": 24.0},
        ],
        "further_escalations": [],
        "monitoring": {"from": "2026-11-06T09:00:00+00:00", "days": 5},
        "total_hours": 123.0,
    }
