"""The shape every consumer has: poll, decode, apply, commit; and stop.

Each polled batch is applied in one database transaction together with the Kafka offsets it came
from, so a crash at any point neither loses nor double-applies an event. On start and on every
partition assignment the consumer seeks to the offsets stored beside the read model. Each record is
decoded once, here, by the decoder the composition root passes in: projectors see only events, and
the wire format stays in the one module that encodes it. A message that cannot be decoded or
applied goes to the dead-letter topic, with the error and its origin in headers, before the
transaction commits; the consumer keeps going.

A member that the group leaves without partitions (it joined before the topic existed, or the
coordinator loop got stuck) would otherwise sit idle, polling nothing, for as long as it runs: the
watchdog in `run()` recreates the client when it has held no partition for `idle_bound` seconds
while the topic has partitions to give, and `health()` says "ok" only once partitions are assigned
and polls keep returning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge

from consumers.log_client import Batch, LogConsumer, LogProducer, LogRecord, TopicPartition
from consumers.offsets import ReadModelSwitchedError, StoredOffsets
from projections.facts import RecordedEvent

# StoredOffsets is named here too because the command line imports it from this module.
__all__ = [
    "ConsumerRunner",
    "ConsumerStats",
    "Decoded",
    "Decoder",
    "OnError",
    "Projector",
    "StoredOffsets",
    "lag_by_partition",
]

log = structlog.get_logger(__name__)

APPLIED = Counter("escalations_consumer_events_applied", "Events applied to a read model", ["group"])
DEAD_LETTERED = Counter("escalations_consumer_events_dead_lettered", "Records sent to the dead-letter topic", ["group"])
LAG = Gauge("escalations_consumer_lag", "Records behind the end of the topic", ["group", "partition"])
DATABASE_RETRIES = Counter(
    "escalations_consumer_database_retries", "Batches retried after the read model's database failed", ["group"]
)
RECREATED = Counter(
    "escalations_consumer_recreated", "Kafka clients recreated after holding no partition too long", ["group"]
)


def lag_by_partition(offsets: StoredOffsets, reader: LogConsumer, topic: str) -> dict[int, tuple[int, int, int]]:
    """{partition: (stored next offset, end offset, lag)} for a consumer group's read model."""
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or [])]
    ends = reader.end_offsets(partitions)
    stored = offsets.load(topic)
    return {
        tp.partition: (stored.get(tp.partition, 0), ends[tp], max(0, ends[tp] - stored.get(tp.partition, 0)))
        for tp in partitions
    }


Decoder = Callable[[LogRecord], RecordedEvent]
OnError = Callable[[LogRecord, Exception], None]


class Decoded(NamedTuple):
    """A record and the event decoded from it: the event to apply, the record to dead-letter if that fails."""

    record: LogRecord
    event: RecordedEvent


class Projector(Protocol):
    """Applies a batch of decoded events to a read model inside the given transaction."""

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        """Apply what can be applied; report each record that cannot through `on_error`. Returns how many applied."""
        ...


@dataclass
class ConsumerStats:
    applied: int = 0
    dead_lettered: int = 0
    batches: int = 0
    positions: dict[int, int] = field(default_factory=dict)


