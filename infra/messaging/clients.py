"""kafka-python client settings from our Settings: bootstrap servers, TLS and SASL passed through."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.net.compat import KafkaNetClient

from infra.settings import Settings


def connection_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
        "bootstrap_timeout_ms": settings.kafka_bootstrap_timeout_ms,
        "client_id": settings.client_id,
        # After a leader change the client must learn the new leader; never trust metadata older than 5 s.
        "metadata_max_age_ms": 5_000,
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


class KafkaLoginError(RuntimeError):
    """The cluster refused our credentials: retrying cannot help, so it is not a KafkaError."""


def check_login(settings: Settings) -> None:
    """With SASL configured, reach the cluster once and turn a refused login into a `KafkaLoginError`.

    kafka-python treats a refused login like an unreachable broker (the broker closes the
    connection, the client retries until its bootstrap timeout and says "Unable to bootstrap").
    When that happens although the broker accepts our TCP connection and TLS handshake, the login
    is what failed: say so, once, instead of retrying what cannot succeed. Other failures are left
    to the caller's retries.
    """
    if not settings.kafka_security_protocol.startswith("SASL"):
        return
    clients: list[KafkaNetClient] = []

    def recording_client(**configs: Any) -> KafkaNetClient:
        client = KafkaNetClient(**configs)
        clients.append(client)
        return client

    try:
        KafkaAdminClient(**connection_config(settings), kafka_client=recording_client).close()
    except KafkaError as error:
        for client in clients:
            client.close()
        reachable = [server for server in settings.bootstrap_servers.split(",") if _transport_works(settings, server)]
        if reachable:
            msg = (
                f"Kafka at {reachable[0]} accepts our connection{' and TLS' if _uses_tls(settings) else ''} but "
                f"refused the {settings.kafka_sasl_mechanism} login of user {settings.kafka_sasl_username!r} "
                f"({type(error).__name__}); check ESCALATIONS_KAFKA_SASL_USERNAME, ESCALATIONS_KAFKA_SASL_PASSWORD "
                "and that the user has a credential for that mechanism"
            )
            raise KafkaLoginError(msg) from None


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in {"SSL", "SASL_SSL"}


def _transport_works(settings: Settings, server: str) -> bool:
    """True when TCP (and, with TLS, the handshake against our CA) succeeds: the broker itself is fine."""
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as sock:
            if not _uses_tls(settings):
                return True
            context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile or "") or None)
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ValueError):
        return False
