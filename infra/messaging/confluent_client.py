"""The optional client behind `consumers.log_client`: confluent-kafka, librdkafka in C (the [confluent] extra).

Chosen with ESCALATIONS_KAFKA_CLIENT=confluent-kafka. What differs from kafka-python, and is
handled here so that the relay and the consumers cannot tell:

- librdkafka cannot seek a partition before its first fetch, so a seek made right after `assign`
  or inside the assignment callback becomes the partition's start offset in the `assign` call;
- its default partitioner hashes keys differently (CRC32); `murmur2_random` is what kafka-python
  and the Java client use, so an escalation's events land on the same partition with either client;
- `consume` waits out its whole timeout for a full batch; `poll` waits for the first record and
  then takes what is already fetched, as kafka-python's poll does;
- it needs a group id even for a reader that never joins a group; readers get one they never use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Message, Producer

from consumers.log_client import Batch, Headers, LogClientError, LogRecord, Rebalanced, TopicPartition
from infra.settings import Settings

SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password"})
REQUEST_TIMEOUT = 10.0  # seconds, for metadata and offset requests (kafka-python's request_timeout_ms is alike)
MAX_BLOCK = 10.0  # seconds `send` waits for room in a full queue, as kafka-python's max_block_ms
FLUSH_BOUND = 60.0  # seconds; delivery.timeout.ms (30 s) fails every record well before it
_log = logging.getLogger("librdkafka")


def connection_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol.lower(),
        "client.id": settings.client_id,
        "socket.connection.setup.timeout.ms": max(settings.kafka_bootstrap_timeout_ms, 1_000),  # librdkafka's floor
        # A topic created after we subscribed, or a new leader, is seen within seconds.
        "topic.metadata.refresh.interval.ms": 5_000,
        "logger": _log,  # through Python logging, not straight to stderr
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username or ""
        if settings.kafka_sasl_password is not None:
            config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    for key, path in (
        ("ssl.ca.location", settings.kafka_ssl_cafile),
        ("ssl.certificate.location", settings.kafka_ssl_certfile),
        ("ssl.key.location", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    """The same producer as kafka-python's (`infra.messaging.clients.producer_config`), in librdkafka's words."""
    return connection_config(settings) | {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": settings.relay_linger_ms,
        "batch.size": 256 * 1024,
        "max.in.flight.requests.per.connection": 5,
        "request.timeout.ms": 10_000,
        "delivery.timeout.ms": 30_000,
        "reconnect.backoff.max.ms": 2_000,
        "allow.auto.create.topics": False,
        "partitioner": "murmur2_random",
    }


def consumer_config(settings: Settings, group: str | None) -> dict[str, Any]:
    """A read model's consumer; `group` is the unprefixed name (None: a reader outside any group)."""
    return connection_config(settings) | {
        # librdkafka insists on a group id; a reader only assigns, so it never joins this one.
        "group.id": settings.group_name(group) if group else f"{settings.client_id}.reader",
        "enable.auto.commit": False,  # offsets live beside the read model, in its transaction
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "fetch.wait.max.ms": 50,
        # librdkafka refuses a poll interval below the session timeout; kafka-python takes either.
        "max.poll.interval.ms": max(settings.consumer_max_poll_interval_ms, settings.consumer_session_timeout_ms),
        "session.timeout.ms": settings.consumer_session_timeout_ms,
        "heartbeat.interval.ms": settings.consumer_heartbeat_interval_ms,
    }


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """The config as it may be logged: secrets replaced, the logger object left out."""
    return {key: "***" if key in SECRET_KEYS else value for key, value in config.items() if key != "logger"}


def _scrubbed(error: Exception, config: dict[str, Any]) -> str:
    text = str(error)
    for key in SECRET_KEYS:
        if config.get(key):
            text = text.replace(str(config[key]), "***")
    return text


