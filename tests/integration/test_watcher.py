"""The watcher against real Apache Kafka, with SQLite and PostgreSQL tables: each due deadline records
its event exactly once, whatever is killed, however many watchers run, and after a rebuild."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from domain.service import EscalationService
from infra.bootstrap import build_service, build_watcher, prepare_topics
from infra.local.postgres import PostgresAddress
from infra.local.stories import quiet_escalation
from infra.settings import Settings
from tests.integration.test_relay import publish_until_caught_up as publish
from tests.support.processes import escalations_cli, escalations_process

pytestmark = pytest.mark.kafka
LEDGER = "escalation-ledger"
EXPECTED = ("UpdateOverdue", "ProgressStalled")  # per back-dated escalation: high, silent for weeks


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def watcher_settings(request: pytest.FixtureRequest, kafka_settings: Settings, tmp_path: Path) -> Settings:
    """Kafka settings with the watcher's tables in each kind of database (the event store stays SQLite)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'watcher.db'}"
    else:
        address: PostgresAddress = request.getfixturevalue("postgres_db")
        url = address.url
    return kafka_settings.but(read_model_url=url, watcher_interval=0.2, consumer_max_records=20)


@pytest.fixture(params=["sqlite"])
def store_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def silent_escalations(service: EscalationService, count: int) -> list[UUID]:
    weeks_ago = datetime.now(UTC) - timedelta(days=21)
    return [
        quiet_escalation(service, weeks_ago, customer=f"Customer {i}", region=("AMER", "EMEA", "APAC")[i % 3], lead="l")
        for i in range(count)
    ]


def ledger_events(service: EscalationService, escalations: list[UUID]) -> Counter[tuple[UUID, str]]:
    return Counter(
        (e, type(event).__name__) for e in escalations for event in service.history(e) if event.actor == LEDGER
    )


def all_recorded(service: EscalationService, escalations: list[UUID]) -> Callable[[], bool]:
    return lambda: set(ledger_events(service, escalations)) == {(e, name) for e in escalations for name in EXPECTED}


def wait_for(done: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_watcher_killed_at_random_points_records_each_due_event_exactly_once(
    watcher_settings: Settings, tmp_path: Path
) -> None:
    service = build_service(watcher_settings)
    escalations = silent_escalations(service, 30)
    prepare_topics(watcher_settings)
    publish(watcher_settings, service)
    log, rng = tmp_path / "watcher.log", random.Random(11)
    done = all_recorded(service, escalations)

    for _ in range(4):
        watcher = escalations_process(watcher_settings, log, "watch")
        time.sleep(rng.uniform(1.0, 4.0))  # a random point: consuming, firing, or between firing and marking
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(timeout=30)
    last = escalations_process(watcher_settings, log, "watch")
    try:
        wait_for(done, f"every escalation to get {EXPECTED} (log: {log})")
    finally:
        last.send_signal(signal.SIGTERM)
        last.wait(timeout=60)

    counts = ledger_events(service, escalations)
    assert set(counts.values()) == {1}, {key: n for key, n in counts.items() if n != 1}


def test_two_watchers_share_the_partitions_and_a_rebuild_records_nothing_new(watcher_settings: Settings) -> None:
    service = build_service(watcher_settings)
    prepare_topics(watcher_settings)
    engine = sa.create_engine(watcher_settings.read_model)
    watchers = [build_watcher(watcher_settings, engine, service) for _ in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in watchers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: all(w.assigned for w in watchers), "both watchers to own partitions")
        escalations = silent_escalations(service, 30)
        publish(watcher_settings, service)
        wait_for(all_recorded(service, escalations), f"every escalation to get {EXPECTED}")
    finally:
        for w in watchers:
            w.stop()
        for thread in threads:
            thread.join(timeout=60)
    publish(watcher_settings, service)  # the ledger's own events reach the topic too

    topic_events = sum(len(service.history(e)) for e in escalations)

    rebuilt = escalations_cli(watcher_settings, "rebuild", "watcher")
    fired_after_rebuild = build_watcher(watcher_settings, engine, service).fire_due(partitions={0, 1, 2})

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"Rebuilt watcher: {topic_events} events applied" in rebuilt.stdout
    counts = ledger_events(service, escalations)
    assert set(counts.values()) == {1}, {key: n for key, n in counts.items() if n != 1}
    assert all(w.fired > 0 for w in watchers), [w.fired for w in watchers]
    assert fired_after_rebuild == 0
