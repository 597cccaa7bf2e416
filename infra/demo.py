"""The main job: a realistic escalation and two more, recorded, published and read back.

It runs on the embedded default (Tansu in memory, SQLite in a temp dir) when nothing is configured.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from domain.service import EscalationService
from infra.bootstrap import (
    build_relay,
    build_service,
    kafka_cluster,
    prepare_topics,
    read_model_engine,
    rebuild_reporting,
    utc_now,
)
from infra.relay_state import RelayLock
from infra.settings import Settings
from infra.stories import ldap_proxy_story, quiet_escalation
from projections.reports import REPORTS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoRun:
    service: EscalationService
    story: UUID
    others: list[UUID]
    published: int
    topic: str
    bootstrap_servers: str
    reports: dict[str, list[dict[str, Any]]]


def run_demo(settings: Settings, *, publish_timeout: float = 60.0) -> DemoRun:
    with kafka_cluster(settings) as cluster:
        prepare_topics(cluster)
        service = build_service(cluster)
        relay = build_relay(cluster, service)
        publisher = threading.Thread(
            target=relay.run, args=(RelayLock(cluster.event_store_url),), name="relay", daemon=True
        )
        publisher.start()
        try:
            start = (datetime.now(UTC) - timedelta(days=14)).replace(hour=8, minute=0, second=0, microsecond=0)
            story = ldap_proxy_story(service, start)
            others = [
                quiet_escalation(
                    service, start + timedelta(days=10), customer="Initech", region="AMER", lead="ana.lead"
                ),
                quiet_escalation(
                    service, start + timedelta(days=11), customer="Umbrella", region="APAC", lead="kenji.lead"
                ),
            ]
            recorded = sum(service.escalation(e).version for e in (story, *others))
            deadline = time.monotonic() + publish_timeout
            while relay.published < recorded and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            relay.stop()
            publisher.join(timeout=30)
        reports = _read_reports(cluster)
        return DemoRun(
            service, story, others, relay.published, cluster.events_topic, cluster.bootstrap_servers, reports
        )


def _read_reports(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Consume the topic into the reporting read model, then ask it the managers' questions.

    The demo assigns the partitions itself instead of joining a consumer group: the embedded
    broker's group join waits out a rebalance timeout, which a demo should not.
    """
    engine = read_model_engine(settings)
    rebuild_reporting(settings, engine)
    with engine.connect() as conn:
        now = utc_now()
        return {name: REPORTS[name](conn, now) for name in ("active", "compliance")}
