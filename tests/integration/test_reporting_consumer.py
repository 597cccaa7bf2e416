"""The reporting consumer against real Apache Kafka, with SQLite and PostgreSQL read models."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from consumers.offsets import StoredOffsets
from consumers.reporting import GROUP, ReportingProjector
from consumers.runtime import ConsumerRunner, Decoded, OnError, lag_by_partition
from consumers.timeline import GROUP as TIMELINE_GROUP
from domain.service import EscalationService
from infra.bootstrap import (
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    log_consumer,
    prepare_topics,
    rebuild_reporting,
)
from infra.local.postgres import PostgresAddress
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.settings import Settings
from projections.facts import EscalationFacts, RecordedEvent, fold
from projections.tables import READ_MODEL_TABLES, VIEWS, create_schema
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up as publish
from tests.support.kafka_clients import both_clients
from tests.support.processes import escalations_process
from tests.support.topic_reader import read_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def reporting_settings(request: pytest.FixtureRequest, kafka_settings: Settings, tmp_path: Path) -> Settings:
    """Kafka settings with a read model of each kind (the event store stays SQLite)."""
    if request.param == "sqlite":
        return kafka_settings.but(read_model_url=f"sqlite:///{tmp_path / 'reporting.db'}")
    address: PostgresAddress = request.getfixturevalue("postgres_db")
    return kafka_settings.but(read_model_url=address.url)


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def many_escalations(service: EscalationService, clock: SteppingClock, count: int, offset: int = 0) -> None:
    for i in range(offset, offset + count):
        quiet_escalation(
            service,
            clock.now - timedelta(days=2),
            customer=f"Customer {i}",
            region=("AMER", "EMEA", "APAC")[i % 3],
            lead=f"lead{i % 5}",
        )


def rows_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table and every view (the analysts' SQL path), with booleans read as 0/1 in both dialects."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in READ_MODEL_TABLES}
        for name in VIEWS:
            rows = [
                tuple(int(v) if isinstance(v, bool) else v for v in r)
                for r in conn.execute(sa.text(f"SELECT * FROM {name}"))  # noqa: S608 - our own view names
            ]
            found[f"view {name}"] = sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))
    engine.dispose()
    return found


def consume_until(runner: ConsumerRunner, done: Callable[[], bool], timeout: float = 90) -> None:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(done, what=f"the {runner.group} consumer to finish (so far: {runner.stats})", timeout=timeout)
    finally:
        runner.stop()
        thread.join(timeout=30)


def fresh_rebuild(settings: Settings, url: str) -> dict[str, list[tuple[Any, ...]]]:
    rebuild_reporting(settings.but(read_model_url=url), sa.create_engine(url))
    return rows_of(url)


def test_the_live_read_model_equals_a_rebuild_from_history(
    reporting_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    service = build_service(reporting_settings, clock=clock)
    ldap_proxy_story(service, clock.now - timedelta(days=14))
    many_escalations(service, clock, 30)
    prepare_topics(reporting_settings)
    total = publish(reporting_settings, service)
    engine = sa.create_engine(reporting_settings.read_model)
    create_schema(engine)
    runner = build_reporting_consumer(reporting_settings, engine)

    consume_until(runner, lambda: runner.stats.applied == total)

    live = rows_of(reporting_settings.read_model)
    assert len(live["escalations"]) == 31
    assert live == fresh_rebuild(reporting_settings, f"sqlite:///{tmp_path / 'rebuilt.db'}")


@both_clients
def test_poison_messages_go_to_the_dead_letter_topic_and_the_rest_is_applied(
    reporting_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(reporting_settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    prepare_topics(reporting_settings)
    bootstrap = reporting_settings.bootstrap_servers
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(reporting_settings.events_topic, key=b"x", value=b"\x00\xffgarbage", headers=[("ce_type", b"?")])
    producer.send(reporting_settings.events_topic, key=b"x", value=b'{"a": 1}')
    producer.send(
        reporting_settings.events_topic,
        key=b"x",
        value=b"{}",
        headers=[
            (k, b"1.0" if k == "ce_specversion" else b"application/json" if k == "content-type" else b"0")
            for k in (
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_time",
                "ce_subject",
                "content-type",
                "ce_aggregateversion",
                "ce_position",
            )
        ]
        + [("ce_type", b"escalations.Teleported.v1")],
    )
    producer.flush()
    producer.close()
    published = publish(reporting_settings, service)

    def fold_that_fails_on_emergencies(facts: EscalationFacts | None, event: RecordedEvent) -> EscalationFacts:
        if event.name == "EmergencyRaised":
            msg = "projection bug on EmergencyRaised"
            raise RuntimeError(msg)
        return fold(facts, event)

    engine = sa.create_engine(reporting_settings.read_model)
    create_schema(engine)
    runner = build_reporting_consumer(reporting_settings, engine, ReportingProjector(fold_that_fails_on_emergencies))
    consume_until(runner, lambda: runner.stats.dead_lettered == 4 and runner.stats.applied == 23)

    dead = read_topic(bootstrap, reporting_settings.dead_letter_topic, expect_at_least=4)
    errors = sorted(r.headers["dlq_error"].decode() for r in dead)
    assert len(dead) == 4
    assert any("missing CloudEvents header" in e for e in errors)
    assert any("unknown event type 'escalations.Teleported.v1'" in e for e in errors)
    assert any("projection bug on EmergencyRaised" in e for e in errors)
    assert all(r.headers["dlq_origin_topic"].decode() == reporting_settings.events_topic for r in dead)
    assert all("dlq_origin_offset" in r.headers for r in dead)
    # The events after the failing one were still applied.
    with engine.connect() as conn:
        row = conn.execute(sa.text("select escalation_id, version, status from escalations")).one()
    assert published == 24
    assert tuple(row) == (str(story), 24, "closed")


deliveries = sa.Table(
    "test_deliveries",
    sa.MetaData(),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
)


class CountingProjector:
    """The reporting projector, and one row per record it is handed, in the batch's own transaction.

    The fold ignores versions it has seen, so the read model alone cannot show a record that was
    applied twice; these rows can: a committed batch leaves one row per record, a rolled-back one none.
    """

    def __init__(self) -> None:
        self.inner = ReportingProjector()

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        conn.execute(deliveries.insert(), [{"partition": r.partition, "offset": r.offset} for r, _ in batch])
        return self.inner.apply(conn, batch, on_error)


@both_clients
def test_two_instances_in_one_group_share_the_partitions_and_apply_every_event_once(
    reporting_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(reporting_settings, clock=clock)
    prepare_topics(reporting_settings)
    engine = sa.create_engine(reporting_settings.read_model)
    create_schema(engine)
    deliveries.create(engine)
    first = build_reporting_consumer(reporting_settings, engine, CountingProjector())
    second = build_reporting_consumer(reporting_settings, engine, CountingProjector())
    threads = [threading.Thread(target=r.run, daemon=True) for r in (first, second)]
    for thread in threads:
        thread.start()
    wait_for(lambda: bool(first.assigned and second.assigned), what="both instances to be assigned partitions")
    assert first.assigned.isdisjoint(second.assigned)
    assert first.assigned | second.assigned == {0, 1, 2}

    many_escalations(service, clock, 60)
    total = publish(reporting_settings, service)
    stored = StoredOffsets(engine, GROUP)
    wait_for(
        lambda: sum(stored.load(reporting_settings.events_topic).values()) >= total,
        what=f"the two instances to store offsets past all {total} records",
        timeout=90,
    )
    first.stop()
    second.stop()
    for thread in threads:
        thread.join(timeout=30)

    with engine.connect() as conn:
        handed = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar()
        distinct = conn.execute(sa.select(deliveries.c.partition, deliveries.c.offset).distinct()).all()
    assert handed == len(distinct) == total  # every record in exactly one committed batch
    assert sum(stored.load(reporting_settings.events_topic).values()) == total
    assert first.stats.applied + second.stats.applied == total
    assert first.stats.applied > 0
    assert second.stats.applied > 0
    assert len(rows_of(reporting_settings.read_model)["escalations"]) == 60


@both_clients
def test_a_consumer_killed_at_random_points_ends_equal_to_a_fresh_rebuild(
    reporting_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    service = build_service(reporting_settings, clock=clock)
    prepare_topics(reporting_settings)
    # A short poll interval: a restarted member waits at most that long for the killed one to leave.
    settings = reporting_settings.but(consumer_max_records=50, consumer_max_poll_interval_ms=5000)
    engine = sa.create_engine(settings.read_model)
    stored = StoredOffsets(engine, GROUP)
    log = tmp_path / "consumer.log"
    rng = random.Random(7)
    written = 0
    for round_number in range(4):
        many_escalations(service, clock, 150, offset=round_number * 150)
        written += publish(settings, service)
        # A random batch of this round, inside its transaction or just after its commit.
        point = ("consumer.after_apply_before_commit", "consumer.between_batches")[round_number % 2]
        faulty = settings.but(fault_point=point, fault_after=rng.randint(2, 12))
        consumer = escalations_process(faulty, log, "consume", "reporting")
        assert consumer.wait(timeout=120) == -signal.SIGKILL, log.read_text()
        assert log.read_text().count("fault: killing process") == round_number + 1
        assert sum(stored.load(settings.events_topic).values()) < written, "the kill must land mid-stream"
    final = escalations_process(settings, log, "consume", "reporting")
    try:
        wait_for(
            lambda: sum(stored.load(settings.events_topic).values()) == written,
            what=f"the restarted consumer to store offsets past all {written} records",
            timeout=120,
            interval=0.5,
        )
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0

    assert written == 3000
    assert rows_of(settings.read_model) == fresh_rebuild(settings, f"sqlite:///{tmp_path / 'rebuilt.db'}")


def test_status_shows_the_lag_per_partition_before_and_after_consuming(
    reporting_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(reporting_settings, clock=clock)
    many_escalations(service, clock, 12)
    prepare_topics(reporting_settings)
    total = publish(reporting_settings, service)
    engine = sa.create_engine(reporting_settings.read_model)
    create_schema(engine)
    reader = log_consumer(reporting_settings, None)
    before = lag_by_partition(StoredOffsets(engine, GROUP), reader, reporting_settings.events_topic)
    runner = build_reporting_consumer(reporting_settings, engine)

    consume_until(runner, lambda: runner.stats.applied == total)
    after = lag_by_partition(StoredOffsets(engine, GROUP), reader, reporting_settings.events_topic)
    reader.close()
    shown = subprocess.run(
        [sys.executable, "-m", "infra", "status"],
        env={**os.environ, **reporting_settings.as_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert sum(lag for _, _, lag in before.values()) == total
    assert sum(lag for _, _, lag in after.values()) == 0
    assert shown.returncode == 0, shown.stderr
    assert "relay checkpoint" in shown.stdout
    assert "Consumer lag" in shown.stdout


def test_rebuilding_the_reporting_read_model_leaves_the_timeline_where_it_was(
    reporting_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(reporting_settings, clock=clock)
    prepare_topics(reporting_settings)
    many_escalations(service, clock, 6)
    first = publish(reporting_settings, service)
    engine = sa.create_engine(reporting_settings.read_model)
    timeline = build_timeline_consumer(reporting_settings, engine)
    consume_until(timeline, lambda: timeline.stats.applied == first)
    timeline_offsets = StoredOffsets(engine, TIMELINE_GROUP).load(reporting_settings.events_topic)
    many_escalations(service, clock, 6, offset=6)
    total = first + publish(reporting_settings, service)

    rebuilt = subprocess.run(
        [sys.executable, "-m", "infra", "rebuild", "reporting"],
        env={**os.environ, **reporting_settings.as_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert sum(timeline_offsets.values()) == first
    assert StoredOffsets(engine, TIMELINE_GROUP).load(reporting_settings.events_topic) == timeline_offsets
    assert sum(StoredOffsets(engine, GROUP).load(reporting_settings.events_topic).values()) == total
