"""Creates the event and dead-letter topics idempotently, and says clearly when one exists wrongly."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = structlog.get_logger(__name__)

# The event topic is a replayable log: keep every record forever.
LOG_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


class TopicMismatchError(RuntimeError):
    """A topic exists with settings that break our guarantees."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def ensure_topics(admin: KafkaAdminClient, specs: list[TopicSpec], *, check_configs: bool = True) -> None:
    """Create what is missing, then check what exists. `check_configs=False` for brokers that keep none."""
    existing = set(admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        new = [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs) for s in missing]
        # Another process may create it between our list and create; it is checked below either way.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(new)
        log.info("topics.created", topics=[s.name for s in missing])
    for spec in specs:
        _check_partitions(admin, spec)
        if check_configs:
            _check_configs(admin, spec)


def _check_partitions(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    described: list[dict[str, Any]] = admin.describe_topics([spec.name])
    partitions = len(described[0]["partitions"]) if described else 0
    if partitions != spec.partitions:
        msg = (
            f"topic {spec.name} has {partitions} partitions but the settings ask for {spec.partitions}; "
            f"set ESCALATIONS_TOPIC_PARTITIONS={partitions} to use it as it is, or use a new topic name "
            f"(changing the partition count would reorder events of one escalation)"
        )
        raise TopicMismatchError(msg)


def _check_configs(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name)])
    actual = _config_values(response, spec.name)
    wrong = {key: actual.get(key) for key, value in spec.configs.items() if actual.get(key) != value}
    if wrong:
        found = ", ".join(f"{k}={v}" for k, v in wrong.items())
        wanted = ", ".join(f"{k}={spec.configs[k]}" for k in wrong)
        msg = (
            f"topic {spec.name} has {found}, but it must keep its whole history ({wanted}); "
            f"fix it with kafka-configs.sh --alter --entity-type topics --entity-name {spec.name} "
            f"--add-config {','.join(f'{k}={spec.configs[k]}' for k in wrong)}"
        )
        raise TopicMismatchError(msg)


def _config_values(response: dict[str, Any], topic: str) -> dict[str, str]:
    """{config name: value} from kafka-python's describe_configs answer for one topic."""
    entries: dict[str, dict[str, Any]] = response.get("topic", {}).get(topic, {})
    return {name: str(entry.get("value")) for name, entry in entries.items()}
