"""History as it is known now: each corrected event with its corrected facts in place.

The recorded events never change (the timeline and the audit show them as they were, and the
correction beside them); the retrospective and the read models read the corrected facts from here.
"""

from __future__ import annotations

from typing import Any

from projections.facts import RecordedEvent


def corrections_by_version(events: list[RecordedEvent]) -> dict[int, dict[str, Any]]:
    """{corrected version: its corrected facts}, a later correction of the same fact winning."""
    merged: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.name == "CorrectionRecorded" and event.data.get("corrected_facts"):
            merged.setdefault(event.data["corrects_version"], {}).update(event.data["corrected_facts"])
    return merged


def corrected(events: list[RecordedEvent]) -> list[RecordedEvent]:
    fixes = corrections_by_version(events)
    return [
        RecordedEvent(e.name, e.escalation_id, e.version, e.position, {**e.data, **fixes[e.version]}, e.event_id)
        if e.version in fixes
        else e
        for e in events
    ]
