"""Run a test once per Kafka client library: the relay and consumers must behave the same on both."""

from __future__ import annotations

import pytest

KAFKA_CLIENTS = ["kafka-python", "confluent-kafka"]

# Overrides the `kafka_client` fixture of tests/conftest.py, which `kafka_settings` reads.
both_clients = pytest.mark.parametrize("kafka_client", KAFKA_CLIENTS, indirect=True)
