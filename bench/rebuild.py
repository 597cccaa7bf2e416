"""Rebuilds from offset zero as history grows (10k, 100k, 1M events), with each process's peak memory.

The topic grows in place: escalations are recorded (in memory, through the domain) and relayed
until it holds the next size, then each read model is rebuilt without downtime by its own process
(`rebuild_live`: into a staged SQLite file beside the live one, then switched in), beside a raw
consume of the same topic in its own process. "own µs" is what the stage adds per event on top of
the raw loop: 1e6/ours - 1e6/raw. Peak memory is the process's
maximum resident set size, so what the consumer holds must not grow with history.

    python -m bench.rebuild reporting|timeline|raw EXPECTED   (settings from ESCALATIONS_* variables)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from bench import history, stages
from bench.results import Figure
from domain.service import EscalationService
from infra.bootstrap import build_relay, prepare_topics, read_model_engine, rebuild_live, utc_now
from infra.settings import Settings

READ_MODELS = ("reporting", "timeline")


@dataclass
class Measured:
    records: int
    seconds: float
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def label(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:g}M"
    return f"{size / 1000:g}k" if size >= 1000 else str(size)


def stage(
    settings: Settings,
    sizes: list[int],
    work: Path,
    console: Console,
    broker: str,
    clients: tuple[str, ...] = ("kafka-python",),
) -> list[Figure]:
    settings = settings.but(data_dir=work)
    prepare_topics(settings)
    # In memory: the event store is not what this stage measures, and 1M events must record quickly.
    service = EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": "1000"}, clock=utc_now
    )
    relay = build_relay(settings, service)
    relay.connect()
    figures: list[Figure] = []
    recorded = 0
    try:
        for size in sizes:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(f"growing the topic to {label(size)} events", total=size)
                bar.update(task, completed=relay.published)
                while relay.published < size:
                    for _ in history.escalations(service, 50, first=recorded):
                        recorded += 1
                    relay.catch_up()
                    bar.update(task, completed=relay.published)
            for client in clients:
                client_settings = settings.but(kafka_client=client)
                figures.extend(measure_size(client_settings, size, relay.published, work, console, broker))
    finally:
        relay.close()
    return figures


def measure_size(settings: Settings, size: int, events: int, work: Path, console: Console, broker: str) -> list[Figure]:
    """Each read model rebuilt with the settings' Kafka client, beside that client's raw loop."""
    raw = run_worker("raw", settings, events, work, console)
    raw_is = stages.RAW_CONSUME_CONFLUENT if settings.kafka_client == "confluent-kafka" else stages.RAW_CONSUME
    figures = []
    for name in READ_MODELS:
        ours = run_worker(name, settings, events, work, console)
        figures.append(
            Figure(
                stages.for_client(f"rebuild {name} @ {label(size)}", settings.kafka_client),
                ours.rate,
                raw.rate,
                "events/s",
                raw_is + ", own process",
                broker=broker,
                notes={
                    "events": events,
                    "seconds": round(ours.seconds, 1),
                    "peak_mb": round(ours.peak_mb),
                    "raw_seconds": round(raw.seconds, 1),
                    "raw_peak_mb": round(raw.peak_mb),
                },
            )
        )
    return figures


def run_worker(name: str, settings: Settings, events: int, work: Path, console: Console) -> Measured:
    database = work / f"rebuild-{name}-{events}.db"
    database.unlink(missing_ok=True)
    worker_settings = settings.but(read_model_url=f"sqlite:///{database}")
    console.print(f"  rebuilding {name} from {events:,} events with {settings.kafka_client} ...")
    done = subprocess.run(
        [sys.executable, "-m", "bench.rebuild", name, str(events)],
        env={**os.environ, **worker_settings.as_env()},
        stdout=subprocess.PIPE,
        check=True,
    )
    database.unlink(missing_ok=True)
    found = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return Measured(found["records"], found["seconds"], found["peak_mb"])


def worker(name: str, expected: int) -> Measured:
    """In its own process: one rebuild (or raw consume) of the whole topic, with progress on stderr."""
    settings = Settings()
    console = Console(stderr=True)
    began = time.perf_counter()
    if name == "raw":
        records = stages.raw_consume(settings, expected)
    else:
        engine = read_model_engine(settings)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"rebuilding {name}", total=expected)
            runner = rebuild_live(settings, engine, name, lambda read, _known: bar.update(task, completed=read))
        records = runner.stats.applied
    seconds = time.perf_counter() - began
    return Measured(records, seconds, peak_resident_mb())


def peak_resident_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not getrusage's ru_maxrss: on Linux a child started by fork and exec inherits its parent's
    peak there, which here is the generator's whole history.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # reported in kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


if __name__ == "__main__":
    found = worker(sys.argv[1], int(sys.argv[2]))
    print(json.dumps({"records": found.records, "seconds": found.seconds, "peak_mb": found.peak_mb}))
