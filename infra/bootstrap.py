"""The composition root: builds the application and its adapters from one Settings object."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from domain.service import Clock, EscalationService
from infra.brokers import TansuBroker
from infra.kafka_clients import connection_config, producer_config
from infra.relay import Relay, RelayOptions
from infra.relay_state import Checkpoint
from infra.settings import Settings
from infra.topics import LOG_CONFIG, TopicSpec, ensure_topics


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_service(settings: Settings, clock: Clock = utc_now) -> EscalationService:
    if settings.event_store == "sqlite":
        settings.event_store_path.parent.mkdir(parents=True, exist_ok=True)
    return EscalationService(
        settings.event_store_env(), clock=clock, channel_template=settings.channel_template
    )


@contextmanager
def kafka_cluster(settings: Settings) -> Iterator[str]:
    """The configured cluster's bootstrap servers, or an embedded Tansu broker for as long as needed."""
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    with TansuBroker() as broker:
        yield broker.bootstrap_servers


def prepare_topics(settings: Settings, bootstrap_servers: str) -> None:
    admin = KafkaAdminClient(**connection_config(settings, bootstrap_servers), request_timeout_ms=10_000)
    try:
        ensure_topics(
            admin,
            [
                TopicSpec(
                    settings.events_topic,
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    LOG_CONFIG,
                ),
                TopicSpec(settings.dead_letter_topic, 1, settings.topic_replication_factor, LOG_CONFIG),
            ],
            # The embedded broker keeps no topic configs, so there is nothing to check there.
            check_configs=settings.kafka_bootstrap_servers is not None,
        )
    finally:
        admin.close()


def build_relay(settings: Settings, service: EscalationService, bootstrap_servers: str) -> Relay:
    engine = sa.create_engine(settings.event_store_url)
    return Relay(
        recorder=service.recorder,
        mapper=service.mapper,
        event_topics=service.event_topics(),
        checkpoint=Checkpoint(engine, relay=settings.events_topic),
        options=RelayOptions(
            topic=settings.events_topic,
            source=settings.event_source,
            bootstrap_servers=bootstrap_servers,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            verify_interval=settings.relay_verify_interval,
            connect_attempts=settings.kafka_connect_attempts,
        ),
        producer_factory=lambda: KafkaProducer(**producer_config(settings, bootstrap_servers)),
        consumer_factory=lambda: KafkaConsumer(**connection_config(settings, bootstrap_servers)),
        prepare_topics=lambda: prepare_topics(settings, bootstrap_servers),
    )