class ClientConfigError(ValueError):
    """librdkafka refused the configuration: no retry can help, so it is not a `LogClientError`."""


def _created(kind: Callable[[dict[str, Any]], Any], config: dict[str, Any]) -> Any:
    try:
        return kind(config)
    except (KafkaException, ValueError, TypeError) as error:
        msg = f"confluent-kafka refused the client configuration: {_scrubbed(error, config)}"
        raise ClientConfigError(msg) from None


def _theirs(partition: TopicPartition, offset: int | None = None) -> confluent_kafka.TopicPartition:
    if offset is None:
        return confluent_kafka.TopicPartition(partition.topic, partition.partition)
    return confluent_kafka.TopicPartition(partition.topic, partition.partition, offset)


def _ours(partition: confluent_kafka.TopicPartition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


def _record(message: Message) -> LogRecord:
    kind, stamp = message.timestamp()
    return LogRecord(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        cast("Headers", message.headers() or []),  # librdkafka gives (str, bytes | None) pairs
        None if kind == confluent_kafka.TIMESTAMP_NOT_AVAILABLE else stamp,
    )


class ConfluentConsumer:
    def __init__(self, config: dict[str, Any], request_timeout: float = REQUEST_TIMEOUT) -> None:
        self._client_id = config.get("client.id")
        self._timeout = request_timeout
        self._consumer: Consumer = _created(Consumer, config)
        # Start offsets of partitions assigned but not yet handed to librdkafka (None: the default start).
        self._pending: dict[TopicPartition, int | None] | None = None
        self._positions: dict[TopicPartition, int] = {}

    def __repr__(self) -> str:
        return f"ConfluentConsumer(client_id={self._client_id!r})"

    def subscribe(self, topic: str, *, on_assigned: Rebalanced, on_revoked: Rebalanced) -> None:
        def assigned(consumer: Consumer, partitions: list[confluent_kafka.TopicPartition]) -> None:
            self._pending = {_ours(tp): None for tp in partitions}
            on_assigned(list(self._pending))
            self._hand_over(consumer)

        def revoked(consumer: Consumer, partitions: list[confluent_kafka.TopicPartition]) -> None:
            gone = [_ours(tp) for tp in partitions]
            on_revoked(gone)
            for tp in gone:
                self._positions.pop(tp, None)
            consumer.unassign()

        self._consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._pending = dict.fromkeys(partitions)

    def partitions_for_topic(self, topic: str) -> set[int]:
        try:
            found = self._consumer.list_topics(topic, timeout=self._timeout).topics.get(topic)
        except KafkaException as error:
            raise LogClientError(str(error)) from error
        if found is None or found.error is not None:
            return set()
        return set(found.partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._positions[partition] = offset
        if self._pending is not None and partition in self._pending:
            self._pending[partition] = offset
            return
        try:
            self._consumer.seek(_theirs(partition, offset))
        except KafkaException as error:
            raise LogClientError(str(error)) from error

    def seek_to_beginning(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop(tp, None)  # the first `position` asks for the start, once
            if self._pending is not None and tp in self._pending:
                self._pending[tp] = confluent_kafka.OFFSET_BEGINNING
            else:
                self._consumer.seek(_theirs(tp, confluent_kafka.OFFSET_BEGINNING))

    def poll(self, timeout: float, max_records: int) -> Batch:
        self._hand_over(self._consumer)
        try:
            first = self._consumer.poll(timeout)
            if first is None:
                return {}
            messages = [first, *self._consumer.consume(max_records - 1, timeout=0)] if max_records > 1 else [first]
        except KafkaException as error:
            raise LogClientError(str(error)) from error
        batch: Batch = {}
        for message in messages:
            problem = message.error()
            if problem is not None:
                if problem.fatal():
                    raise LogClientError(str(problem))
                if problem.code() != confluent_kafka.KafkaError._PARTITION_EOF:  # noqa: SLF001 - the library's own name
                    _log.warning("consumer error, librdkafka retries by itself: %s", problem.str())
                continue
            record = _record(message)
            tp = TopicPartition(record.topic, record.partition)
            batch.setdefault(tp, []).append(record)
            self._positions[tp] = record.offset + 1
        return batch

    def position(self, partition: TopicPartition) -> int:
        self._hand_over(self._consumer)
        if partition in self._positions:
            return self._positions[partition]
        try:
            (theirs,) = self._consumer.position([_theirs(partition)])
            if theirs.offset >= 0:
                return int(theirs.offset)
            low, _ = self._consumer.get_watermark_offsets(_theirs(partition), timeout=self._timeout)
        except KafkaException as error:
            raise LogClientError(str(error)) from error
        self._positions[partition] = int(low)  # nothing read yet: the next record is the first one kept
        return int(low)

    def highwater(self, partition: TopicPartition) -> int | None:
        try:
            _, high = self._consumer.get_watermark_offsets(_theirs(partition), cached=True)
        except KafkaException:
            return None
        return None if high < 0 else int(high)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        ends: dict[TopicPartition, int] = {}
        try:
            for tp in partitions:
                _, ends[tp] = self._consumer.get_watermark_offsets(_theirs(tp), timeout=self._timeout)
        except KafkaException as error:
            raise LogClientError(str(error)) from error
        return ends

    def close(self) -> None:
        self._consumer.close()

    def _hand_over(self, consumer: Consumer) -> None:
        """Assign what `assign` or the group gave us, each partition from the offset a `seek` chose."""
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        try:
            consumer.assign([_theirs(tp, offset) for tp, offset in pending.items()])
        except KafkaException as error:
            raise LogClientError(str(error)) from error


class _Delivery:
    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None
        self.partition = -1
        self.offset = -1

    def __call__(self, error: confluent_kafka.KafkaError | None, message: Message) -> None:
        self.done = True
        if error is not None:
            self.error = error.str()
        else:
            self.partition, self.offset = message.partition() or 0, message.offset() or 0

    def result(self) -> tuple[int, int]:
        if self.error is not None:
            raise LogClientError(f"not delivered: {self.error}")
        if not self.done:
            msg = "not acknowledged (yet): flush before reading a delivery"
            raise LogClientError(msg)
        return self.partition, self.offset


class ConfluentProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._client_id = config.get("client.id")
        self._producer: Producer = _created(Producer, config)
        # librdkafka connects in the background; reach the cluster now, as kafka-python's producer does,
        # so that an unreachable broker is the relay's clear error at connect, not a first flush that waits.
        try:
            self._producer.list_topics(timeout=config.get("socket.connection.setup.timeout.ms", 10_000) / 1000)
        except KafkaException as error:
            self._producer.close()
            msg = f"no answer from {config.get('bootstrap.servers')}: {error}"
            raise LogClientError(msg) from error

    def __repr__(self) -> str:
        return f"ConfluentProducer(client_id={self._client_id!r})"

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> _Delivery:
        delivery = _Delivery()
        deadline = time.monotonic() + MAX_BLOCK
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=list(headers), on_delivery=delivery)
            except BufferError:
                # The local queue is full: serve acknowledgements to make room, as kafka-python blocks.
                if time.monotonic() > deadline:
                    msg = f"the producer's queue stayed full for {MAX_BLOCK:.0f}s; is the broker reachable?"
                    raise LogClientError(msg) from None
                self._producer.poll(0.05)
            except KafkaException as error:
                raise LogClientError(str(error)) from error
            else:
                return delivery

    def flush(self) -> None:
        self._producer.flush(FLUSH_BOUND)

    def close(self, timeout: float) -> None:
        if self._producer.flush(timeout) > 0:
            # What is still queued was never acknowledged: the relay republishes it from its checkpoint.
            self._producer.purge()
            self._producer.flush(0)
        self._producer.close()
