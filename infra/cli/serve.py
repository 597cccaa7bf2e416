"""`escalations serve`: the API, the relay, every consumer (reporting, timeline, notifier) and the
watcher in one supervised process.

With no Kafka configured it runs on the embedded broker and SQLite, so one command gives a
working system; in production each part can also run alone (`relay`, `consume reporting|timeline|notifier`, `watch`).
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable

import httpx
import structlog
import uvicorn

from consumers.notifier import GROUP as NOTIFIER_GROUP
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.watcher import GROUP as WATCHER_GROUP
from domain.commands import Command, CommandResult
from infra.bootstrap import (
    broker_check,
    build_delivery_loop,
    build_notifier_consumer,
    build_region_zones,
    build_relay,
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    build_watcher,
    kafka_cluster,
    lag_check,
    prepare_topics,
    read_model_engine,
    replication_check,
)
from infra.http.app import create_app
from infra.http.client import ApiCommands
from infra.local.demo import DEMO_PEOPLE, demo_stories
from infra.messaging.relay_state import RelayLock
from infra.settings import Settings

log = structlog.get_logger(__name__)


def supervised(name: str, run: Callable[[], None], stopping: threading.Event, backoff: float = 1.0) -> int:
    """Run a part until `stopping` is set, restarting it (with growing pauses) whenever it ends or fails.

    Returns how many times it was restarted.
    """
    restarts = 0
    while not stopping.is_set():
        try:
            run()
        except Exception:
            log.exception("serve.part_failed", part=name)
        if stopping.is_set():
            break
        pause = min(backoff * 2**restarts, 30.0)
        log.error("serve.part_restarting", part=name, restart=restarts + 1, in_seconds=pause)
        restarts += 1
        stopping.wait(pause)
    return restarts


def serve(
    settings: Settings,
    host: str,
    port: int,
    announce: Callable[[str], None],
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve until a signal; `on_started(base_url)` runs in its own thread once the API answers (the demo seeds)."""
    tokens = dict(settings.api_tokens)
    if not tokens:
        token = secrets.token_urlsafe(24)
        tokens[token] = "manager:local.manager"
        announce(f"No ESCALATIONS_API_TOKENS set; for this run, a manager token: {token}")
    with kafka_cluster(settings) as cluster:
        prepare_topics(cluster)
        service = build_service(cluster)
        engine = read_model_engine(cluster)
        relay = build_relay(cluster, service)
        embedded = settings.kafka_bootstrap_servers is None
        consumer = build_reporting_consumer(cluster, engine, join_group=not embedded)
        timelines = build_timeline_consumer(cluster, engine, join_group=not embedded)
        watcher = build_watcher(cluster, engine, service, join_group=not embedded)
        notifier = build_notifier_consumer(cluster, engine, join_group=not embedded)
        delivery = build_delivery_loop(cluster, engine)
        stopping = threading.Event()
        runs: dict[str, Callable[[], None]] = {
            "relay": lambda: relay.run(RelayLock(cluster.event_store_url), standby=True),
            "consumer": consumer.run,
            "timeline": timelines.run,
            "watcher": watcher.run,
            "notifier": notifier.run,
            "delivery": delivery.run,
        }
        parts = {
            name: threading.Thread(target=supervised, args=(name, run, stopping), name=name, daemon=True)
            for name, run in runs.items()
        }
        for thread in parts.values():
            thread.start()

        readiness = {
            "relay": lambda: "ok" if parts["relay"].is_alive() else "stopped",
            "delivery": lambda: "ok" if parts["delivery"].is_alive() else "stopped",
            # Every consumer group: its partitions assigned and its polls returning, not merely its thread alive.
            "consumer": consumer.health,
            "watcher": watcher.health,
            "notifier": notifier.health,
            "broker": broker_check(cluster),
            **replication_check(cluster),
            "lag": lag_check(cluster, engine, [REPORTING_GROUP, WATCHER_GROUP, NOTIFIER_GROUP], settings.ready_max_lag),
        }
        app = create_app(
            service,
            engine,
            tokens,
            max_body_bytes=settings.api_max_body_bytes,
            readiness=readiness,
            max_waiters=settings.api_max_waiting_readers,
            notify_allow_plain_http=settings.notify_allow_plain_http,
            zones=build_region_zones(cluster),
        )
        announce(f"Escalation Ledger API on http://{host}:{port} (Kafka at {cluster.bootstrap_servers})")
        # uvicorn stops on SIGINT/SIGTERM and then re-raises the signal to the handler it found: make
        # that one ours, so the relay and consumer still finish their round and stop cleanly.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda received, _: log.info("serve.stopping", signal=received))
        if on_started is not None:
            _when_answering(f"http://{host}:{port}", on_started, stopping)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
        finally:
            stopping.set()
            relay.stop()
            consumer.stop()
            timelines.stop()
            watcher.stop()
            notifier.stop()
            delivery.stop()
            for thread in parts.values():
                thread.join(timeout=30)
            log.info("serve.stopped")


def _when_answering(base_url: str, then: Callable[[str], None], stopping: threading.Event) -> None:
    def wait_then_run() -> None:
        while not stopping.is_set():
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                stopping.wait(0.1)
        if not stopping.is_set():
            try:
                then(base_url)
            except Exception:
                log.exception("serve.on_started_failed")

    threading.Thread(target=wait_then_run, name="on-started", daemon=True).start()


def serve_demo(settings: Settings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """`escalations demo --serve`: the demo's escalations recorded through a running `serve`, kept until Ctrl+C.

    The stories go through the served API (so the relay and consumer fold them into the read model
    the dashboard shows); then the URL and a manager's and an analyst's token are printed.
    """
    people = {person: secrets.token_urlsafe(16) for person in DEMO_PEOPLE}
    analyst = secrets.token_urlsafe(16)
    tokens = {people[p]: f"{role}:{p}" for p, role in DEMO_PEOPLE.items()}
    tokens |= {analyst: "analyst:nat.analyst", **settings.api_tokens}

    def seed(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            commands = _Tracked(http, people)
            demo_stories(commands)
            caught_up = http.get(
                "/escalations",
                params={"after": commands.position, "timeout": 30},
                headers={"Authorization": f"Bearer {people['mia.manager']}"},
            )
        if caught_up.status_code != 200:
            announce(f"The read model did not catch up with the demo: {caught_up.text}")
        announce(
            f"Dashboard with the demo's escalations: {base_url}/\n"
            f"  sign in as manager mia.manager with token: {people['mia.manager']}\n"
            f"  or as analyst nat.analyst with token: {analyst}\n"
            "Ctrl+C stops it."
        )

    serve(settings.but(api_tokens=tokens), host, port, announce, on_started=seed)


class _Tracked(ApiCommands):
    """Remembers the newest position its commands reached, to wait for the read model to get there."""

    position = 0

    def handle(self, command: Command, *, actor: str, expected_version: int | None = None) -> CommandResult:
        result = super().handle(command, actor=actor, expected_version=expected_version)
        self.position = max(self.position, result.position or 0)
        return result
