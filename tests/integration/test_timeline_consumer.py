"""The timeline consumer on real Kafka, and `escalations audit` against what it stored."""

from __future__ import annotations

import random
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.offsets import StoredOffsets
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.timeline import GROUP as TIMELINE_GROUP
from domain import commands as c
from infra.bootstrap import build_service, build_timeline_consumer, prepare_topics, read_model_engine
from infra.local.ports import free_port
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.notify.subscriptions import add_subscription
from infra.settings import Settings
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up
from tests.support.processes import escalations_cli, escalations_process
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_the_stored_timelines_verify_and_a_tampered_entry_is_named(
    kafka_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(kafka_settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    other = quiet_escalation(service, clock.now - timedelta(days=2), customer="Initech", region="AMER", lead="ana")
    prepare_topics(kafka_settings)
    total = publish_until_caught_up(kafka_settings, service)
    engine = sa.create_engine(kafka_settings.read_model)
    runner = build_timeline_consumer(kafka_settings, engine)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: runner.stats.applied >= total, what=f"the timeline consumer to apply {total} events")
    finally:
        runner.stop()
        thread.join(timeout=30)

    verified = escalations_cli(kafka_settings, "audit", "verify")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update timeline_entries set summary = 'nothing happened' where escalation_id = :e and version = 12"
            ),
            {"e": str(story)},
        )
    tampered = escalations_cli(kafka_settings, "audit", "verify")
    only_other = escalations_cli(kafka_settings, "audit", "verify", str(other))
    # The hash columns alone: every other column of these entries still matches history.
    with engine.begin() as conn:
        conn.execute(
            sa.text("update timeline_entries set hash = :h where escalation_id = :e and version = 3"),
            {"e": str(other), "h": "f" * 64},
        )
    hash_tampered = escalations_cli(kafka_settings, "audit", "verify", str(other))
    with engine.begin() as conn:  # an earlier entry, so it is the first difference
        conn.execute(
            sa.text("update timeline_entries set prev_hash = :h where escalation_id = :e and version = 2"),
            {"e": str(other), "h": "0" * 64},
        )
    previous_hash_tampered = escalations_cli(kafka_settings, "audit", "verify", str(other))

    assert runner.stats.applied == total == 29
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Every stored timeline matches the event store and the topic" in verified.stdout
    assert tampered.returncode == 6
    assert f"escalation {story}" in tampered.stdout
    assert "entry v12 (EscalatedToSpecialistTeam) differs from history in summary" in tampered.stdout
    assert "(against the event store)" in tampered.stdout
    assert "(against the topic)" in tampered.stdout
    assert only_other.returncode == 0
    assert hash_tampered.returncode == 6
    assert "entry v3 (LeadEngineerAssigned) differs from history in hash;" in hash_tampered.stdout
    assert previous_hash_tampered.returncode == 6
    assert "entry v2 (PreparationCompleted) differs from history in prev_hash;" in previous_hash_tampered.stdout


def test_as_of_shows_the_escalation_as_it_was(kafka_settings: Settings, clock: SteppingClock) -> None:
    service = build_service(kafka_settings, clock=clock)
    escalation = quiet_escalation(service, clock.now - timedelta(days=1), customer="Initech", region="AMER", lead="ana")
    before = clock.now
    clock.advance(hours=2)
    service.handle(
        c.MarkStalled(escalation_id=escalation, reason="no progress", noticed_by="sam.manager"), actor="sam.manager"
    )

    then = escalations_cli(kafka_settings, "audit", "as-of", str(escalation), before.isoformat())
    now = escalations_cli(kafka_settings, "audit", "as-of", str(escalation), clock.now.isoformat())
    too_early = escalations_cli(kafka_settings, "audit", "as-of", str(escalation), "2020-01-01T00:00:00+00:00")

    assert then.returncode == 0, then.stderr
    assert "active" in then.stdout
    assert "(stalled)" not in then.stdout
    assert "(stalled)" in now.stdout
    assert too_early.returncode == 3
    assert "was not yet recorded" in too_early.stdout


