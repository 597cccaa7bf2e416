"""The timeline consumer: appends one hash-chained entry per event to each escalation's timeline."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from consumers.runtime import Decoded, OnError
from projections.facts import VersionGapError
from projections.timeline import TimelineEntry, Zones, next_entry
from projections.timeline_tables import insert_entries, last_entries

GROUP = "escalations.timeline"


def _checked_next(previous: TimelineEntry | None, version: int, key: str) -> TimelineEntry | None:
    seen = previous.version if previous else 0
    if version != seen + 1:
        msg = f"escalation {key} jumps from version {seen} to {version}; republish from the relay"
        raise VersionGapError(msg)
    return previous


class TimelineProjector:
    """Each entry shows the event's local time in its region's zone (`zones`, from the region calendars)."""

    def __init__(self, zones: Zones) -> None:
        self.zones = zones

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        # One query for the newest entry of every escalation in the batch.
        last: dict[str, TimelineEntry | None] = dict.fromkeys({event.escalation_id for _, event in batch})
        last |= last_entries(conn, list(last))
        new: list[TimelineEntry] = []
        for record, event in batch:
            key = event.escalation_id
            previous = last[key]
            if previous is not None and event.version <= previous.version:
                continue  # a republished duplicate
            try:
                entry = next_entry(_checked_next(previous, event.version, key), event, self.zones)
            except Exception as error:  # noqa: BLE001 - one bad record goes to the dead-letter topic
                on_error(record, error)
                continue
            last[key] = entry
            new.append(entry)
        insert_entries(conn, new)
        return len(new)
