"""Reads a whole topic back, as a team that consumes the stream would."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(bootstrap: str, topic: str, *, expect_at_least: int = 0, timeout: float = 30.0) -> list[Record]:
    """Every record on the topic, in partition order; waits until `expect_at_least` have arrived, or fails."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        allow_auto_create_topics=False,
    )
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        assignment = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        if not assignment:
            return []  # the topic never came to exist
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        records: list[Record] = []
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            for tp_records in batch.values():
                records.extend(Record(r.partition, r.offset, r.key, r.value, dict(r.headers)) for r in tp_records)
            if not batch and len(records) >= expect_at_least:
                return records
        if len(records) >= expect_at_least:
            return records  # still arriving at the deadline, but as many as asked for
        pytest.fail(
            f"timed out after {timeout:.0f}s waiting for {expect_at_least} records on {topic}; got {len(records)}"
        )
    finally:
        consumer.close()
