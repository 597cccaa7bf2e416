"""The composition root: builds the application and its adapters from one Settings object."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import orjson
import sqlalchemy as sa
import structlog
from kafka import KafkaAdminClient

from consumers.log_client import LogConsumer, LogProducer
from consumers.notifier import GROUP as NOTIFIER_GROUP
from consumers.notifier import NotifierProjector
from consumers.offsets import StoredOffsets
from consumers.rebuild import Progress as RebuildProgress
from consumers.rebuild import rebuild
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.reporting import ReportingProjector
from consumers.runtime import ConsumerRunner, Projector, lag_by_partition
from consumers.switch import discard, staging_engine, switch
from consumers.timeline import GROUP as TIMELINE_GROUP
from consumers.timeline import TimelineProjector
from consumers.watcher import GROUP as WATCHER_GROUP
from consumers.watcher import Watcher, WatcherProjector
from domain.calendar import RegionCalendar
from domain.service import Clock, EscalationService
from infra.faults import fault_at
from infra.health import Check
from infra.local.brokers import TansuBroker
from infra.messaging.clients import check_login, connection_config, producer_config
from infra.messaging.envelope import PayloadCipher, record_decoder, structured
from infra.messaging.kafka_python_client import KafkaPythonConsumer, KafkaPythonProducer
from infra.messaging.relay import Relay, RelayOptions
from infra.messaging.relay_state import Checkpoint
from infra.messaging.topics import TopicSpec, ensure_topics, log_config, replication_health
from infra.notify.delivery import DeliveryLoop, DigestPlan, RetryPolicy
from infra.notify.senders import Sender, SlackSender, WebhookSender
from infra.notify.subscriptions import destination_of
from infra.notify.urls import check_url
from infra.settings import DEFAULT_REGION_CALENDARS, RegionCalendarSettings, Settings
from projections.deadline_tables import create_watcher_schema, drop_watcher_schema
from projections.deadlines import DeadlinePolicy
from projections.notification_tables import create_notifier_schema, reset_notifier_context
from projections.tables import create_schema, drop_schema
from projections.timeline_tables import create_timeline_schema, drop_timeline_schema

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_region_calendars(settings: Settings) -> dict[str, RegionCalendar]:
    """Each region's working days: its zone and week from the settings, public holidays from `holidays`."""
    chosen = DEFAULT_REGION_CALENDARS | settings.region_calendars  # a region the settings leave out keeps its default
    return {str(region): _region_calendar(str(region), each) for region, each in chosen.items()}


def build_region_zones(settings: Settings) -> dict[str, ZoneInfo]:
    """The zone of each region's calendar: the local time a timeline shows beside UTC."""
    return {region: calendar.zone for region, calendar in build_region_calendars(settings).items()}


