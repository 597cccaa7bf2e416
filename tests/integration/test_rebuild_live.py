"""A rebuild beside the live read model: queries answer throughout, the running consumer hands over at the switch."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.log_client import TopicPartition
from consumers.runtime import ConsumerRunner
from consumers.switch import staged_sqlite_path
from domain.service import EscalationService
from infra.audit import read_whole_topic, verify_timelines_against_topic
from infra.bootstrap import (
    build_region_zones,
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    log_consumer,
    prepare_topics,
    rebuild_live,
)
from infra.settings import Settings
from projections.tables import create_schema
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up as publish
from tests.integration.test_reporting_consumer import fresh_rebuild, many_escalations, rows_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def read_model_settings(request: pytest.FixtureRequest, kafka_settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return kafka_settings.but(read_model_url=f"sqlite:///{tmp_path / 'live.db'}")
    return kafka_settings.but(read_model_url=request.getfixturevalue("postgres_db").url)


class Queries:
    """Asks the live read model the whole time, as the API would; keeps every answer and every failure."""

    def __init__(self, engine: sa.Engine, sql: str) -> None:
        self.engine, self.sql = engine, sql
        self.answers: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ask, daemon=True)

    def _ask(self) -> None:
        while not self._stop.is_set():
            try:
                with self.engine.connect() as conn:
                    self.answers.append(int(conn.exec_driver_sql(self.sql).scalar_one()))
            except sa.exc.DBAPIError as error:
                self.failures.append(str(error).splitlines()[0])
            self._stop.wait(0.01)

    @contextlib.contextmanager
    def running(self) -> Iterator[Queries]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)


def running(runner: ConsumerRunner) -> threading.Thread:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return thread


def more_escalations(
    settings: Settings, service: EscalationService, clock: SteppingClock, offset: int
) -> Callable[[], None]:
    def record() -> None:
        many_escalations(service, clock, 3, offset=offset)
        publish(settings, service)

    return record


def once(action: Callable[[], None]) -> Callable[..., None]:
    done: list[bool] = []

    def call(*_args: object) -> None:
        if not done:
            done.append(True)
            action()

    return call


def caught_up(runner: ConsumerRunner, total: int) -> Callable[[], bool]:
    return lambda: sum(runner.offsets.load(runner.topic).values()) == total


def test_the_reporting_rebuild_switches_in_while_queries_answer_and_the_consumer_keeps_going(
    read_model_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    settings = read_model_settings
    service = build_service(settings, clock=clock)
    many_escalations(service, clock, 12)
    prepare_topics(settings)
    publish(settings, service)
    engine = sa.create_engine(settings.read_model)
    create_schema(engine)
    live = build_reporting_consumer(settings, engine)
    thread = running(live)
    wait_for(lambda: live.stats.applied > 0 and caught_up(live, total_of(settings))(), what="the live consumer")

    with Queries(engine, "SELECT count(*) FROM escalations").running() as queries:
        rebuild_live(
            settings,
            engine,
            "reporting",
            # Recorded while the rebuild reads history, and again between its catching up and the switch.
            once(more_escalations(settings, service, clock, 100)),
            switching=once(more_escalations(settings, service, clock, 200)),
        )
        wait_for(caught_up(live, total_of(settings)), what="the live consumer to apply what came after the switch")
    live.stop()
    thread.join(timeout=30)

    assert queries.failures == []
    assert min(queries.answers) >= 12  # never an empty or half-built read model
    assert len(queries.answers) > 1
    rows = rows_of(settings.read_model)
    assert len(rows["escalations"]) == 18
    with engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT count(*), count(DISTINCT event_id) FROM reporting_events").one()
    assert tuple(kept) == (total_of(settings), total_of(settings))  # each event once
    assert rows == fresh_rebuild(settings, f"sqlite:///{tmp_path / 'from-scratch.db'}")
    if engine.dialect.name == "sqlite":
        assert not staged_sqlite_path(engine, "reporting").exists()


@pytest.mark.parametrize("read_model_settings", ["sqlite"], indirect=True)
def test_the_timeline_rebuild_switches_in_and_its_hash_chain_verifies(
    read_model_settings: Settings, clock: SteppingClock
) -> None:
    settings = read_model_settings
    service = build_service(settings, clock=clock)
    many_escalations(service, clock, 8)
    prepare_topics(settings)
    publish(settings, service)
    engine = sa.create_engine(settings.read_model)
    live = build_timeline_consumer(settings, engine)
    thread = running(live)
    wait_for(caught_up(live, total_of(settings)), what="the live timeline consumer")

    with Queries(engine, "SELECT count(*) FROM timeline_entries").running() as queries:
        rebuild_live(settings, engine, "timeline", switching=once(more_escalations(settings, service, clock, 300)))
        wait_for(caught_up(live, total_of(settings)), what="the timeline consumer to apply what came after the switch")
    live.stop()
    thread.join(timeout=30)

    assert queries.failures == []
    assert min(queries.answers) >= 8
    with engine.connect() as conn:
        entries = conn.exec_driver_sql("SELECT count(*) FROM timeline_entries").scalar_one()
    assert entries == total_of(settings)
    reader = log_consumer(settings, None)
    events = read_whole_topic(reader, settings.events_topic)
    reader.close()
    assert verify_timelines_against_topic(engine, events, build_region_zones(settings)) == {}


def total_of(settings: Settings) -> int:
    """Records on the topic (one per event: the relay publishes each once)."""
    reader = log_consumer(settings, None)
    try:
        partitions = [
            TopicPartition(settings.events_topic, p) for p in reader.partitions_for_topic(settings.events_topic) or []
        ]
        return sum(reader.end_offsets(partitions).values())
    finally:
        reader.close()
