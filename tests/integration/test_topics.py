"""Topics are created idempotently; one that exists with the wrong settings is reported clearly."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from infra.bootstrap import prepare_topics
from infra.messaging.topics import TopicMismatchError
from infra.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(tmp_path, request) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(data_dir=tmp_path)


def test_topics_are_created_once_with_unlimited_retention(kafka_settings: Settings) -> None:
    bootstrap = kafka_settings.kafka_bootstrap_servers or ""

    prepare_topics(kafka_settings)
    prepare_topics(kafka_settings)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert {kafka_settings.events_topic, kafka_settings.dead_letter_topic} <= set(admin.list_topics())
        described = admin.describe_topics([kafka_settings.events_topic])
        assert len(described[0]["partitions"]) == kafka_settings.topic_partitions
    finally:
        admin.close()


def test_a_topic_with_history_and_the_wrong_partition_count_is_reported(kafka_settings: Settings) -> None:
    bootstrap = kafka_settings.kafka_bootstrap_servers or ""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(kafka_settings.events_topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(kafka_settings.events_topic, b"someone's history").get(timeout=10)
    producer.close()

    with pytest.raises(TopicMismatchError, match="has 1 partitions but the settings ask for 3"):
        prepare_topics(kafka_settings)


def test_an_empty_topic_a_broker_made_with_its_defaults_is_made_again_properly(
    kafka_settings: Settings,
) -> None:
    bootstrap = kafka_settings.kafka_bootstrap_servers or ""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(kafka_settings.events_topic, 1, 1)])

    prepare_topics(kafka_settings)

    assert len(admin.describe_topics([kafka_settings.events_topic])[0]["partitions"]) == 3
    admin.close()


def test_a_topic_that_deletes_history_is_reported(kafka_settings: Settings) -> None:
    bootstrap = kafka_settings.kafka_bootstrap_servers or ""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(kafka_settings.events_topic, 3, 1, topic_configs={"retention.ms": "3600000"})])
    admin.close()

    with pytest.raises(TopicMismatchError, match=r"retention\.ms=3600000, but it must keep its whole history"):
        prepare_topics(kafka_settings)
