"""What the relay and the consumers need from a Kafka client, and nothing more.

Two clients sit behind these types (`infra/messaging/kafka_python_client.py`, the default, and
`infra/messaging/confluent_client.py`, librdkafka); the composition root picks one from
`ESCALATIONS_KAFKA_CLIENT`. Everything above them sees neutral records and partitions, so the
read-model transaction, the dead-letter headers and the rebuild loop are the same code for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

Headers = Sequence[tuple[str, bytes | None]]


class TopicPartition(NamedTuple):
    """Equal to (and hashes like) kafka-python's TopicPartition, so either can key a batch."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One consumed record, whichever client read it; `timestamp` in milliseconds since the epoch."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int | None


Batch = dict[TopicPartition, list[LogRecord]]
Rebalanced = Callable[[list[TopicPartition]], None]


class LogClientError(RuntimeError):
    """The broker or the client failed in a way a retry may cure; the message names what happened."""


class LogConsumer(Protocol):
    def subscribe(self, topic: str, *, on_assigned: Rebalanced, on_revoked: Rebalanced) -> None:
        """Join the group; `on_assigned` may `seek` each partition it is given before the first fetch."""
        ...

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Take these partitions without joining a group."""
        ...

    def partitions_for_topic(self, topic: str) -> set[int]:
        """The topic's partition numbers; empty when the topic does not exist (never creates it)."""
        ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def seek_to_beginning(self, partitions: list[TopicPartition]) -> None: ...

    def poll(self, timeout: float, max_records: int) -> Batch:
        """Records in offset order per partition; empty when none arrived within `timeout` seconds."""
        ...

    def position(self, partition: TopicPartition) -> int:
        """The offset of the next record this consumer will return from the partition."""
        ...

    def highwater(self, partition: TopicPartition) -> int | None:
        """The end offset as last fetched, without a request; None until the broker told us."""
        ...

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Asks the broker for each partition's end offset (the next offset to be written)."""
        ...

    def close(self) -> None:
        """Leaves the group, so its partitions move at once."""
        ...


class Delivery(Protocol):
    def result(self) -> tuple[int, int]:
        """(partition, offset) once acknowledged; raises `LogClientError` if the record was not delivered."""
        ...


class LogProducer(Protocol):
    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> Delivery: ...

    def flush(self) -> None:
        """Returns once every record sent so far is acknowledged or has failed."""
        ...

    def close(self, timeout: float) -> None: ...
