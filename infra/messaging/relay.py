"""The relay (transactional outbox): publishes every recorded escalation event to Kafka, in order.

One round: read notifications after the checkpoint, produce each with the idempotent producer
(`acks=all`), flush, check every acknowledgement, and only then store the checkpoint. A crash
between the flush and the checkpoint republishes those events with the same `ce_id`; nothing is
ever skipped. Commands never publish: this is the only way events leave the event store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, Mapper
from kafka.errors import KafkaError

from consumers.log_client import LogClientError, LogConsumer, LogProducer, TopicPartition
from domain.events import EscalationEvent
from infra.faults import Fault, no_fault
from infra.messaging import envelope
from infra.messaging.relay_state import Checkpoint, RelayLock

log = structlog.get_logger(__name__)
# What a retry may cure: the client's own errors and kafka-python's from the admin client that
# prepares the topics (whichever client publishes).
BROKER_ERRORS = (LogClientError, KafkaError)


class BrokerUnavailableError(RuntimeError):
    """Kafka could not be reached; the message names the servers and what to check."""


@dataclass(frozen=True)
class RelayOptions:
    topic: str
    source: str
    bootstrap_servers: str
    batch_size: int = 2000
    poll_interval: float = 0.05
    verify_interval: float = 5.0
    connect_attempts: int = 5
    retry_backoff: float = 1.0
    cipher: envelope.PayloadCipher | None = None


class Relay:
    def __init__(
        self,
        application: Application[Any],
        event_topics: list[str],
        checkpoint: Checkpoint,
        options: RelayOptions,
        producer_factory: Callable[[], LogProducer],
        consumer_factory: Callable[[], LogConsumer],
        prepare_topics: Callable[[], None] = lambda: None,
        fault: Fault = no_fault,
    ) -> None:
        # Held, not just its recorder: the application closes its connections when it is collected.
        self.application = application
        self.recorder: ApplicationRecorder = application.recorder
        self.mapper: Mapper[Any] = application.mapper
        self.event_topics = event_topics
        self.checkpoint = checkpoint
        self.options = options
        self._new_producer = producer_factory
        self._new_consumer = consumer_factory
        self._prepare_topics = prepare_topics
        self._fault = fault  # test-only crash points (infra/faults.py); passes everything in production
        self._producer: LogProducer | None = None
        self._offsets_reader: LogConsumer | None = None
        self._stopping = threading.Event()
        self._last_verified = 0.0
        self.published = 0

    # -- Lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Reach the broker, retrying a few times; then a clear error instead of a hang."""
        last_error: Exception | None = None
        for attempt in range(1, self.options.connect_attempts + 1):
            try:
                self._prepare_topics()  # again after a reconnect: the broker may have come back empty
                self._producer = self._producer or self._new_producer()
                self._offsets_reader = self._offsets_reader or self._new_consumer()
            except (*BROKER_ERRORS, OSError) as error:
                last_error = error
                log.warning(
                    "relay.broker_unreachable",
                    bootstrap=self.options.bootstrap_servers,
                    attempt=attempt,
                    of=self.options.connect_attempts,
                    error=str(error),
                )
                if self._stopping.wait(self.options.retry_backoff * attempt):
                    return
            else:
                return
        msg = (
            f"cannot reach Kafka at {self.options.bootstrap_servers} after {self.options.connect_attempts} "
            f"attempts ({last_error}); check ESCALATIONS_KAFKA_BOOTSTRAP_SERVERS and that the broker runs"
        )
        raise BrokerUnavailableError(msg)

    def run(self, lock: RelayLock | None = None, *, standby: bool = False) -> None:
        """Publish until `stop()`; survives a broker that goes away and comes back.

        With a lock, only one relay publishes per event store: a second one fails at once, or with
        `standby` waits until the first lets go.
        """
        if lock is not None and not self._take(lock, standby=standby):
            return
        try:
            self._publish_until_stopped()
        finally:
            if lock is not None:
                lock.release()

    def _take(self, lock: RelayLock, *, standby: bool) -> bool:
        if not standby:
            lock.acquire()
            return True
        log.info("relay.standby", waiting_for="the relay lock")
        while not lock.try_acquire():
            if self._stopping.wait(1.0):
                return False
        log.info("relay.took_over")
        return True

    def _publish_until_stopped(self) -> None:
        self.connect()
        log.info("relay.started", topic=self.options.topic, position=self.checkpoint.position())
        while not self._stopping.is_set():
            try:
                self._verify_broker_kept_our_data()
                if self.publish_available() == 0:
                    self._stopping.wait(self.options.poll_interval)
            except BROKER_ERRORS as error:
                log.warning("relay.publish_failed", error=str(error), retry_in=self.options.retry_backoff)
                self._reset_clients()
                self._stopping.wait(self.options.retry_backoff)
                if not self._stopping.is_set():
                    self._reconnect_quietly()
        self.close()

    @property
    def connected(self) -> bool:
        """True while it holds a producer that reached the broker."""
        return self._producer is not None

    def stop(self) -> None:
        """Safe from a signal handler: the current round finishes, then the loop ends."""
        self._stopping.set()

    def close(self) -> None:
        self._reset_clients()
        log.info("relay.stopped", published=self.published, position=self.checkpoint.position())

    # -- One round -------------------------------------------------------------------------------

    def publish_available(self) -> int:
        """Publish what was recorded after the checkpoint (one batch); return how many were published."""
        start = self.checkpoint.position()
        notifications = self.recorder.select_notifications(
            start=start, limit=self.options.batch_size, topics=self.event_topics, inclusive_of_start=False
        )
        if not notifications:
            return 0
        producer = self._require_producer()
        futures = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            assert isinstance(event, EscalationEvent)
            key, value, headers = envelope.encode(event, notification.id, self.options.source, self.options.cipher)
            futures.append(producer.send(self.options.topic, key=key, value=value, headers=headers))
        self._fault("relay.after_produce_before_flush")
        producer.flush()
        flush_starts: dict[int, int] = {}
        for future in futures:
            partition, offset = future.result()  # raises the delivery error, if any: nothing is skipped
            flush_starts.setdefault(partition, offset)
        self._fault("relay.after_flush_before_checkpoint")
        self.checkpoint.save(notifications[-1].id, self.options.topic, flush_starts)
        self.published += len(notifications)
        log.debug("relay.published", count=len(notifications), position=notifications[-1].id)
        return len(notifications)

    def catch_up(self) -> int:
        """Publish everything recorded so far, then return how many this relay has published."""
        while self.publish_available():
            pass
        return self.published

    def republish_everything(self) -> None:
        """For a new cluster, or a broker that lost its data: start again from the first event."""
        self.checkpoint.reset()
        log.warning("relay.republishing_everything", topic=self.options.topic)

    # -- Broker data loss ------------------------------------------------------------------------

    def _verify_broker_kept_our_data(self) -> None:
        now = time.monotonic()
        if now - self._last_verified < self.options.verify_interval:
            return
        self._last_verified = now
        marks = self.checkpoint.marks(self.options.topic)
        if not marks or self._offsets_reader is None:
            return
        partitions = [TopicPartition(self.options.topic, p) for p in marks]
        ends = self._offsets_reader.end_offsets(partitions)
        # An end offset can undercount on some brokers (Tansu reports the first offset of the last
        # batch + 1), but never below the first offset of our last flush + 1 unless data was lost.
        lost = {tp.partition: end for tp, end in ends.items() if end is None or end <= marks[tp.partition]}
        if lost:
            log.warning(
                "relay.broker_lost_data",
                topic=self.options.topic,
                partitions={p: {"ends_at": e, "we_had_published_past": marks[p]} for p, e in lost.items()},
            )
            self.republish_everything()
            # The old producer's idempotence state means nothing to a broker that forgot it, and
            # the topic may have come back with the broker's defaults: start both afresh.
            self._reset_clients()
            self.connect()

    # -- Clients ---------------------------------------------------------------------------------

    def _require_producer(self) -> LogProducer:
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def _reconnect_quietly(self) -> None:
        try:
            self.connect()
        except BrokerUnavailableError as error:
            log.warning("relay.still_unreachable", error=str(error))
        self._last_verified = 0.0  # the broker may have come back empty: check at once

    def _reset_clients(self) -> None:
        producer, self._producer = self._producer, None
        reader, self._offsets_reader = self._offsets_reader, None
        if producer is not None:
            producer.close(timeout=1)
        if reader is not None:
            reader.close()
