"""The consumer runtime: each record decoded once before any projector sees it; each group's offsets its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from consumers.log_client import TopicPartition
from consumers.offsets import StoredOffsets
from consumers.runtime import ConsumerRunner, Decoded, OnError
from projections.facts import RecordedEvent
from projections.tables import create_schema, drop_schema

TOPIC = "escalations.events"


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class RecordingProjector:
    def __init__(self) -> None:
        self.seen: list[Decoded] = []

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        self.seen.extend(batch)
        return len(batch)


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, **record: Any) -> None:
        self.sent.append({"topic": topic, **record})

    def flush(self) -> None: ...


def decode(record: Record) -> RecordedEvent:
    if not record.value.startswith(b"{"):
        msg = "the value is not JSON"
        raise ValueError(msg)
    return RecordedEvent("UpdatePosted", "e1", record.offset + 1, record.offset, {})


def test_undecodable_records_are_dead_lettered_and_the_projector_sees_only_decoded_events() -> None:
    projector, dead_letters, decoded_offsets = RecordingProjector(), DeadLetters(), []

    def counting_decode(record: Any) -> RecordedEvent:
        decoded_offsets.append(record.offset)
        return decode(record)

    runner = ConsumerRunner(
        engine=sa.create_engine("sqlite://"),
        projector=projector,
        decode=counting_decode,
        consumer_factory=lambda: None,  # type: ignore[arg-type, return-value]
        dead_letters=lambda: dead_letters,  # type: ignore[arg-type, return-value]
        topic=TOPIC,
        dead_letter_topic="escalations.dead-letters",
        group="test",
    )
    records = [Record(TOPIC, 0, offset, b"e1", value, []) for offset, value in enumerate([b"{}", b"\x00", b"{}"])]

    runner.apply_batch({TopicPartition(TOPIC, 0): records})

    assert decoded_offsets == [0, 1, 2]
    assert [(d.record.offset, d.event.version) for d in projector.seen] == [(0, 1), (2, 3)]
    assert [letter["value"] for letter in dead_letters.sent] == [b"\x00"]
    assert dict(dead_letters.sent[0]["headers"])["dlq_error"] == b"ValueError: the value is not JSON"
    assert runner.stats.dead_lettered == 1
    assert runner.offsets.load(TOPIC) == {0: 3}


def test_dropping_the_reporting_read_model_keeps_the_timeline_groups_offsets() -> None:
    engine = sa.create_engine("sqlite://")
    create_schema(engine)
    timeline = StoredOffsets(engine, "escalations.timeline")
    with engine.begin() as conn:
        timeline.save(conn, TOPIC, {0: 7, 1: 3})

    drop_schema(engine)
    create_schema(engine)

    assert timeline.load(TOPIC) == {0: 7, 1: 3}