class ConsumerRunner:
    def __init__(  # noqa: PLR0913 - every collaborator is passed in by the composition root
        self,
        *,
        engine: sa.Engine,
        projector: Projector,
        decode: Decoder,
        consumer_factory: Callable[[], LogConsumer],
        dead_letters: Callable[[], LogProducer],
        topic: str,
        dead_letter_topic: str,
        group: str,
        max_records: int = 2000,
        join_group: bool = True,
        fault: Callable[[str], None] = lambda _point: None,
        idle_bound: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.projector = projector
        self.decode = decode
        self._new_consumer = consumer_factory
        self._new_dead_letter_producer = dead_letters
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.offsets = StoredOffsets(engine, group)
        self.group = group
        self.max_records = max_records
        # A single process may take every partition itself instead of joining the group (the
        # embedded broker's group join waits out a rebalance timeout).
        self.join_group = join_group
        self.stats = ConsumerStats()
        # Test-only crash points, passed in by the composition root; they pass everything in production.
        self._fault = fault
        self.assigned: set[int] = set()
        # How long a member may hold no partition while the topic has some before its client is recreated.
        self.idle_bound = idle_bound
        self._clock = clock
        self._running = False
        self._last_poll: float | None = None
        self._unassigned_since = clock()
        self._stopping = threading.Event()
        self._database_failures = 0
        self._generation = 0  # of the read model, loaded with the offsets the consumer seeks to
        self._consumer: LogConsumer | None = None
        self._producer: LogProducer | None = None

    def run(self) -> None:
        """Consume until `stop()`, as one member of the consumer group."""
        self._running = True
        consumer = self._start_consumer()
        try:
            while not self._stopping.is_set():
                batch = consumer.poll(timeout=0.2, max_records=self.max_records)
                self._last_poll = self._clock()
                if batch and not self._applied_or_rewound(batch):
                    continue
                if not batch:
                    self._follow_switch()
                if batch:
                    self._fault("consumer.between_batches")
                if self._idle_too_long():
                    consumer = self._recreate(consumer)
        finally:
            self._running = False
            self._close(consumer)
            if self._producer is not None:
                self._producer.close(timeout=5)
            log.info(
                "consumer.stopped",
                group=self.group,
                applied=self.stats.applied,
                dead_lettered=self.stats.dead_lettered,
            )

    def _applied_or_rewound(self, batch: Batch) -> bool:
        """Apply the batch; if the read model's database fails (locked, restarting, unreachable), nothing
        of the batch was committed, so go back to the stored offsets, wait, and let the next poll retry."""
        try:
            self.apply_batch(batch)
        except ReadModelSwitchedError:
            # A rebuild switched the read model in: nothing of this batch was applied; continue from its offsets.
            log.info("consumer.read_model_switched", group=self.group, topic=self.topic)
            self.seek_to_stored([TopicPartition(self.topic, p) for p in sorted(self.assigned)] or list(batch))
            return False
        except sa.exc.OperationalError as error:
            self._database_failures += 1
            pause = min(0.25 * 2**self._database_failures, 10.0)
            DATABASE_RETRIES.labels(self.group).inc()
            log.warning(
                "consumer.database_unavailable",
                group=self.group,
                error=str(error.orig or error).splitlines()[0],
                retry_in_seconds=pause,
            )
            assert self._consumer is not None
            for tp, records in batch.items():
                if records:
                    self._consumer.seek(tp, records[0].offset)  # where this batch began: nothing of it committed
            self._stopping.wait(pause)
            return False
        self._database_failures = 0
        return True

    def _follow_switch(self) -> None:
        """Idle, a consumer applies nothing that would notice a rebuild's switch: look at the generation."""
        if self.assigned and self.offsets.generation() != self._generation:
            log.info("consumer.read_model_switched", group=self.group, topic=self.topic)
            self.seek_to_stored([TopicPartition(self.topic, p) for p in sorted(self.assigned)])

    def health(self, stalled_after: float = 5.0) -> str:
        """ "ok", or why this member is not doing its share (for readiness)."""
        now = self._clock()
        if not self._running:
            return "not running"
        if not self.assigned:
            return f"no partitions assigned for {now - self._unassigned_since:.0f}s"
        if self._last_poll is None or now - self._last_poll > stalled_after:
            return f"no poll returned for more than {stalled_after:.0f}s"
        return "ok"

    def _start_consumer(self) -> LogConsumer:
        consumer = self._consumer = self._new_consumer()
        self.assigned = set()
        self._unassigned_since = self._clock()
        if self.join_group:
            consumer.subscribe(self.topic, on_assigned=self._on_assigned, on_revoked=self._on_revoked)
        else:
            partitions = [
                TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or [])
            ]
            consumer.assign(partitions)
            self.seek_to_stored(partitions)
            self.assigned = {tp.partition for tp in partitions}
        log.info("consumer.started", group=self.group, topic=self.topic)
        return consumer

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        self.assigned -= {tp.partition for tp in revoked}
        log.info("consumer.partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self.seek_to_stored(assigned)
        self.assigned |= {tp.partition for tp in assigned}
        if not self.assigned:
            log.warning("consumer.assigned_nothing", group=self.group, topic=self.topic)

    def _idle_too_long(self) -> bool:
        if self.assigned:
            self._unassigned_since = self._clock()
            return False
        if self._clock() - self._unassigned_since < self.idle_bound:
            return False
        assert self._consumer is not None
        # Only when the group has partitions to give; otherwise look again after another bound.
        if self._consumer.partitions_for_topic(self.topic):
            return True
        self._unassigned_since = self._clock()
        return False

    def _recreate(self, consumer: LogConsumer) -> LogConsumer:
        log.warning(
            "consumer.recreating",
            group=self.group,
            topic=self.topic,
            idle_seconds=round(self._clock() - self._unassigned_since, 1),
            reason="no partitions assigned while the topic has some",
        )
        RECREATED.labels(self.group).inc()
        self._close(consumer)
        return self._start_consumer()

    def _close(self, consumer: LogConsumer) -> None:
        try:
            consumer.close()  # leaves the group, so its partitions move at once
        except Exception:
            log.exception("consumer.close_failed", group=self.group)

    def stop(self) -> None:
        """Safe from a signal handler: the current batch finishes and commits, then the loop ends."""
        self._stopping.set()

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        self._generation, stored = self.offsets.load_position(self.topic)
        for tp in partitions:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                self._consumer.seek_to_beginning([tp])
        log.info(
            "consumer.partitions_assigned",
            partitions={tp.partition: stored.get(tp.partition, 0) for tp in partitions},
        )

    def apply_batch(self, batch: Batch) -> None:
        records = [record for tp in sorted(batch, key=lambda tp: tp.partition) for record in batch[tp]]
        dead: list[tuple[LogRecord, Exception]] = []
        decoded = self._decoded(records, dead)
        next_offsets = {tp.partition: recs[-1].offset + 1 for tp, recs in batch.items() if recs}
        with self.engine.begin() as conn:
            self.offsets.claim(conn, self._generation)
            applied = self.projector.apply(conn, decoded, lambda record, error: dead.append((record, error)))
            if dead:
                self._dead_letter(dead)  # flushed before the commit: a poison message is never lost
            self.offsets.save(conn, self.topic, next_offsets)
            self._fault("consumer.after_apply_before_commit")
        self.stats.applied += applied
        self.stats.dead_lettered += len(dead)
        self.stats.batches += 1
        self.stats.positions.update(next_offsets)
        APPLIED.labels(self.group).inc(applied)
        DEAD_LETTERED.labels(self.group).inc(len(dead))
        self._record_lag(batch)

    def _decoded(self, records: list[LogRecord], dead: list[tuple[LogRecord, Exception]]) -> list[Decoded]:
        decoded: list[Decoded] = []
        for record in records:
            try:
                decoded.append(Decoded(record, self.decode(record)))
            except Exception as error:  # noqa: BLE001 - one undecodable record goes to the dead-letter topic, alone
                dead.append((record, error))
        return decoded

    def _record_lag(self, batch: Batch) -> None:
        if self._consumer is None:
            return
        for tp, records in batch.items():
            # The consumer's own view of the end, without a request (None until the broker told it).
            end = self._consumer.highwater(tp)
            if end is not None and records:
                LAG.labels(self.group, str(tp.partition)).set(max(0, end - records[-1].offset - 1))

    def _dead_letter(self, dead: list[tuple[LogRecord, Exception]]) -> None:
        producer = self._producer = self._producer or self._new_dead_letter_producer()
        for record, error in dead:
            log.error(
                "consumer.dead_lettered",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=f"{type(error).__name__}: {error}",
            )
            headers = [
                *record.headers,
                ("dlq_error", f"{type(error).__name__}: {error}".encode()),
                ("dlq_origin_topic", record.topic.encode()),
                ("dlq_origin_partition", str(record.partition).encode()),
                ("dlq_origin_offset", str(record.offset).encode()),
                ("dlq_consumer_group", self.group.encode()),
            ]
            producer.send(self.dead_letter_topic, key=record.key, value=record.value, headers=headers)
        producer.flush()
