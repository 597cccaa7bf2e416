"""Corrections applied: history as it is known now, without overwriting anything that was recorded.

A `CorrectionRecorded` names the version it corrects and the corrected facts; `corrected_history`
gives the events with those facts in place (a later correction of the same fact wins). The stored
events are never changed: these are copies.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from domain.escalation import Escalation
from domain.events import CorrectionRecorded, EscalationEvent


def corrections_by_version(events: list[EscalationEvent]) -> dict[int, dict[str, Any]]:
    """{corrected version: its corrected facts}, merged in the order the corrections were recorded."""
    merged: dict[int, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, CorrectionRecorded) and event.corrected_facts:
            merged.setdefault(event.corrects_version, {}).update(event.corrected_facts)
    return merged


def corrected_history(events: list[EscalationEvent]) -> list[EscalationEvent]:
    corrections = corrections_by_version(events)
    return [
        _corrected(event, corrections[event.originator_version]) if event.originator_version in corrections else event
        for event in events
    ]


def _corrected(event: EscalationEvent, facts: dict[str, Any]) -> EscalationEvent:
    fixed = copy.copy(event)
    for name, value in facts.items():
        object.__setattr__(
            fixed, name, datetime.fromisoformat(value) if name == "occurred_at" else copy.deepcopy(value)
        )
    return fixed


def replay(events: list[EscalationEvent]) -> Escalation:
    """An escalation rebuilt from a selection of its events (versions may be skipped, unlike a normal load)."""
    escalation = events[0].mutate(None)
    assert isinstance(escalation, Escalation)
    for event in events[1:]:
        event.apply(escalation)
        escalation.event_types.append(type(event).__name__)
        escalation._version = event.originator_version  # noqa: SLF001 - the library's own counter
    return escalation