def _region_calendar(region: str, chosen: RegionCalendarSettings) -> RegionCalendar:
    try:
        zone = ZoneInfo(chosen.tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        msg = f"ESCALATIONS_REGION_CALENDARS: {region} has an unknown time zone {chosen.tz!r}; use an IANA name"
        raise ValueError(msg) from error
    try:
        days = holidays.country_holidays(chosen.country) if chosen.country else frozenset()
    except NotImplementedError as error:
        msg = f"ESCALATIONS_REGION_CALENDARS: {region} names country {chosen.country!r}, which `holidays` does not know"
        raise ValueError(msg) from error
    return RegionCalendar(region, zone, frozenset(chosen.working_week), days)


def build_service(settings: Settings, clock: Clock = utc_now) -> EscalationService:
    if settings.event_store == "sqlite":
        settings.event_store_path.parent.mkdir(parents=True, exist_ok=True)
    return EscalationService(
        settings.event_store_env(),
        clock=clock,
        cadences=settings.cadences,
        channel_template=settings.channel_template,
        opening_horizon=timedelta(days=settings.opening_horizon_days),
    )


@contextmanager
def kafka_cluster(settings: Settings) -> Iterator[Settings]:
    """The settings bound to a running cluster: the configured one, or an embedded Tansu broker."""
    if settings.kafka_bootstrap_servers:
        yield settings
        return
    with TansuBroker() as broker:
        # Tansu keeps no topic configs, so there is nothing to check there.
        yield settings.but(kafka_bootstrap_servers=broker.bootstrap_servers, kafka_check_topic_configs=False)


def prepare_topics(settings: Settings) -> None:
    check_login(settings)
    admin = KafkaAdminClient(**connection_config(settings), request_timeout_ms=10_000)
    try:
        ensure_topics(
            admin,
            [
                TopicSpec(
                    settings.events_topic,
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    log_config(settings.topic_min_insync_replicas),
                ),
                TopicSpec(
                    settings.dead_letter_topic,
                    1,
                    settings.topic_replication_factor,
                    log_config(settings.topic_min_insync_replicas),
                ),
            ],
            check_configs=settings.kafka_check_topic_configs,
        )
    finally:
        admin.close()


def payload_cipher(settings: Settings) -> PayloadCipher | None:
    """The cipher for message values on the topic, or None when they travel as plain JSON."""
    if settings.kafka_payload_key is None:
        return None
    previous = settings.kafka_payload_previous_keys
    try:
        older = orjson.loads(previous.get_secret_value()) if previous is not None else {}
    except orjson.JSONDecodeError:
        msg = 'ESCALATIONS_KAFKA_PAYLOAD_PREVIOUS_KEYS is not JSON; expected {"key id": "base64 key"}'
        raise ValueError(msg) from None
    return PayloadCipher.from_base64(
        settings.kafka_payload_key_id, settings.kafka_payload_key.get_secret_value(), older
    )


def read_model_engine(settings: Settings) -> sa.Engine:
    if settings.read_model_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # SQLite serialises writers; consumers of several read models share one file, so wait for the lock
    # (30 s, not the driver's 5 s) rather than fail a batch on a busy machine.
    sqlite = settings.read_model.startswith("sqlite")
    engine = sa.create_engine(settings.read_model, connect_args={"timeout": 30} if sqlite else {})
    if sqlite:
        sa.event.listen(engine, "connect", _write_ahead_log)
    _create_racing_others(engine, create_schema)
    return engine


def _write_ahead_log(connection: Any, _record: Any) -> None:
    """A read model's SQLite file in WAL mode, committing without waiting for the disk.

    WAL lets the API read while a consumer writes. `synchronous=NORMAL` keeps every commit atomic and
    survives a killed process; only a power cut can lose the last batches, and then their offsets go
    with them, so the consumer reads those records again: the read model is history's, not the source.
    """
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_racing_others(engine: sa.Engine, create: Callable[[sa.Engine], None], attempts: int = 5) -> None:
    """Create a schema while other processes may be creating it too (create_all and views are not atomic)."""
    for attempt in range(1, attempts + 1):
        try:
            create(engine)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as error:
            if attempt == attempts:
                raise
            log.warning("read_model.schema_race", attempt=attempt, error=str(error).splitlines()[0])
            time.sleep(0.2 * attempt)
        else:
            return


def consumer_config(settings: Settings, group: str | None) -> dict[str, Any]:
    """A read model's consumer; `group` is the unprefixed name (None: a reader outside any group)."""
    return connection_config(settings) | {
        "group_id": settings.group_name(group) if group else None,
        "enable_auto_commit": False,  # offsets live beside the read model, in its transaction
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        "fetch_max_wait_ms": 50,
        "max_poll_interval_ms": settings.consumer_max_poll_interval_ms,
        "max_poll_records": settings.consumer_max_records,
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "heartbeat_interval_ms": settings.consumer_heartbeat_interval_ms,
        # A topic created after we subscribed is seen within seconds, not kafka-python's default 5 minutes.
        "metadata_max_age_ms": 5_000,
    }


class KafkaClientMissingError(RuntimeError):
    """The chosen Kafka client library is not installed."""


def check_kafka_client(settings: Settings) -> None:
    """Fail at start, naming the fix, when ESCALATIONS_KAFKA_CLIENT names a library that is not installed."""
    if settings.kafka_client == "confluent-kafka":
        _confluent()


def _confluent() -> Any:
    try:
        from infra.messaging import confluent_client  # noqa: PLC0415 - optional: only when chosen
    except ModuleNotFoundError as error:
        if error.name != "confluent_kafka":
            raise
        msg = (
            "ESCALATIONS_KAFKA_CLIENT=confluent-kafka, but confluent-kafka is not installed: "
            "pip install 'escalation-ledger[confluent]', or set ESCALATIONS_KAFKA_CLIENT=kafka-python"
        )
        raise KafkaClientMissingError(msg) from None
    return confluent_client


def log_producer(settings: Settings) -> LogProducer:
    """The idempotent, acks=all producer of the chosen client (relay and dead letters)."""
    if settings.kafka_client == "confluent-kafka":
        confluent = _confluent()
        producer: LogProducer = confluent.ConfluentProducer(confluent.producer_config(settings))
        return producer
    return KafkaPythonProducer(producer_config(settings))


def log_consumer(settings: Settings, group: str | None, **overrides: Any) -> LogConsumer:
    """A consumer of the chosen client; `group` unprefixed (None: a reader outside any group).

    `overrides` are kafka-python settings; only the probes' request timeout has a librdkafka twin.
    """
    if settings.kafka_client == "confluent-kafka":
        confluent = _confluent()
        timeout = overrides.get("request_timeout_ms", 10_000) / 1000
        consumer: LogConsumer = confluent.ConfluentConsumer(confluent.consumer_config(settings, group), timeout)
        return consumer
    return KafkaPythonConsumer(consumer_config(settings, group) | overrides)


def build_consumer(
    settings: Settings, engine: sa.Engine, group: str, projector: Projector, *, join_group: bool = True
) -> ConsumerRunner:
    check_kafka_client(settings)
    return ConsumerRunner(
        engine=engine,
        projector=projector,
        decode=record_decoder(payload_cipher(settings)),
        consumer_factory=lambda: log_consumer(settings, group),
        dead_letters=lambda: log_producer(settings),
        topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        group=settings.group_name(group),
        max_records=settings.consumer_max_records,
        join_group=join_group,
        fault=fault_at(settings.fault_point, settings.fault_after),
        idle_bound=settings.consumer_idle_bound,
    )


def build_reporting_consumer(
    settings: Settings, engine: sa.Engine, projector: Projector | None = None, *, join_group: bool = True
) -> ConsumerRunner:
    chosen = projector or ReportingProjector(calendars=build_region_calendars(settings))
    return build_consumer(settings, engine, REPORTING_GROUP, chosen, join_group=join_group)


def build_timeline_consumer(settings: Settings, engine: sa.Engine, *, join_group: bool = True) -> ConsumerRunner:
    create_timeline_schema(engine)
    projector = TimelineProjector(build_region_zones(settings))
    return build_consumer(settings, engine, TIMELINE_GROUP, projector, join_group=join_group)


def deadline_policy(settings: Settings) -> DeadlinePolicy:
    chosen = {
        **DeadlinePolicy().stall_working_days,
        **{str(k): v for k, v in settings.watcher_stall_working_days.items()},
    }
    return DeadlinePolicy(
        update_overdue=settings.watcher_update_overdue,
        stall_working_days=chosen,
        monitoring_ended=settings.watcher_monitoring_ended,
        retrospective_due_working_days=settings.watcher_retrospective_due_working_days,
        follow_up_overdue=settings.watcher_follow_up_overdue,
    )


def build_watcher(
    settings: Settings, engine: sa.Engine, service: EscalationService, *, join_group: bool = True
) -> Watcher:
    """The watcher: its consumer folds the schedule; due deadlines fire as commands through `service`."""
    create_watcher_schema(engine)
    calendars = build_region_calendars(settings)
    projector = WatcherProjector(calendars, deadline_policy(settings))
    return Watcher(
        runner=build_consumer(settings, engine, WATCHER_GROUP, projector, join_group=join_group),
        engine=engine,
        handler=service,
        clock=service.clock,
        calendars=calendars,
        actor=settings.watcher_actor,
        interval=settings.watcher_interval,
    )


def rebuild_watcher(
    settings: Settings, engine: sa.Engine, service: EscalationService, progress: RebuildProgress | None = None
) -> Watcher:
    """Rebuild the watcher's schedule from offset zero (it fires nothing; its next run fires what is due)."""
    watcher = build_watcher(settings, engine, service)
    assert isinstance(watcher.runner, ConsumerRunner)
    _rebuild(settings, engine, watcher.runner, (drop_watcher_schema, create_watcher_schema), progress)
    return watcher


SchemaSteps = tuple[Callable[[sa.Engine], None], Callable[[sa.Engine], None]]  # (drop, create)


def rebuild_timeline(settings: Settings, engine: sa.Engine, progress: RebuildProgress | None = None) -> ConsumerRunner:
    runner = build_timeline_consumer(settings, engine)
    return _rebuild(settings, engine, runner, (drop_timeline_schema, create_timeline_schema), progress)


def rebuild_reporting(settings: Settings, engine: sa.Engine, progress: RebuildProgress | None = None) -> ConsumerRunner:
    """Rebuild the reporting read model from offset zero; the runner's stats say what was applied."""
    runner = build_reporting_consumer(settings, engine)
    return _rebuild(settings, engine, runner, (drop_schema, create_schema), progress)


def _rebuild(
    settings: Settings, engine: sa.Engine, runner: ConsumerRunner, schema: SchemaSteps, progress: RebuildProgress | None
) -> ConsumerRunner:
    drop, create = schema

    def reset(target: sa.Engine) -> None:
        drop(target)
        create(target)

    reader = log_consumer(settings, None)
    try:
        rebuild(runner, engine, reader, progress, reset=reset)
    finally:
        reader.close()
    return runner


def rebuild_live(
    settings: Settings,
    engine: sa.Engine,
    name: str,
    progress: RebuildProgress | None = None,
    *,
    service: EscalationService | None = None,
    switching: Callable[[], None] = lambda: None,
) -> ConsumerRunner:
    """Rebuild `name` (reporting, timeline, watcher) beside the live read model, then switch it in.

    The live read model keeps answering and its consumers keep running; after the switch they
    continue from the rebuild's offsets (see consumers/switch.py). `switching` is called once the
    rebuild has caught up, just before the switch."""
    staged = staging_engine(engine, name)
    try:
        if name == "watcher":
            assert service is not None, "the watcher's rebuild needs the service it is built with"
            runner = rebuild_watcher(settings, staged, service, progress).runner
            assert isinstance(runner, ConsumerRunner)
        else:
            runner = {"reporting": rebuild_reporting, "timeline": rebuild_timeline}[name](settings, staged, progress)
        switching()
        switch(engine, staged, name, runner.group)
    finally:
        discard(engine, staged, name)
    return runner


def build_relay(settings: Settings, service: EscalationService) -> Relay:
    check_kafka_client(settings)
    engine = sa.create_engine(settings.event_store_url)
    return Relay(
        application=service,
        event_topics=service.event_topics(),
        checkpoint=Checkpoint(engine, relay=settings.events_topic),
        options=RelayOptions(
            topic=settings.events_topic,
            source=settings.event_source,
            bootstrap_servers=settings.bootstrap_servers,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            verify_interval=settings.relay_verify_interval,
            connect_attempts=settings.kafka_connect_attempts,
            cipher=payload_cipher(settings),
        ),
        producer_factory=lambda: log_producer(settings),
        # A reader outside any group; it never creates the topic with the broker's defaults: we create it.
        consumer_factory=lambda: log_consumer(settings, None),
        prepare_topics=lambda: prepare_topics(settings),
        fault=fault_at(settings.fault_point, settings.fault_after),
    )


PROBE_TIMEOUT_MS = 2_000  # a readiness check answers within seconds, even when the broker does not


def broker_check(settings: Settings) -> Check:
    """Asks the cluster for its topics with a fresh client each time: a stale connection never says "ok"."""

    def check() -> str:
        probe = {"request_timeout_ms": PROBE_TIMEOUT_MS, "bootstrap_timeout_ms": PROBE_TIMEOUT_MS}
        admin = KafkaAdminClient(**connection_config(settings) | probe)
        try:
            topics = admin.list_topics()
        finally:
            admin.close()
        return "ok" if settings.events_topic in topics else f"topic {settings.events_topic} missing"

    return check


def replication_check(settings: Settings) -> dict[str, Check]:
    """{"kafka_replication": check} on a replicated topic: "ok", "degraded: ..." (a broker lost, still
    writable) or "unavailable: ..."; nothing on a one-replica topic, where the broker check says it all."""
    if settings.topic_replication_factor == 1:
        return {}

    def check() -> str:
        probe = {"request_timeout_ms": PROBE_TIMEOUT_MS, "bootstrap_timeout_ms": PROBE_TIMEOUT_MS}
        admin = KafkaAdminClient(**connection_config(settings) | probe)
        try:
            return replication_health(admin, settings.events_topic)
        finally:
            admin.close()

    return {"kafka_replication": check}


def lag_check(settings: Settings, engine: sa.Engine, groups: list[str], max_lag: int) -> Check:
    """Records behind the end of the topic, summed over these consumer groups' read models."""
    reader: list[LogConsumer] = []  # one client, made and used on the check's own thread

    def check() -> str:
        if not reader:
            probe = {"request_timeout_ms": PROBE_TIMEOUT_MS, "bootstrap_timeout_ms": PROBE_TIMEOUT_MS}
            reader.append(log_consumer(settings, None, **probe))
        try:
            behind = {
                group: sum(
                    lag
                    for _, _, lag in lag_by_partition(
                        StoredOffsets(engine, settings.group_name(group)), reader[0], settings.events_topic
                    ).values()
                )
                for group in groups
            }
        except Exception:
            reader.pop().close()  # a client that failed once is not trusted again
            raise
        late = {group: lag for group, lag in behind.items() if lag > max_lag}
        return "ok" if not late else f"behind by more than {max_lag} records: {late}"

    return check


def build_notifier_consumer(
    settings: Settings, engine: sa.Engine, clock: Clock = utc_now, *, join_group: bool = True
) -> ConsumerRunner:
    """The notifier: records deliveries beside its offsets; `build_delivery_loop` sends them."""
    create_notifier_schema(engine)
    projector = NotifierProjector(
        cloudevent=lambda event: structured(event, settings.event_source),
        clock=clock,
        max_age=timedelta(hours=settings.notify_max_event_age_hours),
        slack=settings.notify_slack_token is not None,
    )
    return build_consumer(settings, engine, NOTIFIER_GROUP, projector, join_group=join_group)


def build_delivery_loop(settings: Settings, engine: sa.Engine, clock: Clock = utc_now) -> DeliveryLoop:
    create_notifier_schema(engine)
    senders: dict[str, Sender] = {
        "webhook": WebhookSender(lambda key: destination_of(engine, key), settings.notify_timeout_seconds)
    }
    if settings.notify_slack_token is not None:
        base_url = check_url(settings.notify_slack_base_url, allow_plain_http=settings.notify_allow_plain_http)
        senders["slack"] = SlackSender(settings.notify_slack_token, base_url, settings.notify_timeout_seconds)
    plan = None
    if settings.notify_managers_channel and settings.notify_slack_token is not None:
        plan = DigestPlan(settings.notify_managers_channel, settings.notify_digest_hour_utc)
    return DeliveryLoop(
        engine,
        senders,
        clock,
        policy=RetryPolicy(
            settings.notify_max_attempts, settings.notify_backoff_initial_seconds, settings.notify_backoff_max_seconds
        ),
        # A crashed attempt's row is free again once no live attempt could still be holding it.
        lease_seconds=2 * settings.notify_timeout_seconds + 5,
        poll_interval=settings.notify_poll_interval,
        digest_plan=plan,
    )


def rebuild_notifier(settings: Settings, engine: sa.Engine, progress: RebuildProgress | None = None) -> ConsumerRunner:
    """Refold the notifier's context from offset zero; the delivery log keeps every old message from going out again."""
    runner = build_notifier_consumer(settings, engine)
    return _rebuild(settings, engine, runner, (lambda _: None, reset_notifier_context), progress)
