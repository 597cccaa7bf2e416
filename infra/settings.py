"""One frozen settings object for the whole system, read from `ESCALATIONS_*` environment variables.

Secrets are `SecretStr` so they never show up in logs or reprs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

from domain.values import DEFAULT_CADENCES, DEFAULT_CHANNEL_TEMPLATE, Region, Severity, UpdateCadence
from infra.faults import FaultPoint


class RegionCalendarSettings(BaseModel):
    """Where a region's working day starts (an IANA zone), and whose public holidays it keeps."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tz: str
    country: str | None = Field(default=None, description="ISO 3166 code for the `holidays` package; none: no holidays")
    working_week: tuple[int, ...] = Field(default=(0, 1, 2, 3, 4), description="weekdays that count, Monday = 0")


# The same representative zones the timeline shows local times in.
DEFAULT_REGION_CALENDARS = {
    Region.AMER: RegionCalendarSettings(tz="America/New_York", country="US"),
    Region.EMEA: RegionCalendarSettings(tz="Europe/London", country="GB"),
    Region.APAC: RegionCalendarSettings(tz="Asia/Singapore", country="SG"),
}

API_ROLES = ("manager", "engineer", "auditor", "analyst")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATIONS_", frozen=True, extra="forbid")

    # Event store (the source of truth).
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    data_dir: Path = Field(default=Path("var"), description="where SQLite files live by default")
    sqlite_path: Path | None = Field(default=None, description="event store file; default DATA_DIR/events.db")
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "escalations"
    postgres_password: SecretStr = SecretStr("")
    postgres_dbname: str = "escalations"
    cipher_key: SecretStr | None = Field(default=None, description="AES key (base64) to encrypt stored events")
    aggregate_cache_size: int = Field(
        default=1000, ge=0, description="escalations kept in memory between commands (0: replay every time)"
    )

    # Read models (SQLAlchemy URL; default: SQLite in DATA_DIR).
    read_model_url: str | None = Field(default=None, description="e.g. postgresql+psycopg://user:pw@host/db")
    consumer_max_records: int = Field(default=2000, ge=1)
    consumer_max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    # A dead member's partitions move once its session expires: short, so failover takes seconds.
    consumer_session_timeout_ms: int = Field(default=6_000, ge=1000, description="the broker allows 6000 and up")
    consumer_heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    consumer_idle_bound: float = Field(
        default=15.0, gt=0, description="seconds a consumer may hold no partition before its client is recreated"
    )

    # The HTTP API: bearer token -> "role:name" (roles: manager, engineer, auditor, analyst).
    api_tokens: dict[str, str] = Field(default_factory=dict, description='e.g. {"s3cret": "manager:mia"}')
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    api_max_waiting_readers: int = Field(
        default=256, ge=1, description="read-your-writes waiters at once; past it, 503 with Retry-After"
    )
    ready_max_lag: int = Field(default=10_000, ge=0, description="records a read model may be behind and be ready")

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens_name_a_role(cls, tokens: object) -> object:
        """Each entry is "role:name"; a refusal names the entry by its place, never by its token."""
        if not isinstance(tokens, dict):
            return tokens
        for place, value in enumerate(tokens.values(), start=1):
            role, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
            if role not in API_ROLES or not name:
                msg = (
                    f'entry {place} must map a token to "role:name" with a role of {", ".join(API_ROLES)}, '
                    f'e.g. {{"<token>": "manager:mia"}}'
                )
                raise ValueError(msg)
        return tokens

    # Domain configuration.
    channel_template: str = DEFAULT_CHANNEL_TEMPLATE
    opening_horizon_days: int = Field(default=365, ge=1, description="how far back an escalation may be opened")
    update_cadences: dict[Severity, tuple[str, int | None]] = Field(
        default={
            severity: (c.description, c.max_working_days_between_updates) for severity, c in DEFAULT_CADENCES.items()
        },
        description='per severity: (description, most working days between updates), e.g. {"high": ["daily", 1]}',
    )

    region_calendars: dict[Region, RegionCalendarSettings] = Field(
        default=DEFAULT_REGION_CALENDARS,
        description='per region: zone, holiday country, week, e.g. {"EMEA": {"tz": "Europe/Berlin", "country": "DE"}}',
    )

    # The watcher: what the ledger notices by itself (each kind can be turned off or tuned).
    watcher_actor: str = Field(default="escalation-ledger", description="who the watcher's events name as actor")
    watcher_interval: float = Field(default=5.0, gt=0, description="seconds between rounds of firing due deadlines")
    watcher_update_overdue: bool = Field(default=True, description="record UpdateOverdue past the severity cadence")
    watcher_stall_working_days: dict[Severity, int | None] = Field(
        default={Severity.CRITICAL: 2, Severity.HIGH: 3, Severity.MEDIUM: 10, Severity.LOW: None},
        description="per severity: working days without progress before the ledger notices a stall (null: off)",
    )
    watcher_monitoring_ended: bool = Field(default=True, description="record MonitoringPeriodEnded")
    watcher_retrospective_due_working_days: int | None = Field(
        default=5, ge=1, description="working days after closing without a retrospective (null: off)"
    )
    watcher_follow_up_overdue: bool = Field(default=True, description="record FollowUpActionOverdue past due dates")

    @property
    def cadences(self) -> dict[Severity, UpdateCadence]:
        """The defaults, with whatever severities the settings override."""
        chosen = dict(DEFAULT_CADENCES)
        chosen.update({severity: UpdateCadence(*value) for severity, value in self.update_cadences.items()})
        return chosen

    # Kafka (the distribution log). No bootstrap servers: the embedded broker is started.
    kafka_bootstrap_servers: str | None = None
    kafka_client: Literal["kafka-python", "confluent-kafka"] = Field(
        default="kafka-python",
        description="the client library for the relay and the consumers; confluent-kafka needs the [confluent] extra",
    )
    kafka_bootstrap_timeout_ms: int = Field(default=10_000, ge=100, description="per attempt to reach the cluster")
    kafka_connect_attempts: int = Field(default=5, ge=1)
    kafka_check_topic_configs: bool = Field(default=True, description="off for brokers that keep no topic configs")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_payload_key: SecretStr | None = Field(
        default=None,
        description="base64 AES-256 key: message values on the topic are encrypted (headers stay readable)",
    )
    kafka_payload_key_id: str = Field(default="k1", min_length=1, description="names the key in each record's header")
    kafka_payload_previous_keys: SecretStr | None = Field(
        default=None, description='JSON {"key id": "base64 key"}: older keys that still decrypt after a rotation'
    )
    events_topic: str = "escalations.events.v1"
    dead_letter_topic: str = "escalations.events.v1.dlq"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int = Field(
        default=1, ge=1, description="brokers that must hold an event before it counts as published (RF 3: 2)"
    )
    event_source: str = Field(default="urn:escalation-ledger:escalations", description="CloudEvents source")
    kafka_name_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="prefixed to consumer group names and the client id, so deployments sharing a cluster stay apart",
    )

    def group_name(self, group: str) -> str:
        """A consumer group's name in this deployment."""
        return f"{self.kafka_name_prefix}{group}"

    @property
    def client_id(self) -> str:
        return f"{self.kafka_name_prefix}escalation-ledger"

    # The relay from the event store to Kafka.
    relay_batch_size: int = Field(default=2000, ge=1, description="notifications read per round")
    relay_poll_interval: float = Field(default=0.01, gt=0, description="seconds between polls at idle")
    relay_linger_ms: int = Field(default=5, ge=0)
    relay_verify_interval: float = Field(default=5.0, gt=0, description="seconds between broker data-loss checks")

    # Notifications (the notifier consumer and its delivery loop). No Slack token: webhooks only.
    notify_slack_token: SecretStr | None = Field(default=None, description="a bot token (xoxb-...)")
    notify_slack_base_url: str = Field(default="https://slack.com/api/", description="Slack's Web API, or a stand-in")
    notify_managers_channel: str | None = Field(default=None, description="daily digest, e.g. #support-managers")
    notify_digest_hour_utc: int = Field(default=9, ge=0, le=23)
    notify_max_attempts: int = Field(default=10, ge=1, description="then the delivery is dead")
    notify_backoff_initial_seconds: float = Field(default=2.0, gt=0)
    notify_backoff_max_seconds: float = Field(default=600.0, gt=0, description="the longest pause between attempts")
    notify_max_event_age_hours: float = Field(default=24.0, gt=0, description="older at first sight: skipped")
    notify_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_poll_interval: float = Field(default=0.5, gt=0)
    notify_allow_plain_http: bool = Field(default=False, description="webhooks over http beyond loopback")

    # Test-only: the relay or a consumer SIGKILLs itself at this point (infra/faults.py). Never in production.
    fault_point: FaultPoint | None = None
    fault_after: int = Field(default=1, ge=1, description="fire on this pass through the fault point")

    @property
    def bootstrap_servers(self) -> str:
        if not self.kafka_bootstrap_servers:
            msg = "no Kafka cluster: set ESCALATIONS_KAFKA_BOOTSTRAP_SERVERS, or run inside `escalations serve`"
            raise ValueError(msg)
        return self.kafka_bootstrap_servers

    @property
    def event_store_path(self) -> Path:
        return self.sqlite_path or self.data_dir / "events.db"

    @property
    def read_model(self) -> str:
        return self.read_model_url or f"sqlite:///{self.data_dir / 'reporting.db'}"

    @property
    def event_store_url(self) -> URL:
        """The event store's database as SQLAlchemy sees it (for the relay's checkpoint and lock)."""
        if self.event_store == "sqlite":
            return URL.create("sqlite", database=str(self.event_store_path))
        return URL.create(
            "postgresql+psycopg",
            username=self.postgres_user,
            password=self.postgres_password.get_secret_value(),
            host=self.postgres_host,
            port=self.postgres_port,
            database=self.postgres_dbname,
        )

    def event_store_env(self) -> dict[str, str]:
        """The `eventsourcing` library's settings for the event store these settings describe."""
        env: dict[str, str] = {}
        if self.event_store == "sqlite":
            env |= {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.event_store_path)}
        else:
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_HOST": self.postgres_host,
                "POSTGRES_PORT": str(self.postgres_port),
                "POSTGRES_USER": self.postgres_user,
                "POSTGRES_PASSWORD": self.postgres_password.get_secret_value(),
                "POSTGRES_DBNAME": self.postgres_dbname,
            }
        if self.aggregate_cache_size:
            # No fast-forward on every read: a command writes first and the store's version check refuses
            # a stale write; the service then reads what other writers saved and decides again.
            env |= {"AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size), "AGGREGATE_CACHE_FASTFORWARD": "n"}
        if self.cipher_key is not None:
            env |= {
                "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher",
                "CIPHER_KEY": self.cipher_key.get_secret_value(),
            }
        return env

    def as_env(self) -> dict[str, str]:
        """These settings as ESCALATIONS_* variables, to hand to another process."""
        env = {}
        for key, value in self.model_dump(exclude_none=True).items():
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            text = json.dumps(raw) if isinstance(raw, dict | list | tuple) else str(raw)
            env[f"ESCALATIONS_{key.upper()}"] = text
        return env

    def but(self, **changes: object) -> Settings:
        """A validated copy with some settings changed (for tests, tools and the demo)."""
        return type(self).model_validate(self.model_dump() | changes)


def describe_invalid(error: ValidationError) -> str:
    """What is wrong with the settings, naming each variable, never echoing a value (it may be a secret)."""
    problems = []
    for found in error.errors(include_input=False, include_url=False):
        field = str(found["loc"][0]) if found["loc"] else ""
        problems.append(f"ESCALATIONS_{field.upper()}: {found['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)
