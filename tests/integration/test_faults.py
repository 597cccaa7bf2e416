"""Crashes at chosen points (ESCALATIONS_FAULT_POINT), and duplicates and gaps on the wire.

Each check here can see the difference a broken guarantee makes: how far the relay's checkpoint
and each consumer's stored offsets got at the moment of the kill, whether the read models hold
exactly what those offsets say was applied, how many records the topic holds, and counts that a
double application or a lost event would change.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from consumers.offsets import StoredOffsets
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.runtime import ConsumerRunner
from consumers.timeline import GROUP as TIMELINE_GROUP
from domain.service import EscalationService
from infra.bootstrap import (
    build_region_zones,
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    prepare_topics,
    read_model_engine,
)
from infra.faults import FaultPoint
from infra.local.stories import quiet_escalation
from infra.messaging import envelope
from infra.messaging.relay_state import Checkpoint
from infra.settings import Settings
from projections.facts import facts_from_json, fold
from projections.timeline import first_difference, timeline
from projections.timeline_tables import entries_of
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up
from tests.support.kafka_clients import both_clients
from tests.support.processes import escalations_process
from tests.support.topic_reader import Record, read_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka
ESCALATIONS = 60
EVENTS = ESCALATIONS * 5  # a quiet escalation: opened, prepared, lead, scope, one update


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def record_quiet_escalations(service: EscalationService, clock: SteppingClock, count: int = ESCALATIONS) -> None:
    for i in range(count):
        quiet_escalation(
            service, clock.now - timedelta(days=2), customer=f"C{i}", region=("AMER", "EMEA", "APAC")[i % 3], lead="l"
        )


def killed_at(process: subprocess.Popen[bytes], log: Path, point: str) -> None:
    """The process died by its own SIGKILL at `point`, not by finishing or by some other error."""
    code = process.wait(timeout=120)
    assert code == -signal.SIGKILL, f"expected a SIGKILL at {point}, got exit code {code}:\n{log.read_text()}"
    assert f"at {point} (pass" in log.read_text()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def subject_version(record: Record) -> tuple[str, int]:
    return record.headers["ce_subject"].decode(), int(record.headers["ce_aggregateversion"])


def versions_in_topic_order(records: list[Record]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        subject, version = subject_version(record)
        found[subject].append(version)
    return found


def pairs(conn: sa.Connection, query: sa.TextClause) -> dict[object, object]:
    # Not dict(result): a result has keys(), so dict() would take it for a mapping.
    return {key: value for key, value in conn.execute(query)}  # noqa: C416


def timeline_versions(conn: sa.Connection) -> Counter[tuple[str, int]]:
    """How many timeline entries each (escalation, version) has."""
    rows = conn.execute(sa.text("select escalation_id, version from timeline_entries"))
    return Counter((escalation_id, version) for escalation_id, version in rows)


# -- The relay -----------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["relay.after_produce_before_flush", "relay.after_flush_before_checkpoint"])
@both_clients
def test_a_relay_killed_at_a_chosen_point_publishes_every_event_in_order_after_a_restart(
    point: FaultPoint, kafka_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    service = build_service(kafka_settings, clock=clock)
    record_quiet_escalations(service, clock)
    notifications = service.recorder.select_notifications(start=0, limit=10 * EVENTS, topics=service.event_topics())
    positions = [n.id for n in notifications]
    settings = kafka_settings.but(relay_batch_size=40)
    bootstrap = settings.bootstrap_servers
    log = tmp_path / "relay.log"

    # The third batch is produced (and, at the second point, acknowledged) but never checkpointed.
    killed_at(escalations_process(settings.but(fault_point=point, fault_after=3), log, "relay"), log, point)
    checkpoint = Checkpoint(sa.create_engine(settings.event_store_url), relay=settings.events_topic).position()
    on_topic_at_kill = len(read_topic(bootstrap, settings.events_topic, expect_at_least=80, timeout=30))
    relay = escalations_process(settings, log, "relay")
    try:
        records = read_topic(bootstrap, settings.events_topic, expect_at_least=on_topic_at_kill + EVENTS - 80)
    finally:
        stop(relay)

    assert len(positions) == EVENTS
    assert checkpoint == positions[79], "the checkpoint must stay at the last batch that was acknowledged"
    if point == "relay.after_flush_before_checkpoint":
        assert on_topic_at_kill == 120  # the third batch was acknowledged: it is republished whole
        assert len(records) == EVENTS + 40
    else:
        assert 80 <= on_topic_at_kill <= 120
    copies = Counter(r.headers["ce_id"] for r in records)
    assert len(copies) == EVENTS  # every event at least once
    values = defaultdict(set)
    for record in records:
        values[record.headers["ce_id"]].add(record.value)
    assert all(len(v) == 1 for v in values.values())  # a republished event is an exact copy
    for subject, versions in versions_in_topic_order(records).items():
        # In order: each version comes only after its predecessor, whatever was re-sent in between.
        assert all(v <= max(versions[:i], default=0) + 1 for i, v in enumerate(versions)), subject
        assert sorted(set(versions)) == [1, 2, 3, 4, 5], subject
    applied_once_each(settings, records)


def applied_once_each(settings: Settings, records: list[Record]) -> None:
    """Both read models, fed this topic with its re-sent copies, apply every event exactly once."""
    engine = read_model_engine(settings)
    # Every partition taken directly: no wait on a group that killed members of other tests left behind.
    for runner in (
        build_reporting_consumer(settings, engine, join_group=False),
        build_timeline_consumer(settings, engine, join_group=False),
    ):
        consume_everything(runner, len(records))
        assert runner.stats.dead_lettered == 0
    with engine.connect() as conn:
        entries = timeline_versions(conn)
        reported = pairs(conn, sa.text("select escalation_id, version from escalations"))
        updates = conn.execute(sa.text("select count(*) from escalation_updates")).scalar()
    assert len(entries) == EVENTS
    assert set(entries.values()) == {1}
    assert reported == dict.fromkeys({subject for subject, _ in entries}, 5)
    assert updates == ESCALATIONS  # one UpdatePosted each; a double application would add a second row
    assert read_topic(settings.bootstrap_servers, settings.dead_letter_topic, timeout=5) == []


def consume_everything(runner: ConsumerRunner, records: int) -> None:
    """Run in this process until its stored offsets cover `records` records, then stop."""
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: sum(runner.offsets.load(runner.topic).values()) >= records,
            what=f"{runner.group} to store offsets past all {records} records",
            timeout=90,
        )
    finally:
        runner.stop()
        thread.join(timeout=30)


# -- The consumers -------------------------------------------------------------------------------


@pytest.fixture
def published(kafka_settings: Settings, clock: SteppingClock) -> Iterator[list[Record]]:
    service = build_service(kafka_settings, clock=clock)
    record_quiet_escalations(service, clock)
    prepare_topics(kafka_settings)
    publish_until_caught_up(kafka_settings, service)
    yield read_topic(kafka_settings.bootstrap_servers, kafka_settings.events_topic, expect_at_least=EVENTS)
    service.close()


def applied_below_stored_offsets(records: list[Record], stored: dict[int, int]) -> set[tuple[str, int]]:
    """What a consumer that stored these offsets has applied: every event before them, none after."""
    return {subject_version(r) for r in records if r.offset < stored.get(r.partition, 0)}


def read_models_match_their_offsets(engine: sa.Engine, records: list[Record], topic: str) -> tuple[int, int]:
    """Both read models hold exactly what their stored offsets say; returns how many each applied."""
    timeline_applied = applied_below_stored_offsets(records, StoredOffsets(engine, TIMELINE_GROUP).load(topic))
    reporting_applied = applied_below_stored_offsets(records, StoredOffsets(engine, REPORTING_GROUP).load(topic))
    newest: dict[str, int] = {}
    for subject, version in reporting_applied:
        newest[subject] = max(version, newest.get(subject, 0))
    with engine.connect() as conn:
        entries = timeline_versions(conn)
        reported = pairs(conn, sa.text("select escalation_id, version from escalations"))
    assert set(entries) == timeline_applied, "timeline entries and the timeline's stored offsets disagree"
    assert set(entries.values()) <= {1}
    assert reported == newest, "reporting rows and the reporting consumer's stored offsets disagree"
    return len(timeline_applied), len(reporting_applied)


@pytest.mark.parametrize("point", ["consumer.after_apply_before_commit", "consumer.between_batches"])
@both_clients
def test_consumers_killed_at_a_chosen_point_apply_every_event_exactly_once_after_a_restart(
    point: FaultPoint, kafka_settings: Settings, published: list[Record], tmp_path: Path
) -> None:
    # A short poll interval bounds how long the restarted member waits for the killed one to leave the group.
    settings = kafka_settings.but(
        read_model_url=f"sqlite:///{tmp_path / 'read.db'}", consumer_max_records=20, consumer_max_poll_interval_ms=5000
    )
    engine = read_model_engine(settings)
    log = tmp_path / "consumers.log"
    faulty = settings.but(fault_point=point, fault_after=4)

    for name in ("reporting", "timeline"):
        killed_at(escalations_process(faulty, log, "consume", name), log, point)
    at_kill = read_models_match_their_offsets(engine, published, settings.events_topic)
    consumers = [escalations_process(settings, log, "consume", name) for name in ("reporting", "timeline")]
    try:
        wait_for(
            lambda: all(
                sum(StoredOffsets(engine, group).load(settings.events_topic).values()) == EVENTS
                for group in (REPORTING_GROUP, TIMELINE_GROUP)
            ),
            what=f"both restarted consumers to store offsets past all {EVENTS} records",
            timeout=120,
            interval=0.5,
        )
    finally:
        for consumer in consumers:
            stop(consumer)
    at_end = read_models_match_their_offsets(engine, published, settings.events_topic)

    # Killed mid-stream: some batches committed, the rest still to come.
    assert all(0 < applied < EVENTS for applied in at_kill), at_kill
    assert at_end == (EVENTS, EVENTS)
    with engine.connect() as conn:
        updates = conn.execute(sa.text("select count(*) from escalation_updates")).scalar()
    assert updates == ESCALATIONS
    assert read_topic(settings.bootstrap_servers, settings.dead_letter_topic, timeout=5) == []


# -- Duplicates and gaps on the wire -------------------------------------------------------------


@both_clients
def test_re_sent_copies_are_ignored_and_a_gap_is_dead_lettered_by_both_consumers(
    kafka_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    service = build_service(kafka_settings, clock=clock)
    latest, older, gapped = (
        quiet_escalation(service, clock.now - timedelta(days=2), customer=name, region="EMEA", lead="l")
        for name in ("Latest", "Older", "Gapped")
    )
    history = {key: service.history(key) for key in (latest, older, gapped)}
    sent = {
        latest: [1, 2, 3, 4, 5, 5],  # the latest re-sent: exactly what a relay crash after its flush produces
        older: [1, 2, 3, 2, 4, 1, 5, 3],  # older versions re-sent in between
        gapped: [1, 2, 4, 5],  # version 3 never arrived
    }
    prepare_topics(kafka_settings)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    for key, versions in sent.items():
        for version in versions:
            subject, value, headers = envelope.encode(history[key][version - 1], version, kafka_settings.event_source)
            producer.send(kafka_settings.events_topic, key=subject, value=value, headers=headers)
    producer.flush()
    producer.close()
    settings = kafka_settings.but(read_model_url=f"sqlite:///{tmp_path / 'read.db'}")
    engine = read_model_engine(settings)
    runners = [
        build_reporting_consumer(settings, engine, join_group=False),
        build_timeline_consumer(settings, engine, join_group=False),
    ]

    for runner in runners:
        consume_everything(runner, sum(len(v) for v in sent.values()))

    dead = read_topic(settings.bootstrap_servers, settings.dead_letter_topic, expect_at_least=4)
    dead_by_group = sorted((r.headers["dlq_consumer_group"].decode(), subject_version(r)[1]) for r in dead)
    assert dead_by_group == [(REPORTING_GROUP, 4), (REPORTING_GROUP, 5), (TIMELINE_GROUP, 4), (TIMELINE_GROUP, 5)]
    assert all(subject_version(r)[0] == str(gapped) for r in dead)
    assert all("jumps from version 2 to" in r.headers["dlq_error"].decode() for r in dead)
    with engine.connect() as conn:
        facts = {
            UUID(k): facts_from_json(v)
            for k, v in conn.execute(sa.text("select escalation_id, facts from reporting_state"))
        }
        for key in (latest, older):
            recorded = [envelope.as_recorded(event, event.originator_version) for event in history[key]]
            expected = None
            for event in recorded:
                expected = fold(expected, event)
            assert facts[key] == expected  # the copies changed nothing
            assert (
                first_difference(entries_of(conn, str(key)), timeline(recorded, build_region_zones(kafka_settings)))
                is None
            )
        updates = pairs(conn, sa.text("select escalation_id, count(*) from escalation_updates group by 1"))
        gapped_entries = [e.version for e in entries_of(conn, str(gapped))]
    assert facts[gapped].version == 2  # stuck before the gap until it is republished
    assert gapped_entries == [1, 2]
    assert updates == {str(latest): 1, str(older): 1}
