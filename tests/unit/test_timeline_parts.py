"""Timeline parts the stories do not reach: corrected ticket lists, a history read from its middle,
the first difference an audit names, and marks at their rounding and gap boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import build_region_zones
from infra.settings import Settings
from projections.facts import RecordedEvent
from projections.retro import retrospective
from projections.timeline import first_difference, marks, summarize, tickets_of, timeline

ZONES = build_region_zones(Settings())


def event(name: str, version: int, occurred_at: str, **data: Any) -> RecordedEvent:
    return RecordedEvent(name, "e-1", version, version, {"occurred_at": occurred_at, "actor": "sam", **data})


def test_a_correction_touches_every_ticket_it_corrects() -> None:
    correction = event(
        "CorrectionRecorded",
        9,
        "2026-11-03T09:00:00Z",
        corrects_version=2,
        corrected_facts={
            "tickets_reviewed": ["ZD-1"],
            "handed_off_tickets": ["ZD-2"],
            "related_tickets": ["ZD-3"],
            "unrelated_tickets": ["ZD-4"],
            "ticket": "ZD-5",
        },
    )

    assert tickets_of(correction) == ["ZD-5", "ZD-1", "ZD-2", "ZD-3", "ZD-4"]


def test_a_timeline_read_from_the_middle_of_a_history_has_no_region_and_an_unknown_actor_is_blank() -> None:
    later = RecordedEvent("ProgressResumed", "e-1", 7, 7, {"occurred_at": "2026-11-03T09:00:00Z", "note": "n"})

    (entry,) = timeline([later], ZONES)

    assert (entry.region, entry.actor) == ("", "")


def test_a_closing_says_whether_the_exit_criteria_were_met() -> None:
    def closed(met: bool) -> str:
        return summarize(
            event("EscalationClosed", 9, "2026-11-03T09:00:00Z", outcome="positive", exit_criteria_met=met)
        )

    assert closed(met=False) == "Closed (positive outcome; exit criteria met: no)"
    assert closed(met=True) == "Closed (positive outcome; exit criteria met: yes)"


def test_the_first_difference_names_a_missing_entry_and_every_field_that_differs() -> None:
    history = [
        event(
            "EscalationOpened", 1, "2026-11-02T09:00:00Z", customer="Hooli", region="EMEA", severity="high", summary="s"
        ),
        event(
            "UpdatePosted",
            2,
            "2026-11-02T10:00:00Z",
            update_number=1,
            channel="#a",
            status="ok",
            progress="p",
            ticket="ZD-1",
        ),
    ]
    expected = timeline(history, ZONES)

    assert first_difference(expected[:1], expected) == "entry v2 (UpdatePosted) is missing from the stored timeline"
    tampered = [expected[0], replace(expected[1], summary="nothing happened", tickets="")]
    assert first_difference(tampered, expected) == (
        f"entry v2 (UpdatePosted) differs from history in summary, tickets; "
        f"expected v2 (UpdatePosted) with hash {expected[1].hash[:12]}"
    )


def test_marks_round_to_a_tenth_of_an_hour_and_count_a_gap_of_two_working_days() -> None:
    history = [
        event("EscalationOpened", 1, "2026-11-02T09:00:00Z"),  # a Monday
        event("LeadEngineerAssigned", 2, "2026-11-02T09:20:00Z"),
        event("ScopeDefined", 3, "2026-11-02T09:40:00Z"),
        event("UpdatePosted", 4, "2026-11-02T10:00:00Z"),
        event("UpdatePosted", 5, "2026-11-03T10:00:00Z"),  # the next working day: no gap
        event("UpdatePosted", 6, "2026-11-05T10:00:00Z"),  # two working days later: a gap
    ]

    found = marks(history, datetime(2026, 11, 5, 11, 5, tzinfo=UTC))

    assert (found["hours_to_lead"], found["hours_to_scope"], found["total_hours"]) == (0.3, 0.7, 74.1)
    assert found["update_gaps_over_one_working_day"] == [
        {"from": "2026-11-03T10:00:00+00:00", "to": "2026-11-05T10:00:00+00:00", "working_days": 2}
    ]


def test_a_retrospective_of_an_opening_recorded_before_escalation_dris_names_the_dri_manager() -> None:
    opened = event(
        "EscalationOpened",
        1,
        "2026-11-02T09:00:00Z",
        customer="Hooli",
        region="EMEA",
        severity="high",
        summary="s",
        account_owner="o",
        dri_manager="mia.manager",
        source="support_manager",
        channel="#a_hooli_escalation",
    )

    people = retrospective([opened], datetime(2026, 11, 3, tzinfo=UTC), timeline([opened], ZONES))["people"]

    assert (people["dri_manager"], people["escalation_dri"]) == ("mia.manager", "mia.manager")
