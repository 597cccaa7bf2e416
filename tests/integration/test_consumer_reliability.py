"""Consumers that never sit idle, against real Apache Kafka: late topics, and a member killed mid-work."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.runtime import ConsumerRunner
from infra.bootstrap import build_reporting_consumer, build_service, prepare_topics
from infra.local.stories import quiet_escalation
from infra.settings import Settings
from projections.tables import create_schema
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up as publish
from tests.support.processes import escalations_process

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def wait_for(condition: Callable[[], bool], within: float, what: str) -> float:
    """Seconds it took; fails naming what it waited for."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > within:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - began


def running(runner: ConsumerRunner) -> threading.Thread:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return thread


def test_a_consumer_subscribing_before_the_topic_exists_gets_partitions_within_seconds(
    kafka_settings: Settings,
) -> None:
    engine = sa.create_engine(kafka_settings.read_model)
    create_schema(engine)
    runner = build_reporting_consumer(kafka_settings, engine)
    thread = running(runner)
    wait_for(lambda: runner._consumer is not None, 30, "the consumer to subscribe")
    time.sleep(1)  # subscribed to a topic that does not exist yet: the group gives it nothing

    prepare_topics(kafka_settings)

    try:
        wait_for(lambda: runner.assigned == {0, 1, 2}, 20, "all three partitions assigned")
        wait_for(lambda: runner.health() == "ok", 5, "the consumer to report itself healthy")
    finally:
        runner.stop()
        thread.join(timeout=30)


def test_a_killed_consumers_partitions_are_processed_again_within_ten_seconds(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    clock = SteppingClock()
    service = build_service(kafka_settings, clock=clock)
    prepare_topics(kafka_settings)
    engine = sa.create_engine(kafka_settings.read_model)
    create_schema(engine)
    log = tmp_path / "consumer.log"
    doomed = escalations_process(kafka_settings, log, "consume", "reporting")
    wait_for(lambda: "consumer.partitions_assigned" in log.read_text(), 60, "the doomed consumer's partitions")
    survivor = build_reporting_consumer(kafka_settings, engine)
    thread = running(survivor)
    # The survivor joins; the group, rebalanced, splits the partitions between the two members.
    wait_for(lambda: bool(survivor.assigned), 60, "the survivor to hold some partitions")
    wait_for(lambda: len(survivor.assigned) < 3 and log.read_text().count("partitions_assigned") >= 2, 60, "a split")

    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()
    for i in range(6):  # keys spread over every partition, the dead member's too
        quiet_escalation(service, clock.now - timedelta(days=1), customer=f"Customer {i}", region="EMEA", lead="l")
    total = publish(kafka_settings, service)

    try:
        # Both: the six keys may all land on the survivor's own partitions, and then applying them
        # would not wait for the dead member's partitions to come back.
        wait_for(
            lambda: survivor.stats.applied >= total and set(survivor.assigned) == {0, 1, 2},
            30,
            f"all {total} events applied by the survivor, holding every partition",
        )
        took = time.monotonic() - killed_at
        held = set(survivor.assigned)
    finally:
        survivor.stop()
        thread.join(timeout=30)
    assert held == {0, 1, 2}
    assert took < 10, f"the dead member's partitions were processed again only after {took:.1f}s"
