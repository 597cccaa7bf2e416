"""Faults on a three-broker cluster under steady load through two API instances, with many consumers.

One scenario, so the cluster, PostgreSQL and a dozen processes start once: two `serve` instances
(each an API, a relay that waits for the lock, a reporting, a notifier and a watcher consumer), one
more reporting, notifier and watcher consumer and three timeline consumers, all on one PostgreSQL event store and
one PostgreSQL read-model database. Under load it SIGKILLs a partition leader broker, later the
active controller (each restarted before the next fault), then one instance of each kind. The
pauses and recovery times go to test-artefacts/cluster-figures.json and are printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from consumers.notifier import GROUP as NOTIFIER_GROUP
from consumers.offsets import StoredOffsets
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.timeline import GROUP as TIMELINE_GROUP
from consumers.watcher import GROUP as WATCHER_GROUP
from infra.bootstrap import build_service, prepare_topics, read_model_engine
from infra.local.cluster import KafkaCluster
from infra.local.ports import free_port, wait_until
from infra.local.postgres import PostgresAddress, PrivatePostgres
from infra.messaging.relay_state import Checkpoint
from infra.settings import Settings
from tests.conftest import postgres_settings
from tests.support.processes import escalations_process
from tests.support.topic_reader import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.cluster, pytest.mark.timeout(900)]

TOKEN = "cluster-test-token"  # noqa: S105 - a test's own bearer token
ARTEFACT = Path(os.environ.get("TEST_ARTEFACTS", "test-artefacts")) / "cluster-figures.json"


@dataclass
class Load:
    """Opens escalations through whichever API instances are alive, a few per second."""

    apis: list[str]
    opened: list[str] = field(default_factory=list)
    failures: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            while not self.stopping.is_set():
                api = self.apis[n % len(self.apis)]
                n += 1
                try:
                    answer = client.post(f"{api}/escalations", json=_opening(n))
                except httpx.TransportError:
                    self.failures += 1  # that instance is down: the next request goes to another
                    continue
                if answer.status_code == 201:
                    self.opened.append(answer.json()["escalation_id"])
                else:
                    self.failures += 1
                self.stopping.wait(0.2)


@dataclass
class Publishing:
    """Samples (time, recorded up to, published up to) every 0.1 s, independent of Kafka."""

    settings: Settings
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        service = build_service(self.settings)
        checkpoint = Checkpoint(sa.create_engine(self.settings.event_store_url), relay=self.settings.events_topic)
        try:
            while not self.stopping.is_set():
                recorded = service.recorder.max_notification_id() or 0
                self.samples.append((time.monotonic(), recorded, checkpoint.position()))
                self.stopping.wait(0.1)
        finally:
            service.close()

    def published(self) -> int:
        return self.samples[-1][2] if self.samples else 0

    def recorded(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def pause_after(self, moment: float) -> float:
        """The longest time after `moment` that events waited while the published position stood still."""
        longest, still_since, last = 0.0, None, None
        for at, recorded, published in self.samples:
            if at < moment - 0.5:
                last = published
                continue
            if published == last and recorded > published:
                still_since = still_since if still_since is not None else at
                longest = max(longest, at - still_since)
            else:
                still_since = None
            last = published
        return round(longest, 2)


def _opening(n: int) -> dict[str, Any]:
    return {
        "customer": f"Customer {n}",
        "region": ["AMER", "EMEA", "APAC"][n % 3],
        "account_owner": "dana.owner",
        "dri_manager": "mia.manager",
        "source": "customer_success",
        "severity": "high",
        "summary": "steady load",
    }


@pytest.fixture
def read_model_db(postgres_cluster: PrivatePostgres | PostgresAddress) -> PostgresAddress:
    if isinstance(postgres_cluster, PostgresAddress):
        pytest.skip("needs the private PostgreSQL cluster to create a read-model database")
    return postgres_cluster.create_database(f"rm_{uuid4().hex[:10]}")


def test_broker_faults_and_instance_kills_under_load_lose_nothing_and_are_measured(  # noqa: PLR0912, PLR0915 - one scenario
    kafka_cluster: KafkaCluster, postgres_db: PostgresAddress, read_model_db: PostgresAddress, tmp_path: Path
) -> None:
    name = f"f{uuid4().hex[:10]}"
    settings = postgres_settings(
        postgres_db,
        kafka_bootstrap_servers=kafka_cluster.bootstrap_servers,
        events_topic=f"{name}.events",
        dead_letter_topic=f"{name}.dlq",
        topic_partitions=3,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        read_model_url=read_model_db.url,
        api_tokens={TOKEN: "manager:mia.manager"},
        consumer_max_records=100,
    )
    prepare_topics(settings)
    engine = read_model_engine(settings)
    ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
    log = ARTEFACT.parent / "cluster-parts.log"  # kept for a failed run in CI
    log.unlink(missing_ok=True)
    ports = [free_port(), free_port()]
    apis = [f"http://127.0.0.1:{port}" for port in ports]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    # api0 starts first and takes the relay lock; api1's relay waits as the standby.
    processes["api0"] = escalations_process(settings, log, "serve", "--port", str(ports[0]))
    wait_until(lambda: '"relay.started"' in log.read_text(), timeout=120, what="api0's relay to take the lock")
    processes["api1"] = escalations_process(settings, log, "serve", "--port", str(ports[1]))
    processes["reporting2"] = escalations_process(settings, log, "consume", "reporting")
    processes["notifier2"] = escalations_process(settings, log, "consume", "notifier")
    processes["watcher2"] = escalations_process(settings, log, "watch")
    for i in range(3):
        processes[f"timeline{i}"] = escalations_process(settings, log, "consume", "timeline")
    load, publishing = Load(apis), Publishing(settings)
    threads = [threading.Thread(target=load.run, daemon=True), threading.Thread(target=publishing.run, daemon=True)]
    figures: dict[str, Any] = {"cluster_started_in_s": round(kafka_cluster.started_in or 0, 1)}
    try:
        for api in apis:
            wait_until(lambda a=api: _ready(a), timeout=120, what=f"{api}/readyz", interval=0.5)  # type: ignore[misc]
        for thread in threads:
            thread.start()
        wait_until(lambda: publishing.published() >= 30, timeout=60, what="the first 30 events published", interval=0.2)

        # 1. A partition leader (not the active controller) dies: a new leader from the ISR takes over.
        controller = kafka_cluster.active_controller()
        leaders = kafka_cluster.partition_leaders(settings.events_topic)
        victim = next((b for b in leaders.values() if b != controller), leaders[0])
        figures["leader_kill"] = _broker_fault(kafka_cluster, victim, publishing, apis[0], settings)
        _record(figures)

        # 2. The active controller dies: the quorum elects another within its election timeout.
        controller = kafka_cluster.active_controller()
        figures["controller_kill"] = _broker_fault(kafka_cluster, controller, publishing, apis[0], settings)
        figures["controller_kill"]["new_controller"] = kafka_cluster.active_controller()
        _record(figures)

        # 3. The API instance whose relay holds the lock dies: the other's standby relay takes over.
        killed_at = _kill(processes, "api0")
        load.apis = [apis[1]]
        recorded = publishing.recorded()
        wait_until(
            lambda: publishing.published() >= recorded, timeout=90, what="standby relay publishing", interval=0.2
        )
        figures["api_and_relay_kill"] = {
            "publishing_pause_s": publishing.pause_after(killed_at),
            "caught_up_after_s": round(time.monotonic() - killed_at, 2),
        }
        _record(figures)

        # 4. One consumer of each kind dies; the others take over its partitions.
        for part, group in (
            ("reporting2", REPORTING_GROUP),
            ("timeline0", TIMELINE_GROUP),
            ("notifier2", NOTIFIER_GROUP),
            ("watcher2", WATCHER_GROUP),
        ):
            killed_at = _kill(processes, part)
            target = _end_offsets(settings)
            wait_until(
                lambda g=group, t=target: _consumed(engine, g, settings.events_topic, t),  # type: ignore[misc]
                timeout=120,
                what=f"{group} to consume what was on the topic when {part} was killed",
                interval=0.3,
            )
            figures[f"{part.rstrip('0123456789')}_consumer_kill"] = {
                "caught_up_after_s": round(time.monotonic() - killed_at, 2)
            }
            _record(figures)
    finally:
        load.stopping.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=15)
        publishing.stopping.set()

    try:
        recorded_positions = _event_positions(settings)
        total = len(recorded_positions)
        wait_until(
            lambda: publishing_done(settings) >= max(recorded_positions),
            timeout=90,
            what=f"all {total} events published",
        )
        ends = _end_offsets(settings)
        for group in (REPORTING_GROUP, TIMELINE_GROUP, NOTIFIER_GROUP, WATCHER_GROUP):
            wait_until(
                lambda g=group: _consumed(engine, g, settings.events_topic, ends),  # type: ignore[misc]
                timeout=120,
                what=f"{group} to consume all {total} events",
                interval=0.5,
            )
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    audit = subprocess.run(
        [sys.executable, "-m", "infra", "audit", "rebuild"],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    figures |= {"events": total, "opened_through_api": len(load.opened), "failed_requests": load.failures}
    _record(figures)
    print(f"\ncluster figures: {json.dumps(figures)}")

    positions = {
        int(r.headers["ce_position"]) for r in read_topic(kafka_cluster.bootstrap_servers, settings.events_topic)
    }
    assert positions == recorded_positions, "an event recorded in the store is missing on the topic"
    with engine.connect() as conn:
        reported = set(conn.execute(sa.text("select escalation_id from escalations")).scalars())
    assert set(load.opened) <= reported, "an escalation the API accepted is missing from the read model"
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "False" not in audit.stdout


def _record(figures: dict[str, Any]) -> None:
    """After every phase, so a failed run still leaves what it measured."""
    ARTEFACT.write_text(json.dumps(figures, indent=2) + "\n")


def _event_positions(settings: Settings) -> set[int]:
    """Every escalation event's position in the store (other records share the notification log)."""
    service = build_service(settings)
    try:
        found = service.recorder.select_notifications(start=0, limit=1_000_000, topics=service.event_topics())
        return {n.id for n in found}
    finally:
        service.close()