def test_audit_rebuild_finds_the_live_read_models_equal_after_consumers_crashed(
    kafka_settings: Settings, clock: SteppingClock, tmp_path: Path
) -> None:
    # A year ahead, no deadline is due yet: the watcher schedules them all and fires none.
    clock.now = datetime.now(UTC) + timedelta(days=365)
    service = build_service(kafka_settings, clock=clock)
    prepare_topics(kafka_settings)
    # A short poll interval: a restarted member waits at most that long for the killed one to leave.
    settings = kafka_settings.but(consumer_max_records=40, consumer_max_poll_interval_ms=5000, notify_max_attempts=1)
    engine = read_model_engine(settings)  # before four processes race to create it (create_all is not atomic)
    # Nothing listens there: the delivery loop's attempts change only the log's delivery-time state.
    hook = f"http://127.0.0.1:{free_port()}/hook"
    add_subscription(engine, hook, datetime.now(UTC), "sam.manager", event_types=["EscalationOpened"])
    log = tmp_path / "consumers.log"
    rng = random.Random(11)
    for round_number in range(3):
        for i in range(60):
            n = round_number * 60 + i
            quiet_escalation(service, clock.now - timedelta(days=2), customer=f"C{n}", region="EMEA", lead=f"l{n % 4}")
        written = publish_until_caught_up(settings, service) + round_number * 300
        # Each killed at a random batch of this round: inside its transaction, or just after its commit.
        point = ("consumer.after_apply_before_commit", "consumer.between_batches")[round_number % 2]
        for name in ("reporting", "timeline"):
            faulty = settings.but(fault_point=point, fault_after=rng.randint(2, 7))
            consumer = escalations_process(faulty, log, "consume", name)
            assert consumer.wait(timeout=120) == -signal.SIGKILL, log.read_text()
        for group in (REPORTING_GROUP, TIMELINE_GROUP):
            assert sum(StoredOffsets(engine, group).load(settings.events_topic).values()) < written
    assert log.read_text().count("fault: killing process") == 6
    finals = [
        escalations_process(settings, log, "consume", name) for name in ("reporting", "timeline", "watcher", "notifier")
    ]
    caught_up = {
        "select count(*) from escalations where version = 5": 180,
        "select count(*) from timeline_entries": 900,
        "select count(*) from watcher_schedules where version = 5": 180,
        "select count(*) from notify_context where version = 5": 180,
        "select count(*) from notify_deliveries where state = 'dead'": 180,
    }
    try:
        wait_for(
            lambda: {query: count_of(engine, query) for query in caught_up} == caught_up,
            what=f"the four restarted consumers to apply all 900 events ({log})",
            timeout=180,
        )
    finally:
        for final in finals:
            final.send_signal(signal.SIGTERM)
            final.wait(timeout=30)

    equal = escalations_cli(settings, "audit", "rebuild")
    with engine.begin() as conn:
        first = {"e": conn.execute(sa.text("select min(escalation_id) from watcher_deadlines")).scalar()}
        conn.execute(sa.text("update escalations set customer = 'Someone else' where customer = 'C7'"))
        conn.execute(sa.text("update watcher_deadlines set due_at = '2000-01-01' where escalation_id = :e"), first)
        conn.execute(sa.text("delete from notify_deliveries where escalation_id = :e"), first)
    differs = escalations_cli(settings, "audit", "rebuild")

    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert "False" not in equal.stdout
    for table in ("watcher_schedules", "watcher_deadlines", "notify_context", "notify_deliveries"):
        assert table in equal.stdout
    assert differs.returncode == 6
    assert "The live read models differ from history" in differs.stdout
    unequal = {line.split()[1] for line in differs.stdout.splitlines() if "False" in line}
    assert unequal == {"escalations", "watcher_deadlines", "notify_deliveries"}, differs.stdout


def count_of(engine: sa.Engine, query: str) -> int | None:
    """The count, or None while no consumer has created its table yet (a killed one may never have)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    except sa.exc.DBAPIError:
        return None
