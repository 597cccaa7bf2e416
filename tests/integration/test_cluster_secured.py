"""The three-broker cluster: topics at replication factor 3, a SASL_SSL listener, encrypted payloads."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from infra.bootstrap import build_service, prepare_topics, read_model_engine
from infra.local.cluster import KafkaCluster
from infra.local.ports import wait_until
from infra.local.stories import quiet_escalation
from infra.messaging import envelope
from infra.messaging.topics import TopicMismatchError
from infra.settings import Settings
from tests.fakes import SteppingClock
from tests.support.processes import escalations_process
from tests.support.topic_reader import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


def cluster_settings(cluster: KafkaCluster, tmp_path: Path, **changes: object) -> Settings:
    name = f"c{uuid4().hex[:10]}"
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        events_topic=f"{name}.events",
        dead_letter_topic=f"{name}.dlq",
        topic_partitions=3,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        **changes,  # type: ignore[arg-type]
    )


def secured(settings: Settings, cluster: KafkaCluster, password: str | None = None) -> Settings:
    assert cluster.tls is not None
    user = cluster.users[0]
    return settings.but(
        kafka_bootstrap_servers=cluster.sasl_bootstrap_servers,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=user.name,
        kafka_sasl_password=password or user.password,
        kafka_ssl_cafile=cluster.tls.ca_file,
    )


def test_the_events_topic_is_created_on_three_brokers_needing_two_in_sync(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    settings = cluster_settings(kafka_cluster, tmp_path)

    prepare_topics(settings)

    admin = KafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
    try:
        partitions = admin.describe_topics([settings.events_topic])[0]["partitions"]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.events_topic)])
    finally:
        admin.close()
    assert [len(p["replica_nodes"]) for p in partitions] == [3, 3, 3]
    assert configs["topic"][settings.events_topic]["min.insync.replicas"]["value"] == "2"


@pytest.mark.parametrize(
    ("replicas", "configs", "problem"),
    [
        (1, {"retention.ms": "-1"}, "has replication factor 1 but the settings ask for 3"),
        (
            3,
            {"retention.ms": "-1", "min.insync.replicas": "1"},
            "has min.insync.replicas=1, but the settings ask for 2",
        ),
    ],
)
def test_an_events_topic_with_weaker_replication_is_reported(
    kafka_cluster: KafkaCluster, tmp_path: Path, replicas: int, configs: dict[str, str], problem: str
) -> None:
    settings = cluster_settings(kafka_cluster, tmp_path)
    admin = KafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
    admin.create_topics([NewTopic(settings.events_topic, 3, replicas, topic_configs=configs)])
    admin.close()

    with pytest.raises(TopicMismatchError, match=problem):
        prepare_topics(settings)


def test_relay_and_consumer_use_the_sasl_ssl_listener_with_encrypted_payloads_and_log_no_secret(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = secured(
        cluster_settings(kafka_cluster, tmp_path, kafka_payload_key=key, kafka_payload_key_id="2026-11"),
        kafka_cluster,
    )
    clock = SteppingClock()
    service = build_service(settings, clock=clock)
    for n in range(20):
        quiet_escalation(
            service, clock.now - timedelta(days=2), customer=f"Secret Customer {n}", region="EMEA", lead="priya.lead"
        )
    log = tmp_path / "parts.log"
    parts = [
        escalations_process(settings, log, "relay"),
        escalations_process(settings, log, "consume", "reporting"),
    ]
    engine = read_model_engine(settings)
    try:
        wait_until(
            lambda: _count(engine, "select count(*) from escalations where version = 5") == 20,
            timeout=120,
            what="20 escalations in the reporting read model through SASL_SSL",
            interval=0.5,
        )
    finally:
        for part in parts:
            part.terminate()
            part.wait(timeout=30)

    records = read_topic(kafka_cluster.bootstrap_servers, settings.events_topic, expect_at_least=100)
    assert len(records) >= 100
    assert {r.headers["ce_dataencryption"] for r in records} == {b"A256GCM"}
    assert {r.headers["ce_datakeyid"] for r in records} == {b"2026-11"}
    assert all(r.headers["ce_type"].startswith(b"escalations.") for r in records)  # routable without the key
    assert not any(b"Secret Customer" in (r.value or b"") for r in records)
    with pytest.raises(envelope.EnvelopeError, match="has no payload key"):
        envelope.decode(list(records[0].headers.items()), records[0].value)
    logs = log.read_text() + "".join(node.log_file.read_text(errors="replace") for node in kafka_cluster.nodes)
    assert kafka_cluster.users[0].password not in logs
    assert key not in logs
    assert kafka_cluster.tls is not None
    assert kafka_cluster.tls.keystore_password not in logs


def test_a_wrong_password_fails_fast_with_a_clear_error_and_no_secret(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    wrong = f"not-{uuid4().hex}"
    settings = secured(cluster_settings(kafka_cluster, tmp_path), kafka_cluster, password=wrong)
    began = time.monotonic()

    result = subprocess.run(
        [sys.executable, "-m", "infra", "relay"],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    took = time.monotonic() - began
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "accepts our connection and TLS but refused the SCRAM-SHA-512 login of user 'ledger'" in output
    assert "ESCALATIONS_KAFKA_SASL_PASSWORD" in output
    assert wrong not in output
    assert took < settings.kafka_bootstrap_timeout_ms / 1000 + 15  # one bootstrap, not five retries


def _count(engine: sa.Engine, query: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar() or 0)
