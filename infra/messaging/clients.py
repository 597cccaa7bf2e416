"""kafka-python client settings from our Settings: bootstrap servers, TLS and SASL passed through."""

from __future__ import annotations

from typing import Any

from infra.settings import Settings


def connection_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
        "bootstrap_timeout_ms": settings.kafka_bootstrap_timeout_ms,
        "client_id": settings.client_id,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    for key, path in (
        ("ssl_cafile", settings.kafka_ssl_cafile),
        ("ssl_certfile", settings.kafka_ssl_certfile),
        ("ssl_keyfile", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    """The relay's producer: idempotent, acks from every in-sync replica, batched."""
    return connection_config(settings) | {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.relay_linger_ms,
        "batch_size": 256 * 1024,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "max_block_ms": 10_000,
        "reconnect_backoff_max_ms": 2_000,
        # Never let a metadata request create the topic with the broker's defaults: we create it.
        "allow_auto_create_topics": False,
    }
