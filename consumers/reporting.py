"""The reporting consumer: folds escalation events into the reporting read model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from consumers.runtime import Decoded, OnError
from projections.corrected import corrected
from projections.facts import EscalationFacts, RecordedEvent, VersionGapError, fold, passed_over
from projections.tables import (
    READ_MODEL_TABLES,
    UTC_CALENDARS,
    Calendars,
    load_events,
    load_many_facts,
    store_events,
    write_many,
)

Fold = Callable[[EscalationFacts | None, RecordedEvent], EscalationFacts]
GROUP = "escalations.reporting"


EVERY_TABLE = frozenset(t.name for t in READ_MODEL_TABLES)


class ReportingProjector:
    """Folds each batch into the facts, then writes the changed escalations once.

    The calendars (built from the settings in the composition root) decide the working days of the
    update compliance. A batch holding a correction refolds that escalation's corrected history, read
    from the events kept in `reporting_events`: the reports then show the facts as corrected."""

    def __init__(self, fold_event: Fold = fold, calendars: Calendars = UTC_CALENDARS) -> None:
        self.fold_event = fold_event
        self.calendars = calendars

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        # One query for the facts of every escalation in the batch.
        stored: dict[str, EscalationFacts | None] = dict.fromkeys({event.escalation_id for _, event in batch})
        stored |= load_many_facts(conn, list(stored))
        facts = dict(stored)  # stored stays as the batch found it: only what differs from it is written
        touched: dict[str, frozenset[str]] = {}
        kept: list[RecordedEvent] = []
        applied = 0
        for record, event in batch:
            key = event.escalation_id
            before = facts[key]
            folded = True
            try:
                after = self.fold_event(before, event)
            except VersionGapError as error:
                on_error(record, error)  # loud: logged as an error and kept in the dead-letter topic
                continue
            except Exception as error:  # noqa: BLE001 - a projection bug must not stop the stream
                # The event is kept in the dead-letter topic; the escalation moves past it, so the
                # events after it still apply (replay it from there once the bug is fixed).
                on_error(record, error)
                after, folded = passed_over(before, event), False
            if after is not before:  # a republished duplicate folds to the same facts
                facts[key] = after
                touched[key] = touched.get(key, frozenset()) | after.touched
                applied += folded
                if folded:
                    kept.append(event)
        store_events(conn, kept)
        self._refold_corrected(conn, kept, facts, touched)
        write_many(
            conn,
            [(current, touched[key]) for key, current in facts.items() if key in touched and current],
            self.calendars,
            before=stored,
        )
        return applied

    def _refold_corrected(
        self,
        conn: sa.Connection,
        kept: list[RecordedEvent],
        facts: dict[str, EscalationFacts | None],
        touched: dict[str, frozenset[str]],
    ) -> None:
        keys = sorted({e.escalation_id for e in kept if e.name == "CorrectionRecorded"})
        if not keys:
            return
        for key, events in load_events(conn, keys).items():
            refolded: EscalationFacts | None = None
            for event in corrected(events):
                refolded = self.fold_event(refolded, event)
            if refolded is not None and refolded.version == (facts[key] or refolded).version:
                facts[key], touched[key] = refolded, EVERY_TABLE | {"escalations"}
