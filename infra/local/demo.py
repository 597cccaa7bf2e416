"""The main job: a realistic escalation and two more, recorded, published and read back.

It runs on the embedded default (Tansu in memory, SQLite in a temp dir) when nothing is configured.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
import structlog
import uvicorn

from consumers.runtime import ConsumerRunner
from domain.commands import CommandHandler
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.bootstrap import (
    build_delivery_loop,
    build_region_zones,
    build_relay,
    build_service,
    build_watcher,
    kafka_cluster,
    prepare_topics,
    read_model_engine,
    rebuild_notifier,
    rebuild_reporting,
    rebuild_timeline,
    utc_now,
)
from infra.http.app import create_app
from infra.http.client import ApiCommands
from infra.local.ports import free_port, wait_until
from infra.local.receiver import LocalReceiver
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.messaging.relay_state import RelayLock
from infra.notify.delivery import delivery_counts
from infra.settings import Settings
from projections.reports import REPORTS
from projections.retro import render_markdown, retrospective
from projections.timeline import Zones, summarize, timeline

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
    retrospective: str
    noticed: list[str]  # what the ledger's watcher noticed by itself (timeline lines)
    notifications: list[dict[str, Any]] = field(default_factory=list)  # what Slack would have received


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
            with _api(service, read_model_engine(cluster), build_region_zones(cluster)) as commands:
                story, others = demo_stories(commands)
            recorded = sum(service.state(e)["version"] for e in (story, *others))
            deadline = time.monotonic() + publish_timeout
            while relay.published < recorded and time.monotonic() < deadline:
                time.sleep(0.05)
            noticed = _watch_until_caught_up(cluster, service, [story, *others])
            recorded = sum(service.state(e)["version"] for e in (story, *others))
            while relay.published < recorded and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            relay.stop()
            publisher.join(timeout=30)
        reports = _read_reports(cluster)
        events = history_as_recorded(service, story)
        retro = render_markdown(retrospective(events, utc_now(), timeline(events, build_region_zones(cluster))))
        return DemoRun(
            service,
            story,
            others,
            relay.published,
            cluster.events_topic,
            cluster.bootstrap_servers,
            reports,
            retro,
            noticed,
            _notifications(cluster),
        )


def _watch_until_caught_up(settings: Settings, service: EscalationService, escalations: list[UUID]) -> list[str]:
    """Run the watcher until it has read every event and fired what is due: what did the ledger notice?"""
    events = sum(service.state(e)["version"] for e in escalations)
    watcher = build_watcher(settings.but(watcher_interval=0.2), read_model_engine(settings), service, join_group=False)
    runner = watcher.runner
    assert isinstance(runner, ConsumerRunner)
    thread = threading.Thread(target=watcher.run, name="watcher", daemon=True)
    thread.start()
    try:
        wait_until(lambda: runner.stats.applied >= events, timeout=60, what="the watcher reading every event")
        rounds = watcher.rounds
        wait_until(lambda: watcher.rounds > rounds, timeout=60, what="a firing round after that")
    finally:
        watcher.stop()
        thread.join(timeout=30)
    return [
        f"{service.state(e)['customer']}: {summarize(event)}"
        for e in escalations
        for event in history_as_recorded(service, e)
        if event.data["actor"] == settings.watcher_actor
    ]


def demo_stories(commands: CommandHandler) -> tuple[UUID, list[UUID]]:
    """The handbook's LDAP-proxy escalation, begun two weeks ago, and three quiet ones (one silent since)."""
    start = (datetime.now(UTC) - timedelta(days=14)).replace(hour=8, minute=0, second=0, microsecond=0)
    story = ldap_proxy_story(commands, start)
    others = [
        quiet_escalation(commands, start + timedelta(days=10), customer="Initech", region="AMER", lead="ana.lead"),
        quiet_escalation(commands, start + timedelta(days=11), customer="Umbrella", region="APAC", lead="kenji.lead"),
        # No update since its first, ten days ago: the ledger notices the overdue update by itself.
        quiet_escalation(commands, start + timedelta(days=4), customer="Hooli", region="EMEA", lead="priya.lead"),
    ]
    return story, others


DEMO_PEOPLE = {
    "mia.manager": "manager",
    "sam.manager": "manager",
    "priya.lead": "engineer",
    "ana.lead": "engineer",
    "kenji.lead": "engineer",
}


@contextmanager
def _api(service: EscalationService, read_model: sa.Engine, zones: Zones) -> Iterator[CommandHandler]:
    """The real HTTP API on a loopback port, and a client of it that handles commands."""
    tokens = {person: secrets.token_urlsafe(16) for person in DEMO_PEOPLE}
    app = create_app(service, read_model, {tokens[p]: f"{role}:{p}" for p, role in DEMO_PEOPLE.items()}, zones=zones)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, what=f"the API on port {port}")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield ApiCommands(http, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _notifications(settings: Settings, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run the notifier over the topic against a local stand-in for Slack, and return what it received."""
    with LocalReceiver() as receiver:
        local = settings.but(
            notify_slack_token=receiver.token,
            notify_slack_base_url=receiver.slack_base_url,
            notify_managers_channel="#support-managers",
            notify_digest_hour_utc=0,
        )
        engine = read_model_engine(local)
        rebuild_notifier(local, engine)
        loop = build_delivery_loop(local, engine)
        deadline = time.monotonic() + timeout
        while delivery_counts(engine).get("pending", 0) and time.monotonic() < deadline:
            if not loop.run_once():
                time.sleep(0.05)
        return list(receiver.received.slack)


def _read_reports(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Consume the topic into the reporting and timeline read models (so `escalations audit verify` and
    `audit rebuild` work on the demo's data directory), then ask the managers' questions.

    The demo assigns the partitions itself instead of joining a consumer group: the embedded
    broker's group join waits out a rebalance timeout, which a demo should not.
    """
    engine = read_model_engine(settings)
    rebuild_reporting(settings, engine)
    rebuild_timeline(settings, engine)
    with engine.connect() as conn:
        now = utc_now()
        return {name: REPORTS[name](conn, now) for name in ("active", "compliance")}
