"""The default client behind `consumers.log_client`: kafka-python, pure Python, no native library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kafka
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from consumers.log_client import Batch, Headers, LogClientError, LogRecord, Rebalanced, TopicPartition


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except KafkaError as error:
        raise LogClientError(f"{type(error).__name__}: {error}") from error


def _theirs(partition: TopicPartition) -> kafka.TopicPartition:
    return kafka.TopicPartition(partition.topic, partition.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: Rebalanced, on_revoked: Rebalanced) -> None:
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.on_revoked([TopicPartition(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.on_assigned([TopicPartition(tp.topic, tp.partition) for tp in assigned])


class KafkaPythonConsumer:
    def __init__(self, config: dict[str, Any]) -> None:
        with _translated():
            self._consumer = KafkaConsumer(**config)

    def __repr__(self) -> str:
        return f"KafkaPythonConsumer(client_id={self._consumer.config.get('client_id')!r})"

    def subscribe(self, topic: str, *, on_assigned: Rebalanced, on_revoked: Rebalanced) -> None:
        self._consumer.subscribe([topic], listener=_Listener(on_assigned, on_revoked))

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._consumer.assign([_theirs(tp) for tp in partitions])

    def partitions_for_topic(self, topic: str) -> set[int]:
        with _translated():
            return set(self._consumer.partitions_for_topic(topic) or ())

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._consumer.seek(_theirs(partition), offset)

    def seek_to_beginning(self, partitions: list[TopicPartition]) -> None:
        with _translated():
            self._consumer.seek_to_beginning(*(_theirs(tp) for tp in partitions))

    def poll(self, timeout: float, max_records: int) -> Batch:
        with _translated():
            polled = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        return {
            TopicPartition(tp.topic, tp.partition): [
                LogRecord(r.topic, r.partition, r.offset, r.key, r.value, r.headers or [], r.timestamp) for r in records
            ]
            for tp, records in polled.items()
        }

    def position(self, partition: TopicPartition) -> int:
        with _translated():
            return int(self._consumer.position(_theirs(partition)))

    def highwater(self, partition: TopicPartition) -> int | None:
        end = self._consumer.highwater(_theirs(partition))
        return None if end is None else int(end)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        with _translated():
            ends = self._consumer.end_offsets([_theirs(tp) for tp in partitions])
        return {TopicPartition(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

    def close(self) -> None:
        self._consumer.close()


class _Delivery:
    def __init__(self, future: FutureRecordMetadata) -> None:
        self._future = future

    def result(self) -> tuple[int, int]:
        with _translated():
            metadata = self._future.get(timeout=0)
        return int(metadata.partition), int(metadata.offset)


class KafkaPythonProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        with _translated():
            self._producer = KafkaProducer(**config)

    def __repr__(self) -> str:
        return f"KafkaPythonProducer(client_id={self._producer.config.get('client_id')!r})"

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> _Delivery:
        with _translated():
            return _Delivery(self._producer.send(topic, key=key, value=value, headers=list(headers)))

    def flush(self) -> None:
        with _translated():
            self._producer.flush()

    def close(self, timeout: float) -> None:
        self._producer.close(timeout=timeout)
