"""The per-stage benchmarks, each measured beside the raw library it is built on, in the same run."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import Progress

from bench import history
from bench.results import Figure, timed
from consumers.runtime import ConsumerRunner
from domain.service import EscalationService
from infra.bootstrap import (
    build_relay,
    build_service,
    consumer_config,
    prepare_topics,
    read_model_engine,
    rebuild_notifier,
    rebuild_reporting,
    rebuild_timeline,
    rebuild_watcher,
)
from infra.http.client import ApiCommands
from infra.local.ports import free_port
from infra.messaging import envelope
from infra.messaging.clients import producer_config
from infra.settings import Settings

RAW_SAVE = "eventsourcing Application.save of a trivial aggregate, same store"
RAW_CONSUME = "kafka-python poll loop + orjson.loads of each value, same topic"
RAW_CONSUME_CONFLUENT = "confluent-kafka consume loop + orjson.loads of each value, same topic"
CLIENTS = ("kafka-python", "confluent-kafka")


def for_client(stage: str, client: str) -> str:
    """The stage's label: as it always was for the default client, the client named for the other."""
    return stage if client == "kafka-python" else f"{stage} via {client}"


class Trivial(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name


def raw_saves(env: dict[str, str], count: int) -> int:
    app: Application[Any] = Application(env)
    for i in range(count):
        app.save(Trivial(name=f"t{i}"))
    return count


def commands(
    label: str, settings: Settings, raw_env: dict[str, str], count: int, console: Console
) -> tuple[Figure, EscalationService, int]:
    """Escalations recorded through the application service; the events they hold per second."""
    service = build_service(settings)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{label}: recording escalations", total=count)
        began = time.perf_counter()
        recorded = history.record(service, count, lambda: bar.advance(task))
        elapsed = time.perf_counter() - began
    events = history.events_of(service, recorded)
    baseline = timed(lambda: raw_saves(raw_env, events))
    return Figure(label, events / elapsed, baseline, "events/s", RAW_SAVE), service, events


@contextlib.contextmanager
def api_server(
    settings: Settings, log: Path, *flags: str, tokens: dict[str, str] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """The HTTP API alone, in its own process (as it is deployed); yields its URL and each actor's token."""
    tokens = tokens or {actor: secrets.token_urlsafe(12) for actor in history.ACTORS}
    served = settings.but(api_tokens={tokens[actor]: f"{role}:{actor}" for actor, role in history.ACTORS.items()})
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.api_server", str(port), *flags],
        env={**os.environ, **served.as_env()},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                msg = f"the API server did not start; see {log}"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield url, tokens
    finally:
        process.terminate()
        process.wait(timeout=30)


def http_commands(settings: Settings, count: int, raw_save_rate: float, log: Path, console: Console) -> Figure:
    """The same generator, through the HTTP API (bearer tokens, If-Match, JSON bodies) on loopback; beside
    the very same requests, replayed one by one against the same app doing no domain work."""
    sent: list[httpx.Request] = []
    with (
        api_server(settings, log) as (url, tokens),
        httpx.Client(base_url=url, timeout=30, event_hooks={"request": [sent.append]}) as http,
        Progress(console=console, transient=True) as bar,
    ):
        task = bar.add_task("commands over HTTP: recording escalations", total=count)
        client = ApiCommands(http, tokens)
        began = time.perf_counter()
        recorded = history.record(client, count, lambda: bar.advance(task))
        elapsed = time.perf_counter() - began
    events = history.events_of(build_service(settings), recorded)
    with (
        api_server(settings.but(data_dir=settings.data_dir / "idle"), log, "--no-domain-work", tokens=tokens) as (
            url,
            _,
        ),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        # The floor under every command: one round trip through the HTTP stack that does nothing.
        round_trips = timed(lambda: sum(http.get("/healthz").status_code == 200 for _ in range(500)))
        # The same method, path, token, If-Match and body bytes (the Host header differs: another port).
        keep = ("authorization", "if-match", "content-type")
        replayed = [(r.method, r.url.path, {k: v for k, v in r.headers.items() if k in keep}, r.content) for r in sent]
        baseline = timed(lambda: sum(http.request(m, p, headers=h, content=b).is_success for m, p, h, b in replayed))
    return Figure(
        "commands (HTTP API, SQLite)",
        events / elapsed,
        baseline,
        "events/s",
        "the same requests through the same app (auth, If-Match, body validation) doing no domain work",
        notes={
            "requests": len(sent),
            "empty_round_trips_per_s": round(round_trips),
            "raw_save_per_s": round(raw_save_rate),
            "of_raw_save": round(events / elapsed / raw_save_rate, 3),
        },
    )


def http_throughput(settings: Settings, per_client: int, log: Path, console: Console) -> list[Figure]:
    """Requests per second with several clients at once and several worker processes (PostgreSQL):
    each beside the very same requests replayed at once against the same app doing no domain work."""
    figures = []
    first = 100_000  # customers no other stage used: the store is shared with the PostgreSQL command stage
    for workers, clients in ((1, 1), (1, 4), (2, 4)):
        console.print(f"  HTTP API on PostgreSQL: {workers} worker(s), {clients} client(s) ...")
        sent: list[list[httpx.Request]] = [[] for _ in range(clients)]
        with api_server(settings, log, "--workers", str(workers)) as (url, tokens):
            seconds = _at_once(partial(_record_over_http, url, tokens, per_client, first, sent), clients)
        first += clients * per_client
        requests = sum(map(len, sent))
        with api_server(settings, log, "--workers", str(workers), "--no-domain-work", tokens=tokens) as (url, _):
            baseline_seconds = _at_once(partial(_replay, url, sent), clients)
        setup = f"{workers} worker{'s' * (workers > 1)}, {clients} client{'s' * (clients > 1)}"
        figures.append(
            Figure(
                f"commands (HTTP API, PostgreSQL, {setup})",
                requests / seconds,
                requests / baseline_seconds,
                "requests/s",
                "the same requests at once through the same app doing no domain work",
            )
        )
    return figures


def _record_over_http(
    url: str, tokens: dict[str, str], count: int, first: int, sent: list[list[httpx.Request]], client: int
) -> None:
    """One client's escalations through the API, keeping every request it sent."""
    with httpx.Client(base_url=url, timeout=60, event_hooks={"request": [sent[client].append]}) as http:
        list(history.escalations(ApiCommands(http, tokens), count, first=first + client * count))


def _replay(url: str, sent: list[list[httpx.Request]], client: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        for r in sent[client]:
            http.request(r.method, r.url.path, headers=_kept(r.headers), content=r.content)


def _at_once(action: Callable[[int], None], clients: int) -> float:
    """Seconds until `action(0)` ... `action(clients - 1)`, run at the same time on threads, all end."""
    with ThreadPoolExecutor(clients) as pool:
        began = time.perf_counter()
        for done in [pool.submit(action, i) for i in range(clients)]:
            done.result()
        return time.perf_counter() - began


def _kept(headers: httpx.Headers) -> dict[str, str]:
    """What a replay keeps of a request's headers (the Host differs: another port)."""
    return {k: v for k, v in headers.items() if k in ("authorization", "if-match", "content-type")}


def relay(settings: Settings, service: EscalationService, broker: str) -> tuple[Figure, int]:
    """Stored events to the topic, acknowledged; beside a raw producer sending the very same bytes."""
    prepare_topics(settings)
    ours_relay = build_relay(settings, service)
    ours_relay.connect()
    ours = timed(ours_relay.catch_up)
    ours_relay.close()
    notifications = service.recorder.select_notifications(
        start=None, limit=ours_relay.published + 1, topics=service.event_topics()
    )
    payloads = [
        envelope.encode(service.mapper.to_domain_event(n), n.id, settings.event_source)  # type: ignore[arg-type]
        for n in notifications
    ]
    raw_topic = f"{settings.events_topic}.raw"
    prepare_topics(settings.but(events_topic=raw_topic, dead_letter_topic=f"{raw_topic}.dlq"))
    if settings.kafka_client == "confluent-kafka":
        baseline = _raw_confluent_send(settings, raw_topic, payloads)
    else:
        producer = KafkaProducer(**producer_config(settings))

        def raw_send() -> int:
            for key, value, headers in payloads:
                producer.send(raw_topic, key=key, value=value, headers=headers)
            producer.flush()
            return len(payloads)

        producer.send(raw_topic, b"warm-up").get(timeout=30)
        baseline = timed(raw_send)
        producer.close()
    raw_is = f"{settings.kafka_client} producer, same bytes, acks and batching"
    # The target allows the slower of the two raw stages the relay stands on: sending, or reading the log.
    log_read = timed(lambda: raw_log_read(service))
    notes = {"raw_producer_per_s": round(baseline), "raw_log_read_per_s": round(log_read)}
    if log_read < baseline:
        baseline, raw_is = log_read, "eventsourcing notification log read in pages (slower than the raw producer)"
    figure = Figure(for_client("relay", settings.kafka_client), ours, baseline, "events/s", raw_is, broker, notes)
    return figure, len(payloads)


def raw_log_read(service: EscalationService, page: int = 2000) -> int:
    """Read the whole notification log in the relay's pages, and nothing else."""
    read, after = 0, None
    while True:
        found = service.recorder.select_notifications(
            start=after, limit=page, topics=service.event_topics(), inclusive_of_start=after is None
        )
        read += len(found)
        if len(found) < page:
            return read
        after = found[-1].id


def _raw_confluent_send(settings: Settings, topic: str, payloads: list[tuple[bytes, bytes, envelope.Headers]]) -> float:
    """A bare librdkafka producer with the relay's config; every delivery checked, as the relay does."""
    from confluent_kafka import Producer  # noqa: PLC0415 - optional: only with the [confluent] extra

    from infra.messaging import confluent_client  # noqa: PLC0415

    producer = Producer(confluent_client.producer_config(settings))
    failed: list[object] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(error)

    theirs: list[tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]] = [
        (key, value, list(headers)) for key, value, headers in payloads
    ]

    def raw_send() -> int:
        for key, value, headers in theirs:
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush()
        return len(payloads)

    producer.produce(topic, b"warm-up", on_delivery=delivered)
    producer.flush(30)
    rate = timed(raw_send)
    producer.close()
    if failed:
        msg = f"the raw confluent-kafka baseline failed to deliver {len(failed)} records: {failed[0]}"
        raise RuntimeError(msg)
    return rate


def raw_consume(settings: Settings, expected: int) -> int:
    """Read the whole topic once: poll, decode each value with orjson, nothing else.

    Counts records rather than trusting end offsets, which some brokers undercount.
    """
    if settings.kafka_client == "confluent-kafka":
        return _raw_confluent_consume(settings, expected)
    raw = KafkaConsumer(**consumer_config(settings, None))
    try:
        partitions = [
            TopicPartition(settings.events_topic, p) for p in raw.partitions_for_topic(settings.events_topic) or []
        ]
        raw.assign(partitions)
        raw.seek_to_beginning(*partitions)
        seen = 0
        while seen < expected:
            for records in raw.poll(timeout_ms=500).values():
                for record in records:
                    orjson.loads(record.value)
                    seen += 1
        return seen
    finally:
        raw.close()


def _raw_confluent_consume(settings: Settings, expected: int) -> int:
    """The same loop on a bare librdkafka consumer: consume a batch, decode each value, nothing else."""
    import confluent_kafka  # noqa: PLC0415 - optional: only with the [confluent] extra

    from infra.messaging import confluent_client  # noqa: PLC0415

    raw = confluent_kafka.Consumer(confluent_client.consumer_config(settings, None))
    try:
        topic = settings.events_topic
        found = raw.list_topics(topic, timeout=10).topics[topic].partitions
        raw.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in found])
        seen = 0
        while seen < expected:
            # consume waits for a full batch until its timeout: a short one, or the last batch waits it out.
            for message in raw.consume(settings.consumer_max_records, timeout=0.05):
                if message.error() is None:
                    orjson.loads(message.value() or b"")
                    seen += 1
        return seen
    finally:
        raw.close()


def projection(label: str, settings: Settings, baseline: float, broker: str, service: EscalationService) -> Figure:
    """One consumer folding the whole topic into a fresh read model (a rebuild, measured in-process).

    The label names the consumer: reporting, timeline, watcher (its schedules and deadlines; a
    rebuild fires nothing) or notifier (its context and the deliveries it would owe).
    """
    engine = read_model_engine(settings)
    folds: dict[str, Callable[[], int]] = {
        "timeline": lambda: rebuild_timeline(settings, engine).stats.applied,
        "watcher": lambda: _applied(rebuild_watcher(settings, engine, service).runner),
        "notifier": lambda: rebuild_notifier(settings, engine).stats.applied,
        "reporting": lambda: rebuild_reporting(settings, engine).stats.applied,
    }
    fold = next(f for name, f in folds.items() if name in label)
    ours = timed(fold)
    engine.dispose()
    raw_is = RAW_CONSUME_CONFLUENT if settings.kafka_client == "confluent-kafka" else RAW_CONSUME
    return Figure(for_client(label, settings.kafka_client), ours, baseline, "events/s", raw_is, broker=broker)


def _applied(runner: object) -> int:
    assert isinstance(runner, ConsumerRunner)  # the watcher's runner, behind its protocol
    return runner.stats.applied
