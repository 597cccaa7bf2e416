"""Benchmarks: each stage beside the raw library it is built on, measured in the same run.

    python -m bench [--events N] [--full]

Prints a table and writes bench/results/<timestamp>.json with machine facts, every figure, every
baseline and every ratio. Runs against real Apache Kafka (the test broker from infra/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from domain.service import EscalationService
from infra import envelope
from infra.bootstrap import (
    build_relay,
    build_service,
    consumer_config,
    prepare_topics,
    read_model_engine,
    rebuild_reporting,
)
from infra.brokers import ApacheKafka
from infra.kafka_clients import producer_config
from infra.postgres_server import PrivatePostgres
from infra.settings import Settings
from infra.stories import ldap_proxy_story, quiet_escalation

RESULTS = Path(__file__).parent / "results"
console = Console()


@dataclass
class Figure:
    stage: str
    ours: float
    baseline: float
    unit: str
    baseline_name: str

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")


def timed(action: Callable[[], int]) -> float:
    """Items per second of one run of `action` (which returns how many items it handled)."""
    began = time.perf_counter()
    count = action()
    return count / (time.perf_counter() - began)


def generate(service: EscalationService, escalations: int, seed: int = 7) -> int:
    """Realistic escalations from a seeded generator: the full LDAP story and smaller ones, many customers."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    recorded = 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("recording escalations", total=escalations)
        for i in range(escalations):
            if i % 10 == 0:
                eid = ldap_proxy_story(service, start + timedelta(minutes=i))
            else:
                eid = quiet_escalation(
                    service,
                    start + timedelta(hours=rng.randint(0, 400)),
                    customer=f"Customer {i}",
                    region=rng.choice(["AMER", "EMEA", "APAC"]),
                    lead=f"lead{rng.randint(1, 40)}",
                )
            recorded += service.escalation(eid).version
            bar.advance(task)
    return recorded


