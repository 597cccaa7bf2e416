"""Audit replay: recompute every timeline from the event store and compare it with the stored one."""

from __future__ import annotations

import contextlib
import hashlib
from uuid import UUID

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from domain.service import EscalationService
from infra.messaging.envelope import EnvelopeError, as_recorded, decode_record
from projections.facts import RecordedEvent
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


def read_whole_topic(reader: KafkaConsumer, topic: str) -> list[RecordedEvent]:
    """Every decodable escalation event on the topic, in partition order (duplicates included).

    Caught up means every partition's position reached its end offset and a poll came back empty.
    """
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or [])]
    if not partitions:
        return []
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    found: list[RecordedEvent] = []
    while True:
        batch = reader.poll(timeout_ms=500, max_records=5000)
        for records in batch.values():
            for record in records:
                with contextlib.suppress(EnvelopeError):  # not escalation events: the dead-letter topic's business
                    found.append(decode_record(record))
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


def table_checksums(engine: sa.Engine, tables: list[str]) -> dict[str, tuple[int, str]]:
    """{table: (rows, sha256 of its rows in key order)}: equal checksums mean equal tables."""
    inspector = sa.inspect(engine)
    sums: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for name in tables:
            if not inspector.has_table(name):
                sums[name] = (0, "missing")
                continue
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows = sorted(tuple("" if v is None else str(v) for v in row) for row in conn.execute(sa.select(table)))
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            sums[name] = (len(rows), digest)
    return sums
