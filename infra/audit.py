"""Audit replay: recompute every timeline from the event store and compare it with the stored one."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from consumers.log_client import LogConsumer, LogRecord, TopicPartition
from domain.service import EscalationService
from infra.messaging.envelope import EnvelopeError, as_recorded, decode_record
from projections.facts import RecordedEvent
from projections.notification_tables import create_notifier_schema, notify_subscriptions
from projections.timeline import Zones, first_difference, timeline
from projections.timeline_tables import entries_of, escalation_ids, timeline_entries


class TimelinesMissingError(RuntimeError):
    """The read model holds no timelines to verify: no timeline consumer has run against it."""


def check_timelines_built(engine: sa.Engine) -> None:
    if not sa.inspect(engine).has_table(timeline_entries.name):
        msg = (
            f"the read model at {engine.url.render_as_string(hide_password=True)} holds no timelines: "
            "run the timeline consumer (`escalations serve`, `escalations consume timeline`) or "
            "`escalations rebuild timeline`, then verify again"
        )
        raise TimelinesMissingError(msg)


def history_as_recorded(service: EscalationService, escalation_id: UUID) -> list[RecordedEvent]:
    return [as_recorded(event, 0) for event in service.history(escalation_id)]


def verify_timelines(
    service: EscalationService, engine: sa.Engine, zones: Zones, escalation_id: UUID | None = None
) -> dict[str, str]:
    """{escalation id: the first entry that differs} for every stored timeline that history contradicts."""
    check_timelines_built(engine)
    problems: dict[str, str] = {}
    with engine.connect() as conn:
        ids = [str(escalation_id)] if escalation_id else escalation_ids(conn)
        if not ids and service.recorder.max_notification_id():
            msg = (
                "the timeline read model is empty while the event store holds events: run the timeline "
                "consumer (`escalations serve`, `escalations consume timeline`) or `escalations rebuild timeline`"
            )
            raise TimelinesMissingError(msg)
        for key in ids:
            difference = first_difference(
                entries_of(conn, key), timeline(history_as_recorded(service, UUID(key)), zones)
            )
            if difference:
                problems[key] = difference
    return problems


def read_whole_topic(
    reader: LogConsumer, topic: str, decode: Callable[[LogRecord], RecordedEvent] = decode_record
) -> list[RecordedEvent]:
    """Every decodable escalation event on the topic, in partition order (duplicates included).

    Caught up means every partition's position reached its end offset and a poll came back empty.
    """
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or [])]
    if not partitions:
        return []
    reader.assign(partitions)
    reader.seek_to_beginning(partitions)
    found: list[RecordedEvent] = []
    while True:
        batch = reader.poll(timeout=0.5, max_records=5000)
        for records in batch.values():
            for record in records:
                with contextlib.suppress(EnvelopeError):  # not escalation events: the dead-letter topic's business
                    found.append(decode(record))
        if not batch and all(reader.position(tp) >= end for tp, end in reader.end_offsets(partitions).items()):
            return found


def verify_timelines_against_topic(engine: sa.Engine, events: list[RecordedEvent], zones: Zones) -> dict[str, str]:
    """{escalation id: the first entry that differs} between the topic's history and the stored timelines."""
    by_escalation: dict[str, dict[int, RecordedEvent]] = {}
    for event in events:
        by_escalation.setdefault(event.escalation_id, {}).setdefault(event.version, event)
    problems: dict[str, str] = {}
    with engine.connect() as conn:
        for key in sorted(set(by_escalation) | set(escalation_ids(conn))):
            history = [by_escalation.get(key, {})[v] for v in sorted(by_escalation.get(key, {}))]
            difference = first_difference(entries_of(conn, key), timeline(history, zones))
            if difference:
                problems[key] = difference
    return problems


@dataclass(frozen=True)
class Compared:
    """A table as `audit rebuild` compares it: the columns history decides, over the rows history decides.

    A rebuild from offset zero reproduces what follows from the events alone, not what a consumer did
    at its own time (a delivery's attempts, a deadline's firing): those are left out of the checksum.
    """

    table: str
    columns: tuple[str, ...] | None = None  # None: every column
    keep: Callable[[Mapping[str, Any]], bool] | None = None  # None: every row


def table_checksums(engine: sa.Engine, tables: Sequence[str | Compared]) -> dict[str, tuple[int, str]]:
    """{table: (rows, sha256 of its rows in key order)}: equal checksums mean equal tables."""
    inspector = sa.inspect(engine)
    sums: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for each in tables:
            compared = each if isinstance(each, Compared) else Compared(each)
            if not inspector.has_table(compared.table):
                sums[compared.table] = (0, "missing")
                continue
            table = sa.Table(compared.table, sa.MetaData(), autoload_with=conn)
            columns = [table.c[name] for name in compared.columns] if compared.columns else list(table.c)
            found = conn.execute(sa.select(*columns)).mappings()
            kept = [row for row in found if compared.keep is None or compared.keep(dict(row))]
            rows = sorted(tuple("" if v is None else str(v) for v in row.values()) for row in kept)
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            sums[compared.table] = (len(rows), digest)
    return sums


# The watcher: schedules and kept events follow from history. Of the deadlines, a rebuild fires
# nothing and keeps none the history shows fired, so it has exactly the pending ones; the live
# table also keeps what its watcher did (fired, answered, settled, refused, when, why): not history.
WATCHER_COMPARED: tuple[Compared, ...] = (
    Compared("watcher_schedules"),
    Compared("watcher_events"),
    Compared(
        "watcher_deadlines",
        ("deadline_id", "escalation_id", "partition", "kind", "due_at", "facts", "state"),
        keep=lambda row: row["state"] == "pending",
    ),
)
# The notifier's deliveries: which message goes where is history's (given the same subscriptions
# and settings); whether and when it went (state, attempts, errors, times) is the delivery loop's,
# and a rebuild now skips what is old now. The daily digest is made by the clock, not by events.
DELIVERY_FROM_HISTORY = ("delivery_id", "event_id", "destination", "escalation_id", "position", "kind", "payload")


def notifier_compared(active_webhooks: set[str]) -> tuple[Compared, ...]:
    """The notifier's tables as compared: the context whole; the deliveries to Slack and to the
    subscriptions active now (a removed or paused one has deliveries from before that no rebuild makes)."""

    def from_history(row: Mapping[str, Any]) -> bool:
        destination = str(row["destination"])
        return row["escalation_id"] is not None and (destination.startswith("slack:") or destination in active_webhooks)

    return (Compared("notify_context"), Compared("notify_deliveries", DELIVERY_FROM_HISTORY, keep=from_history))


def copy_subscriptions(live: sa.Engine, fresh: sa.Engine) -> set[str]:
    """Give the fresh notifier the live subscriptions (configuration, not history), without their
    secrets (a rebuild signs nothing); returns the destinations of the active ones."""
    create_notifier_schema(fresh)
    if not sa.inspect(live).has_table(notify_subscriptions.name):
        return set()
    with live.connect() as conn:
        rows = [dict(row) for row in conn.execute(sa.select(notify_subscriptions)).mappings()]
    if rows:
        with fresh.begin() as conn:
            conn.execute(notify_subscriptions.insert(), [row | {"secret": ""} for row in rows])
    return {f"webhook:{row['subscription_id']}" for row in rows if not row["paused"]}
