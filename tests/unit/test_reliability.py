"""A consumer that holds no partition is recreated; readiness answers stale checks honestly; settings never echo secrets."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from consumers.log_client import Rebalanced, TopicPartition
from consumers.runtime import ConsumerRunner
from infra.bootstrap import read_model_engine
from infra.health import ReadinessMonitor
from infra.local.ports import wait_until
from infra.settings import Settings, describe_invalid

TOPIC = "escalations.events"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class IdleConsumer:
    """A member the group never gives a partition, of a topic that has three."""

    def __init__(self, runner: list[ConsumerRunner], clock: Clock, partitions: set[int]) -> None:
        self.runner, self.clock, self.partitions, self.closed = runner, clock, partitions, False

    def subscribe(self, topic: str, *, on_assigned: Rebalanced, on_revoked: Rebalanced) -> None: ...

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def poll(self, **_: Any) -> dict[Any, Any]:
        self.clock.now += 1.0
        return {}

    def close(self) -> None:
        self.closed = True


def idle_runner(partitions: set[int]) -> tuple[ConsumerRunner, list[IdleConsumer], Clock]:
    clock, made, holder = Clock(), [], []

    def factory() -> IdleConsumer:
        consumer = IdleConsumer(holder, clock, partitions)
        made.append(consumer)
        if len(made) == 3:
            holder[0].stop()
        return consumer

    runner = ConsumerRunner(
        engine=sa.create_engine("sqlite://"),
        projector=None,  # type: ignore[arg-type]
        decode=lambda record: record,
        consumer_factory=factory,  # type: ignore[arg-type, return-value]
        dead_letters=lambda: None,  # type: ignore[arg-type, return-value]
        topic=TOPIC,
        dead_letter_topic="dlq",
        group="test",
        idle_bound=10.0,
        clock=clock,
    )
    holder.append(runner)
    return runner, made, clock


def test_a_consumer_holding_no_partition_while_the_topic_has_some_is_recreated_after_the_bound() -> None:
    runner, made, _ = idle_runner({0, 1, 2})

    runner.run()

    assert len(made) == 3
    assert all(consumer.closed for consumer in made)


def test_a_consumer_of_a_topic_without_partitions_is_not_recreated() -> None:
    runner, made, clock = idle_runner(set())
    threading.Timer(0.5, runner.stop).start()

    runner.run()

    assert len(made) == 1
    assert clock.now > 10


def test_health_says_why_a_member_is_not_ready() -> None:
    runner, _, clock = idle_runner({0})

    assert runner.health() == "not running"
    runner._running = True
    clock.now = 12
    assert runner.health() == "no partitions assigned for 12s"
    runner.assigned = {0}
    runner._last_poll = 11
    assert runner.health() == "ok"
    clock.now = 20
    assert runner.health() == "no poll returned for more than 5s"


def test_readiness_reports_a_check_that_stopped_answering() -> None:
    clock, release = Clock(), threading.Event()
    answered = threading.Event()

    def hangs_after_first() -> str:
        if answered.is_set():
            release.wait(5)
        answered.set()
        return "ok"

    monitor = ReadinessMonitor({"broker": hangs_after_first}, interval=0.01, stale_after=4.0, clock=clock)
    assert monitor.wait_until_checked(5)

    clock.now = 10

    assert monitor() == {"broker": "no answer for 10s"}
    release.set()
    monitor.stop()


@pytest.mark.parametrize("value", ['{"s3cret-token": "mia"}', '{"s3cret-token": 5}', '{"s3cret-token": "boss:mia"}'])
def test_malformed_api_tokens_are_refused_without_echoing_the_token(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ESCALATIONS_API_TOKENS", value)

    with pytest.raises(ValidationError) as refused:
        Settings()

    message = describe_invalid(refused.value)
    assert "s3cret-token" not in message
    assert message.startswith('ESCALATIONS_API_TOKENS: entry 1 must map a token to "role:name"')


def test_consumer_groups_and_the_client_id_carry_the_configured_prefix() -> None:
    settings = Settings(kafka_name_prefix="staging.")

    assert settings.group_name("escalations.reporting") == "staging.escalations.reporting"
    assert settings.client_id == "staging.escalation-ledger"


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


class OnePartition:
    """A member holding partition 0 of a topic with four records, served from wherever it was sought to."""

    def __init__(self) -> None:
        self.records = [Record(TOPIC, 0, offset, b"e%d" % offset) for offset in range(4)]
        self.position = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    def seek_to_beginning(self, partitions: list[TopicPartition]) -> None:
        self.position = 0

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.records)

    def poll(self, **_: Any) -> dict[TopicPartition, list[Record]]:
        batch, self.position = self.records[self.position : self.position + 2], min(self.position + 2, 4)
        return {TopicPartition(TOPIC, 0): batch} if batch else {}

    def close(self) -> None: ...


class LockedOnce:
    """Applies records, but the database is locked the first time a batch is written."""

    def __init__(self) -> None:
        self.failed = False
        self.applied: list[bytes] = []

    def apply(self, conn: sa.Connection, decoded: list[Any], on_error: Any) -> int:
        if not self.failed:
            self.failed = True
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        self.applied += [d.record.value for d in decoded]
        return len(decoded)


def test_a_batch_the_database_refused_is_applied_again_from_where_it_began_and_only_once(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'read.db'}")
    projector = LockedOnce()
    runner = ConsumerRunner(
        engine=engine,
        projector=projector,
        decode=lambda record: record,
        consumer_factory=OnePartition,  # type: ignore[arg-type]
        dead_letters=lambda: None,  # type: ignore[arg-type, return-value]
        topic=TOPIC,
        dead_letter_topic="dlq",
        group="test",
        join_group=False,
    )
    threading.Thread(target=runner.run, daemon=True).start()

    wait_until(lambda: runner.offsets.load(TOPIC) == {0: 4}, timeout=10, what="the consumer to store offset 4")
    runner.stop()

    assert projector.failed
    assert projector.applied == [b"e0", b"e1", b"e2", b"e3"]


def test_a_sqlite_read_model_lets_readers_in_while_a_consumer_writes(tmp_path: Path) -> None:
    engine = read_model_engine(Settings(data_dir=tmp_path, read_model_url=f"sqlite:///{tmp_path / 'read.db'}"))
    reader = sa.create_engine(f"sqlite:///{tmp_path / 'read.db'}", connect_args={"timeout": 0.1})

    with engine.begin() as writing:
        writing.exec_driver_sql("CREATE TABLE probe (n INTEGER)")
    with engine.begin() as writing:
        writing.exec_driver_sql("INSERT INTO probe VALUES (1)")
        # A reader during an open write transaction sees the last commit instead of waiting for the lock.
        with reader.connect() as reading:
            assert reading.exec_driver_sql("SELECT count(*) FROM probe").scalar_one() == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
