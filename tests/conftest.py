"""Fixtures shared by every tier: the clock, the stores, and the real services the suite starts.

Real services start lazily, once per session, and only when a test asks for them; set
ESCALATIONS_TEST_POSTGRES_URL (postgresql://user:pass@host:port/db) to use a running PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse
from uuid import uuid4

import pytest
from hypothesis import Phase, settings

from domain.service import EscalationService
from infra.bootstrap import build_service
from infra.local.brokers import ApacheKafka
from infra.local.cluster import KafkaCluster
from infra.local.postgres import PostgresAddress, PrivatePostgres
from infra.settings import Settings
from tests.fakes import SteppingClock

# `make mutation` only needs to know that a property fails, not its smallest example: shrinking a
# failure of the state machine takes minutes per mutant.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def memory_service(clock: SteppingClock) -> EscalationService:
    return EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PrivatePostgres | PostgresAddress]:
    url = os.environ.get("ESCALATIONS_TEST_POSTGRES_URL")
    if url:
        parsed = urlparse(url)
        yield PostgresAddress(
            parsed.hostname or "127.0.0.1",
            parsed.port or 5432,
            parsed.username or "postgres",
            parsed.password or "",
            parsed.path.lstrip("/") or "postgres",
        )
        return
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_db(postgres_cluster: PrivatePostgres | PostgresAddress) -> PostgresAddress:
    """A fresh database per test, so tests never see each other's events."""
    if isinstance(postgres_cluster, PostgresAddress):
        return postgres_cluster
    return postgres_cluster.create_database(f"t_{uuid4().hex[:12]}")


def postgres_settings(address: PostgresAddress, **overrides: object) -> Settings:
    return Settings(
        event_store="postgres",
        postgres_host=address.host,
        postgres_port=address.port,
        postgres_user=address.user,
        postgres_password=address.password,  # type: ignore[arg-type]
        postgres_dbname=address.dbname,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an event store of each kind: the suite runs the application on both."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path)
    return postgres_settings(request.getfixturevalue("postgres_db"))


@pytest.fixture
def make_service(store_settings: Settings, clock: SteppingClock) -> Callable[..., EscalationService]:
    """Builds services on the same store, as separate processes would."""
    built: list[EscalationService] = []

    def make(settings: Settings | None = None) -> EscalationService:
        service = build_service(settings or store_settings, clock=clock)
        built.append(service)
        return service

    yield make  # type: ignore[misc]
    for service in built:
        service.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Real Apache Kafka: KAFKA_BOOTSTRAP_SERVERS if set, else a KRaft broker from the Maven jars."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    with ApacheKafka() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def kafka_client(request: pytest.FixtureRequest) -> str:
    """The default client, or each of `tests.support.kafka_clients.both_clients` for a test marked with it."""
    return str(getattr(request, "param", "kafka-python"))


@pytest.fixture
def kafka_settings(store_settings: Settings, kafka_bootstrap: str, kafka_client: str) -> Settings:
    """Store settings plus a Kafka cluster and topics of this test's own."""
    name = f"t{uuid4().hex[:10]}"
    return store_settings.but(
        kafka_client=kafka_client,
        kafka_bootstrap_servers=kafka_bootstrap,
        events_topic=f"{name}.events",
        dead_letter_topic=f"{name}.dlq",
        topic_partitions=3,
        relay_verify_interval=0.5,
    )


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """Three KRaft brokers with PLAINTEXT and SASL_SSL listeners, started once for the `cluster` tests."""
    with KafkaCluster() as cluster:
        yield cluster
