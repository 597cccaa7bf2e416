"""Our settings in librdkafka's words: the same producer and consumer as kafka-python's, and no secret shown."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumers.log_client import LogClientError
from infra import messaging
from infra.bootstrap import KafkaClientMissingError, check_kafka_client, log_consumer, log_producer
from infra.messaging import clients, confluent_client
from infra.messaging.confluent_client import ClientConfigError, ConfluentConsumer, ConfluentProducer, redacted
from infra.settings import Settings

PASSWORD = "pa55-w0rd-never-shown"  # noqa: S105 - a test secret, to look for where it must not be


def secured(**changes: object) -> Settings:
    return Settings(
        kafka_client="confluent-kafka",
        kafka_bootstrap_servers="127.0.0.1:1,127.0.0.1:2",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ledger",
        kafka_sasl_password=SecretStr(PASSWORD),
        kafka_ssl_cafile=Path("/etc/kafka/ca.pem"),
        kafka_ssl_certfile=Path("/etc/kafka/client.pem"),
        kafka_ssl_keyfile=Path("/etc/kafka/client.key"),
        kafka_name_prefix="prod.",
        kafka_bootstrap_timeout_ms=1_000,  # nothing listens there: give up on reaching it soon
        relay_linger_ms=7,
    ).but(**changes)


def test_tls_and_sasl_settings_become_librdkafkas_keys() -> None:
    config = confluent_client.connection_config(secured())

    assert config["bootstrap.servers"] == "127.0.0.1:1,127.0.0.1:2"
    assert config["security.protocol"] == "sasl_ssl"
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        "SCRAM-SHA-512",
        "ledger",
        PASSWORD,
    )
    assert config["ssl.ca.location"] == "/etc/kafka/ca.pem"
    assert config["ssl.certificate.location"] == "/etc/kafka/client.pem"
    assert config["ssl.key.location"] == "/etc/kafka/client.key"
    assert config["client.id"] == secured().client_id


def test_the_producer_is_the_same_on_both_clients_and_hashes_keys_like_kafka_python() -> None:
    settings = secured()

    ours, theirs = confluent_client.producer_config(settings), clients.producer_config(settings)

    assert (ours["acks"], ours["enable.idempotence"]) == (theirs["acks"], theirs["enable_idempotence"]) == ("all", True)
    assert ours["linger.ms"] == theirs["linger_ms"] == 7
    assert ours["batch.size"] == theirs["batch_size"]
    assert ours["max.in.flight.requests.per.connection"] == theirs["max_in_flight_requests_per_connection"]
    assert ours["delivery.timeout.ms"] == theirs["delivery_timeout_ms"]
    assert ours["allow.auto.create.topics"] is theirs["allow_auto_create_topics"] is False
    # librdkafka's default (CRC32) would put an escalation's events on another partition than kafka-python did.
    assert ours["partitioner"] == "murmur2_random"


def test_consumers_store_no_offsets_in_kafka_and_a_reader_never_joins_a_real_group() -> None:
    settings = secured(consumer_max_poll_interval_ms=5_000, consumer_session_timeout_ms=6_000)

    member = confluent_client.consumer_config(settings, "reporting")
    reader = confluent_client.consumer_config(settings, None)

    assert member["group.id"] == "prod.reporting"
    assert (member["enable.auto.commit"], member["enable.auto.offset.store"]) == (False, False)
    assert member["auto.offset.reset"] == "earliest"
    assert member["max.poll.interval.ms"] == 6_000  # librdkafka refuses one below the session timeout
    assert reader["group.id"] == f"{settings.client_id}.reader"


def test_no_secret_in_a_clients_repr_its_loggable_config_or_its_errors(caplog: pytest.LogCaptureFixture) -> None:
    settings = secured(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN")
    caplog.set_level(logging.DEBUG)

    consumer = ConfluentConsumer(confluent_client.consumer_config(settings, "reporting"))
    with pytest.raises(LogClientError) as unreachable:
        ConfluentProducer(confluent_client.producer_config(settings))
    with pytest.raises(ClientConfigError) as refused:
        ConfluentProducer(confluent_client.producer_config(settings) | {"sasl.mechanism": PASSWORD})
    shown = [repr(consumer), repr(redacted(confluent_client.producer_config(settings)))]
    consumer.close()

    assert "no answer from 127.0.0.1:1,127.0.0.1:2" in str(unreachable.value)
    assert "Unsupported SASL mechanism" in str(refused.value)  # librdkafka echoes the value: scrubbed
    assert all(PASSWORD not in text for text in [*shown, str(unreachable.value), str(refused.value), caplog.text])


def test_the_setting_picks_confluent_kafka_for_producers_and_consumers() -> None:
    settings = secured(kafka_security_protocol="PLAINTEXT", kafka_sasl_mechanism=None)

    consumer = log_consumer(settings, None)
    with pytest.raises(LogClientError, match="no answer from"):
        log_producer(settings)  # librdkafka's producer: it asks the (absent) cluster before it is handed out

    assert isinstance(consumer, ConfluentConsumer)
    consumer.close()


def test_choosing_confluent_kafka_without_it_installed_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # an import of it now fails, as if not installed
    monkeypatch.delitem(sys.modules, "infra.messaging.confluent_client")
    monkeypatch.delattr(messaging, "confluent_client")

    with pytest.raises(KafkaClientMissingError, match=r"pip install 'escalation-ledger\[confluent\]'"):
        check_kafka_client(secured())
    check_kafka_client(secured(kafka_client="kafka-python"))  # the default needs nothing more