class Trivial(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name


def raw_saves(env: dict[str, str], count: int) -> int:
    app: Application[Any] = Application(env)
    for i in range(count):
        app.save(Trivial(name=f"t{i}"))
    return count


def stage_commands(
    label: str, settings: Settings, raw_env: dict[str, str], escalations: int
) -> tuple[Figure, EscalationService, int]:
    service = build_service(settings)
    began = time.perf_counter()
    recorded = generate(service, escalations)
    ours = recorded / (time.perf_counter() - began)
    baseline = timed(lambda: raw_saves(raw_env, recorded))
    return Figure(label, ours, baseline, "events/s", "eventsourcing Application.save, same store"), service, recorded


def stage_relay(settings: Settings, service: EscalationService, recorded: int) -> Figure:
    prepare_topics(settings)
    relay = build_relay(settings, service)
    relay.connect()

    ours = timed(relay.catch_up)
    relay.close()
    # The baseline sends the very same bytes with the same producer settings.
    topics = service.event_topics()
    notifications = service.recorder.select_notifications(start=None, limit=recorded + 1000, topics=topics)
    payloads = [
        envelope.encode(service.mapper.to_domain_event(n), n.id, settings.event_source)  # type: ignore[arg-type]
        for n in notifications
    ]
    producer = KafkaProducer(**producer_config(settings))
    raw_topic = f"{settings.events_topic}.raw"
    prepare_topics(settings.but(events_topic=raw_topic, dead_letter_topic=f"{raw_topic}.dlq"))

    def raw_send() -> int:
        for key, value, headers in payloads:
            producer.send(raw_topic, key=key, value=value, headers=headers)
        producer.flush()
        return len(payloads)

    producer.send(raw_topic, b"warm-up").get(timeout=30)
    baseline = timed(raw_send)
    producer.close()
    return Figure("relay", ours, baseline, "events/s", "kafka-python producer, same bytes and settings")


def raw_consume_rate(settings: Settings, recorded: int) -> float:
    raw = KafkaConsumer(**consumer_config(settings, None))
    partitions = [
        TopicPartition(settings.events_topic, p) for p in raw.partitions_for_topic(settings.events_topic) or []
    ]
    raw.assign(partitions)

    def raw_consume() -> int:
        raw.seek_to_beginning(*partitions)
        seen = 0
        while seen < recorded:
            for records in raw.poll(timeout_ms=500, max_records=2000).values():
                for record in records:
                    orjson.loads(record.value)
                    seen += 1
        return seen

    rate = timed(raw_consume)
    raw.close()
    return rate


def stage_projection(label: str, settings: Settings, baseline: float) -> Figure:
    engine = read_model_engine(settings)
    ours = timed(lambda: rebuild_reporting(settings, engine).stats.applied)
    return Figure(label, ours, baseline, "events/s", "kafka-python poll + orjson.loads")


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka-python": version("kafka-python"),
        "eventsourcing": version("eventsourcing"),
        "sqlalchemy": version("sqlalchemy"),
        "broker": "Apache Kafka 4.1 (single-node KRaft, loopback)",
    }


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--escalations", type=int, default=1500, help="escalations to record (about 6 events each)")
    parser.add_argument("--full", action="store_true", help="the large profile")
    parser.add_argument("--bootstrap", help="use this running Kafka instead of starting one")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="skip the PostgreSQL stages")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/results/)")
    args = parser.parse_args(argv)
    escalations = args.escalations * (10 if args.full else 1)
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = stack.enter_context(ApacheKafka())
            console.print(f"Apache Kafka ready in {broker.started_in:.1f}s at {broker.bootstrap_servers}")
            bootstrap = broker.bootstrap_servers
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ledger-bench-")))
        figures: list[Figure] = []
        pg = PrivatePostgres() if args.postgres else None
        if pg is not None:
            stack.enter_context(pg)
            events, raw = pg.create_database("bench_events"), pg.create_database("bench_raw")
            pg_settings = Settings(
                event_store="postgres",
                postgres_host=events.host,
                postgres_port=events.port,
                postgres_user=events.user,
                postgres_password=events.password,
                postgres_dbname=events.dbname,
                data_dir=tmp / "pg",
            )
            raw_env = pg_settings.but(postgres_dbname=raw.dbname).event_store_env()
            figures.append(stage_commands("commands (PostgreSQL)", pg_settings, raw_env, escalations)[0])
        sqlite_settings = Settings(data_dir=tmp)
        raw_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "raw.db")}
        figure, service, recorded = stage_commands("commands (SQLite)", sqlite_settings, raw_env, escalations)
        figures.append(figure)
        settings = sqlite_settings.but(kafka_bootstrap_servers=bootstrap, events_topic=f"bench{uuid4().hex[:6]}")
        figures.append(stage_relay(settings, service, recorded))
        consume_rate = raw_consume_rate(settings, recorded)
        figures.append(stage_projection("projection (SQLite read model)", settings, consume_rate))
        if pg is not None:
            read_model = pg.create_database("bench_read_model")
            figures.append(
                stage_projection(
                    "projection (PostgreSQL read model)", settings.but(read_model_url=read_model.url), consume_rate
                )
            )
    return report(figures, recorded, args.out)


def report(figures: list[Figure], recorded: int, out: Path | None) -> Path:
    table = Table(title=f"Escalation Ledger benchmarks ({recorded} events)")
    for column in ("stage", "ours", "baseline", "ratio", "baseline is"):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f.stage, f"{f.ours:,.0f} {f.unit}", f"{f.baseline:,.0f} {f.unit}", f"{f.ratio:.0%}", f.baseline_name
        )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = out or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "events": recorded,
                "figures": [
                    {
                        "stage": f.stage,
                        "ours": f.ours,
                        "baseline": f.baseline,
                        "ratio": f.ratio,
                        "unit": f.unit,
                        "baseline_is": f.baseline_name,
                    }
                    for f in figures
                ],
            },
            indent=2,
        )
    )
    console.print(f"written {out}")
    return out


if __name__ == "__main__":
    main()
