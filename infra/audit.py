"""Audit replay: recompute every timeline from the event store and compare it with the stored one."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from domain.service import EscalationService
from infra.envelope import as_recorded
from projections.facts import RecordedEvent
from projections.timeline import first_difference, timeline
from projections.timeline_tables import entries_of, escalation_ids


def history_as_recorded(service: EscalationService, escalation_id: UUID) -> list[RecordedEvent]:
    return [as_recorded(event, 0) for event in service.history(escalation_id)]


def verify_timelines(
    service: EscalationService, engine: sa.Engine, escalation_id: UUID | None = None
) -> dict[str, str]:
    """{escalation id: the first entry that differs} for every stored timeline that history contradicts."""
    problems: dict[str, str] = {}
    with engine.connect() as conn:
        ids = [str(escalation_id)] if escalation_id else escalation_ids(conn)
        for key in ids:
            difference = first_difference(entries_of(conn, key), timeline(history_as_recorded(service, UUID(key))))
            if difference:
                problems[key] = difference
    return problems