def publishing_done(settings: Settings) -> int:
    return Checkpoint(sa.create_engine(settings.event_store_url), relay=settings.events_topic).position()


def _broker_fault(
    cluster: KafkaCluster, node_id: int, publishing: Publishing, api: str, settings: Settings
) -> dict[str, Any]:
    killed_at = time.monotonic()
    recorded = publishing.recorded()
    cluster.kill_node(node_id)
    wait_until(lambda: "kafka_replication" in _degraded(api), timeout=60, what="/readyz to report the degraded cluster")
    reported_after = time.monotonic() - killed_at
    wait_until(lambda: publishing.published() >= recorded, timeout=90, what="publishing past the fault", interval=0.2)
    caught_up_after = time.monotonic() - killed_at
    time.sleep(2)  # publishing goes on with one broker down: measured, not assumed
    still_published = publishing.published() > recorded
    cluster.restart_node(node_id)
    wait_until(
        lambda: all(len(isr) == 3 for isr in cluster.in_sync_replicas(settings.events_topic).values()),
        timeout=120,
        what=f"node {node_id} back in sync",
        interval=0.5,
    )
    wait_until(lambda: not _degraded(api), timeout=30, what="/readyz to report the cluster whole again")
    return {
        "node": node_id,
        "publishing_pause_s": publishing.pause_after(killed_at),
        "backlog_published_after_s": round(caught_up_after, 2),
        "readiness_reported_degraded_after_s": round(reported_after, 2),
        "published_while_degraded": still_published,
        "back_in_sync_after_s": round(time.monotonic() - killed_at, 2),
    }


def _kill(processes: dict[str, subprocess.Popen[bytes]], name: str) -> float:
    processes[name].send_signal(signal.SIGKILL)
    processes[name].wait()
    return time.monotonic()


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/readyz", timeout=3).status_code == 200
    except httpx.TransportError:
        return False


def _degraded(api: str) -> list[str]:
    try:
        body = httpx.get(f"{api}/readyz", timeout=3).json()
    except (httpx.TransportError, ValueError):
        return []
    return list(body.get("degraded", []))


def _end_offsets(settings: Settings) -> dict[int, int]:
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)]
        return {tp.partition: end for tp, end in reader.end_offsets(partitions).items()}
    finally:
        reader.close()


def _consumed(engine: sa.Engine, group: str, topic: str, ends: dict[int, int]) -> bool:
    """True when the group's offsets, stored beside its read model, reached these end offsets."""
    stored = StoredOffsets(engine, group).load(topic)
    return all(stored.get(partition, 0) >= end for partition, end in ends.items())
