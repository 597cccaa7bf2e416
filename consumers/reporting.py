"""The reporting consumer: folds escalation events into the reporting read model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from consumers.runtime import Decoded, OnError
from projections.facts import EscalationFacts, RecordedEvent, VersionGapError, fold, passed_over
from projections.tables import load_many_facts, write_many

Fold = Callable[[EscalationFacts | None, RecordedEvent], EscalationFacts]
GROUP = "escalations.reporting"


class ReportingProjector:
    def __init__(self, fold_event: Fold = fold) -> None:
        self.fold_event = fold_event

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        # One query for the facts of every escalation in the batch.
        facts: dict[str, EscalationFacts | None] = dict.fromkeys({event.escalation_id for _, event in batch})
        facts |= load_many_facts(conn, list(facts))
        touched: dict[str, frozenset[str]] = {}
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
        write_many(conn, [(current, touched[key]) for key, current in facts.items() if key in touched and current])
        return applied
