"""Test doubles with production behaviour: a clock that moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from projections.facts import RecordedEvent
    from projections.timeline import Zones


class SteppingClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def project(engine: sa.Engine, events: list[RecordedEvent], zones: Zones | None = None) -> None:
    """Fold events into the reporting and timeline read models as their consumers would, without a broker."""
    from consumers.reporting import ReportingProjector  # noqa: PLC0415
    from consumers.runtime import Decoded  # noqa: PLC0415
    from consumers.timeline import TimelineProjector  # noqa: PLC0415
    from projections.tables import create_schema  # noqa: PLC0415
    from projections.timeline_tables import create_timeline_schema  # noqa: PLC0415

    def refuse(_: object, error: Exception) -> None:
        raise error

    create_schema(engine)
    create_timeline_schema(engine)
    batch = [Decoded(None, event) for event in events]
    with engine.begin() as conn:
        ReportingProjector().apply(conn, batch, refuse)
        TimelineProjector(zones or {}).apply(conn, batch, refuse)
