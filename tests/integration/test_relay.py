"""The relay publishes every recorded event to real Apache Kafka, in order, exactly as recorded."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import jsonschema
import pytest
import sqlalchemy as sa

from domain.service import EscalationService
from infra.bootstrap import build_relay, build_service, prepare_topics
from infra.local.brokers import ApacheKafka
from infra.local.ports import free_port
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.messaging import envelope
from infra.messaging.relay_state import RelayLock, RelayLockedError
from infra.messaging.schemas import DOCS
from infra.settings import Settings
from tests.fakes import SteppingClock
from tests.support.kafka_clients import both_clients
from tests.support.processes import escalations_process
from tests.support.topic_reader import Record, read_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka
REGIONS = ("AMER", "EMEA", "APAC")
CUSTOMER_NUMBERS = itertools.count()


def record_escalations(service: EscalationService, count: int, clock: SteppingClock) -> int:
    """`count` small escalations across regions; returns how many events were recorded."""
    for _ in range(count):
        i = next(CUSTOMER_NUMBERS)
        region = REGIONS[i % 3]
        quiet_escalation(
            service,
            clock.now - timedelta(days=3),
            customer=f"Customer {i}",
            region=region,
            lead=f"lead{i % 7}",
        )
    return count * 5


def publish_until_caught_up(settings: Settings, service: EscalationService) -> int:
    relay = build_relay(settings, service)
    relay.connect()
    published = relay.catch_up()
    relay.close()
    return published


def by_escalation(records: list[Record]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = defaultdict(list)
    for record in records:
        versions[record.headers["ce_subject"].decode()].append(int(record.headers["ce_aggregateversion"]))
    return versions


@both_clients
def test_events_of_many_escalations_arrive_complete_and_in_order(
    kafka_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(kafka_settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    recorded = record_escalations(service, 40, clock) + service.state(story)["version"]
    prepare_topics(kafka_settings)

    publish_until_caught_up(kafka_settings, service)

    records = read_topic(
        kafka_settings.kafka_bootstrap_servers or "", kafka_settings.events_topic, expect_at_least=recorded
    )
    assert len(records) == recorded
    for escalation_id, versions in by_escalation(records).items():
        assert versions == list(range(1, len(versions) + 1)), f"{escalation_id} out of order"
        assert len(versions) == service.state(UUID(escalation_id))["version"]


def test_headers_and_values_are_exactly_as_specified_and_match_the_schemas(
    kafka_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(kafka_settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    prepare_topics(kafka_settings)

    publish_until_caught_up(kafka_settings, service)

    history = service.history(story)
    records = read_topic(
        kafka_settings.kafka_bootstrap_servers or "",
        kafka_settings.events_topic,
        expect_at_least=len(history),
    )
    assert len(records) == len(history)
    positions = []
    for record, event in zip(records, history, strict=True):
        h = {k: v.decode() for k, v in record.headers.items()}
        assert set(h) == set(envelope.REQUIRED_HEADERS)
        assert h["ce_specversion"] == "1.0"
        assert h["ce_id"] == envelope.event_id(story, event.originator_version)
        assert h["ce_source"] == kafka_settings.event_source
        assert h["ce_type"] == f"escalations.{type(event).__name__}.v{type(event).class_version}"
        assert h["ce_time"] == event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        assert h["ce_subject"] == str(story)
        assert h["content-type"] == "application/json"
        assert h["ce_aggregateversion"] == str(event.originator_version)
        assert record.key == str(story).encode()
        positions.append(int(h["ce_position"]))
        value = json.loads(record.value or b"")
        assert value["actor"] == event.actor
        assert value["escalation_id"] == str(story)
        schema = json.loads((DOCS / "schemas" / f"{h['ce_type']}.json").read_text())
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert positions == sorted(positions)


def test_only_one_relay_publishes_per_event_store(kafka_settings: Settings) -> None:
    with RelayLock(kafka_settings.event_store_url), pytest.raises(RelayLockedError, match="another relay"):
        RelayLock(kafka_settings.event_store_url).acquire()

    with RelayLock(kafka_settings.event_store_url) as lock:
        assert lock is not None  # free again once the first let go


def relay_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return escalations_process(settings, log, "relay")


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
@both_clients
def test_a_relay_killed_mid_publish_loses_nothing_when_started_again(
    kafka_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    service = build_service(kafka_settings, clock=clock)
    recorded = record_escalations(service, 700, clock)
    # Small batches with a linger keep the relay busy for seconds, so the kill lands mid-publish.
    settings = kafka_settings.but(relay_batch_size=20, relay_linger_ms=20)
    bootstrap = settings.kafka_bootstrap_servers or ""
    checkpoint = sa.create_engine(settings.event_store_url)

    def published_some() -> bool:
        with checkpoint.connect() as conn:
            return bool(sa.inspect(conn).has_table("relay_checkpoints")) and bool(
                conn.execute(sa.text("select max(position) from relay_checkpoints")).scalar()
            )

    first = relay_process(settings, tmp_path / "relay.log")
    wait_for(published_some, what="a first part published", interval=0.01)

    first.send_signal(signal.SIGKILL)
    first.wait()
    published_before_restart = len(read_topic(bootstrap, settings.events_topic, timeout=5))
    second = relay_process(settings, tmp_path / "relay.log")
    try:
        records = read_topic(bootstrap, settings.events_topic, expect_at_least=recorded, timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0

    assert published_before_restart < recorded, "the relay was killed after it had finished; kill it sooner"
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for record in records:
        by_id[record.headers["ce_id"].decode()].add(record.value or b"")
    assert len(by_id) == recorded  # none missing
    assert all(len(values) == 1 for values in by_id.values())  # duplicates only as exact copies
    for versions in by_escalation(records).values():
        assert sorted(set(versions)) == list(range(1, 6))


def test_a_broker_restart_while_the_relay_runs_loses_nothing(
    store_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    with ApacheKafka() as broker:
        settings = store_settings.but(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_partitions=2,
            relay_verify_interval=0.5,
            kafka_bootstrap_timeout_ms=2000,
        )
        service = build_service(settings, clock=clock)
        relay = build_relay(settings, service)
        runner = threading.Thread(target=relay.run, daemon=True)
        runner.start()
        recorded = record_escalations(service, 20, clock)
        wait_for(lambda: relay.published >= recorded, what="the first events published")

        broker.stop()
        recorded += record_escalations(service, 20, clock)  # recorded while the broker is down
        broker.start()
        recorded += record_escalations(service, 20, clock)

        records = read_topic(broker.bootstrap_servers, settings.events_topic, expect_at_least=recorded, timeout=90)
        relay.stop()
        runner.join(timeout=30)
    assert len({r.headers["ce_id"] for r in records}) == recorded


def test_an_unreachable_broker_at_start_is_a_clear_error_not_a_hang(store_settings: Settings, tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    settings = store_settings.but(
        kafka_bootstrap_servers=nowhere, kafka_connect_attempts=2, kafka_bootstrap_timeout_ms=500
    )
    log = tmp_path / "relay.log"

    process = relay_process(settings, log)
    code = process.wait(timeout=60)

    output = log.read_text()
    assert code == 4
    assert f"cannot reach Kafka at {nowhere} after 2 attempts" in output
    assert "ESCALATIONS_KAFKA_BOOTSTRAP_SERVERS" in output
    assert "Traceback" not in output


def test_the_checkpoint_lives_in_the_event_store_database(kafka_settings: Settings, clock: SteppingClock) -> None:
    service = build_service(kafka_settings, clock=clock)
    record_escalations(service, 2, clock)
    prepare_topics(kafka_settings)

    publish_until_caught_up(kafka_settings, service)

    engine = sa.create_engine(kafka_settings.event_store_url)
    with engine.connect() as conn:
        position = conn.execute(sa.text("select position from relay_checkpoints")).scalar()
    assert position == service.recorder.max_notification_id()


def test_a_standby_relay_takes_over_when_the_first_stops(kafka_settings: Settings, clock: SteppingClock) -> None:
    service = build_service(kafka_settings, clock=clock)
    prepare_topics(kafka_settings)
    first, second = build_relay(kafka_settings, service), build_relay(kafka_settings, service)
    first_runner = threading.Thread(target=first.run, args=(RelayLock(kafka_settings.event_store_url),), daemon=True)
    first_runner.start()
    record_escalations(service, 2, clock)
    wait_for(lambda: first.published == 10, what="the first relay to publish")
    second_runner = threading.Thread(
        target=second.run,
        args=(RelayLock(kafka_settings.event_store_url),),
        kwargs={"standby": True},
        daemon=True,
    )
    second_runner.start()

    with pytest.raises(RelayLockedError):
        build_relay(kafka_settings, service).run(RelayLock(kafka_settings.event_store_url))
    first.stop()
    first_runner.join(timeout=30)
    record_escalations(service, 2, clock)
    wait_for(lambda: second.published == 10, what="the standby to take over")
    second.stop()
    second_runner.join(timeout=30)

    records = read_topic(kafka_settings.kafka_bootstrap_servers or "", kafka_settings.events_topic, expect_at_least=20)
    assert len(records) == 20
