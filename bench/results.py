"""What a benchmark run found: figures beside their baselines, latencies, machine facts; table and JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figure:
    """One stage's rate beside the raw library's rate on the same data, in the same run."""

    stage: str
    ours: float
    baseline: float
    unit: str
    baseline_is: str
    broker: str = "-"  # the command stages use no broker
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    @property
    def own_us(self) -> float:
        """Microseconds per item the stage spends on top of its baseline: what our code costs."""
        if not self.ours or not self.baseline:
            return float("nan")
        return 1e6 / self.ours - 1e6 / self.baseline


@dataclass
class Latency:
    """Milliseconds from a command's response to its effect being visible in the read model."""

    load: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    broker: str = "Apache Kafka"


@dataclass
class Run:
    events: int
    figures: list[Figure] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)


def timed(action: Callable[[], int]) -> float:
    """Items per second of one run of `action` (which returns how many items it handled)."""
    began = time.perf_counter()
    count = action()
    return count / (time.perf_counter() - began)


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def machine(brokers: dict[str, str]) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            name: version(name)
            for name in (
                "kafka-python",
                "crc32c",
                "confluent-kafka",
                "eventsourcing",
                "sqlalchemy",
                "psycopg",
                "orjson",
                "fastapi",
            )
            if _installed(name)
        },
        "brokers": brokers,
    }


def _installed(name: str) -> bool:
    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


def _notes(f: Figure) -> str:
    n = f.notes
    if "empty_round_trips_per_s" in n:
        raw = f"; {n['of_raw_save']:.0%} of raw save ({n['raw_save_per_s']:,}/s)" if "of_raw_save" in n else ""
        return f"one request per event; an empty GET /healthz round trip alone: {n['empty_round_trips_per_s']:,}/s{raw}"
    if "raw_log_read_per_s" in n:
        producer, log = n["raw_producer_per_s"], n["raw_log_read_per_s"]
        return f"raw producer {producer:,}/s; raw read of the event store's log {log:,}/s"
    if "seconds" not in n:
        return ""
    return (
        f"{n['events']:,} events in {n['seconds']} s, peak {n['peak_mb']} MB "
        f"(raw: {n['raw_seconds']} s, {n['raw_peak_mb']} MB)"
    )


def report(run: Run, brokers: dict[str, str], out: Path | None, console: Console) -> Path:
    table = Table(title=f"Escalation Ledger benchmarks ({run.events:,} events recorded)")
    for column in ("stage", "broker", "ours", "baseline", "ratio", "own µs/event", "notes"):
        table.add_column(column, overflow="fold")
    for f in run.figures:
        table.add_row(
            f.stage,
            f.broker,
            f"{f.ours:,.0f} {f.unit}",
            f"{f.baseline:,.0f} {f.unit}",
            f"{f.ratio:.0%}",
            f"{f.own_us:,.1f}",
            _notes(f),
        )
    console.print(table)
    for baseline_is in dict.fromkeys(f.baseline_is for f in run.figures):
        named = ", ".join(dict.fromkeys(f.stage.split(" @ ")[0] for f in run.figures if f.baseline_is == baseline_is))
        console.print(f"  baseline of {named}: {baseline_is}")
    if run.latencies:
        latency = Table(title="End to end: command response -> visible in the reporting read model")
        for column in ("load", "broker", "samples", "p50", "p99", "max"):
            latency.add_column(column)
        for lat in run.latencies:
            latency.add_row(
                lat.load,
                lat.broker,
                str(lat.samples),
                f"{lat.p50_ms:.1f} ms",
                f"{lat.p99_ms:.1f} ms",
                f"{lat.max_ms:.1f} ms",
            )
        console.print(latency)
    RESULTS.mkdir(exist_ok=True)
    out = out or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    document = {
        "machine": machine(brokers),
        "events": run.events,
        "figures": [asdict(f) | {"ratio": f.ratio, "own_us": f.own_us} for f in run.figures],
        "latencies": [asdict(lat) for lat in run.latencies],
    }
    out.write_text(json.dumps(document, indent=2))
    console.print(f"written {out}")
    return out


def markdown(document: dict[str, Any]) -> str:
    """A results file as the Markdown tables in bench/README.md."""
    lines = [
        "| stage | broker | ours | baseline | ratio | own µs/event | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in document["figures"]:
        figure = Figure(**{k: v for k, v in f.items() if k not in {"ratio", "own_us"}})
        lines.append(
            f"| {figure.stage} | {figure.broker} | {figure.ours:,.0f} {figure.unit} | "
            f"{figure.baseline:,.0f} {figure.unit} | {figure.ratio:.0%} | {figure.own_us:,.1f} | {_notes(figure)} |"
        )
    lines += ["", "| end to end | broker | samples | p50 | p99 | max |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {lat['load']} | {lat['broker']} | {lat['samples']} | {lat['p50_ms']:.1f} ms | "
        f"{lat['p99_ms']:.1f} ms | {lat['max_ms']:.1f} ms |"
        for lat in document["latencies"]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
