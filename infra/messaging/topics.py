"""Creates the event and dead-letter topics idempotently, and says clearly when one exists wrongly."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic, OffsetSpec
from kafka.errors import TopicAlreadyExistsError

from infra.local.ports import wait_until

log = structlog.get_logger(__name__)

# The event topic is a replayable log: keep every record forever.
LOG_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# Unset on the topic means the broker's default, which may differ from what we need.
_MUST_BE_SET = frozenset({"retention.ms", "min.insync.replicas"})


def log_config(min_insync_replicas: int) -> dict[str, str]:
    """The event topic's settings: the whole history, and acknowledged only once on that many brokers."""
    return LOG_CONFIG | {"min.insync.replicas": str(min_insync_replicas)}


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
        for spec in missing:
            _wait_for_partitions(admin, spec.name)
        log.info("topics.created", topics=[s.name for s in missing])
    for spec in specs:
        _check_partitions(admin, spec)
        _check_replication(admin, spec)
        if check_configs:
            _check_configs(admin, spec)


def _check_partitions(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    partitions = _partition_count(admin, spec.name)
    if partitions != spec.partitions and _is_empty(admin, spec.name, partitions):
        # Some brokers (Tansu) create a topic with their defaults on any metadata request. An empty
        # topic holds nothing to lose, so it is made again the way we want it.
        log.warning("topics.recreating_empty", topic=spec.name, partitions=partitions, wanted=spec.partitions)
        admin.delete_topics([spec.name])
        wait_until(lambda: spec.name not in admin.list_topics(), timeout=30, what=f"deletion of {spec.name}")
        admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.configs)])
        wait_until(lambda: _partition_count(admin, spec.name) > 0, timeout=30, what=f"creation of {spec.name}")
        partitions = _partition_count(admin, spec.name)
    if partitions != spec.partitions:
        msg = (
            f"topic {spec.name} has {partitions} partitions but the settings ask for {spec.partitions}; "
            f"set ESCALATIONS_TOPIC_PARTITIONS={partitions} to use it as it is, or use a new topic name "
            f"(changing the partition count would reorder events of one escalation)"
        )
        raise TopicMismatchError(msg)


def _check_replication(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    described: list[dict[str, Any]] = admin.describe_topics([spec.name])
    factors = {len(p["replica_nodes"]) for p in described[0]["partitions"]} if described else set()
    if factors and factors != {spec.replication_factor}:
        found = ", ".join(str(f) for f in sorted(factors))
        msg = (
            f"topic {spec.name} has replication factor {found} but the settings ask for "
            f"{spec.replication_factor}; set ESCALATIONS_TOPIC_REPLICATION_FACTOR={found} to use it as it is, "
            f"or reassign its replicas (kafka-reassign-partitions.sh) so a broker loss cannot lose events"
        )
        raise TopicMismatchError(msg)


def _partition_count(admin: KafkaAdminClient, topic: str) -> int:
    described: list[dict[str, Any]] = admin.describe_topics([topic])
    return len(described[0]["partitions"]) if described else 0


def _wait_for_partitions(admin: KafkaAdminClient, topic: str) -> None:
    """A new topic's metadata reaches the brokers a moment after it is created."""
    wait_until(lambda: _partition_count(admin, topic) > 0, timeout=30, what=f"creation of {topic}")


def _is_empty(admin: KafkaAdminClient, topic: str, partitions: int) -> bool:
    specs = {TopicPartition(topic, p): OffsetSpec.LATEST for p in range(partitions)}
    return all(found.offset == 0 for found in admin.list_partition_offsets(specs).values())


def _check_configs(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name)])
    actual = _config_values(response, spec.name)
    # The answer lists only what was set on the topic; an unset retention.ms means the broker's
    # default (7 days unless changed), which would silently delete history.
    wrong = {
        key: actual.get(key, "the broker default")
        for key, value in spec.configs.items()
        if (key in actual or key in _MUST_BE_SET) and actual.get(key) != value
    }
    if wrong.get("min.insync.replicas") == "the broker default" and spec.configs["min.insync.replicas"] == "1":
        del wrong["min.insync.replicas"]  # unset means the broker's default, and no broker default is below 1
    if "min.insync.replicas" in wrong:
        msg = (
            f"topic {spec.name} has min.insync.replicas={wrong['min.insync.replicas']}, but the settings ask for "
            f"{spec.configs['min.insync.replicas']} (an acknowledged event must be on that many brokers); "
            f"fix it with kafka-configs.sh --alter --entity-type topics --entity-name {spec.name} "
            f"--add-config min.insync.replicas={spec.configs['min.insync.replicas']}, "
            f"or set ESCALATIONS_TOPIC_MIN_INSYNC_REPLICAS to what the topic has"
        )
        raise TopicMismatchError(msg)
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


def replication_health(admin: KafkaAdminClient, topic: str) -> str:
    """ "ok", "degraded: ..." (fewer in-sync replicas than wanted, still writable) or "unavailable: ...".

    A topic is writable with acks=all while every partition has a leader and at least
    min.insync.replicas in sync; a lost broker makes it degraded, not unavailable.
    """
    described: list[dict[str, Any]] = admin.describe_topics([topic])
    if not described or not described[0]["partitions"]:
        return f"unavailable: topic {topic} not found"
    live = {broker["broker_id"] for broker in admin.describe_cluster()["brokers"] if not broker.get("is_fenced")}
    partitions = described[0]["partitions"]
    leaderless = sorted(p["partition_index"] for p in partitions if p["leader_id"] not in live)
    if leaderless:
        return f"unavailable: partitions {leaderless} of {topic} have no leader"
    replicas = {r for p in partitions for r in p["replica_nodes"]}
    short = [p for p in partitions if len(p["isr_nodes"]) < len(p["replica_nodes"])]
    if short or not replicas <= live:
        down = sorted(replicas - live)
        return (
            f"degraded: broker(s) {down} down, {len(short)} of {len(partitions)} partitions of {topic} "
            f"under-replicated (fewest in sync: {min(len(p['isr_nodes']) for p in partitions)})"
        )
    return "ok"
