"""The benchmarks still run (at a tiny size). Speed is measured by `make bench`, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.kafka


def test_the_benchmarks_run_and_write_every_figure_with_its_baseline(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = main(
        [
            *("--escalations", "12", "--bootstrap", kafka_bootstrap, "--no-postgres"),
            *("--rebuild-sizes", "150", "--latency-samples", "5", "--out", str(tmp_path / "bench.json")),
        ]
    )

    results = json.loads(out.read_text())
    assert results["machine"]["cores"]
    assert [(f["stage"], f["broker"]) for f in results["figures"]] == [
        ("commands (SQLite)", "-"),
        ("commands (HTTP API, SQLite)", "-"),
        ("relay", "Apache Kafka"),
        ("projection reporting (SQLite)", "Apache Kafka"),
        ("projection timeline (SQLite)", "Apache Kafka"),
        ("relay via confluent-kafka", "Apache Kafka"),
        ("projection reporting (SQLite) via confluent-kafka", "Apache Kafka"),
        ("projection timeline (SQLite) via confluent-kafka", "Apache Kafka"),
        ("rebuild reporting @ 150", "Apache Kafka"),
        ("rebuild timeline @ 150", "Apache Kafka"),
        ("rebuild reporting @ 150 via confluent-kafka", "Apache Kafka"),
        ("rebuild timeline @ 150 via confluent-kafka", "Apache Kafka"),
        ("relay", "Tansu"),
        ("projection reporting (SQLite)", "Tansu"),
        ("projection timeline (SQLite)", "Tansu"),
        ("relay via confluent-kafka", "Tansu"),
        ("projection reporting (SQLite) via confluent-kafka", "Tansu"),
        ("projection timeline (SQLite) via confluent-kafka", "Tansu"),
    ]
    assert all(f["ours"] > 0 and f["baseline"] > 0 for f in results["figures"])
    rebuilt = [f["notes"] for f in results["figures"] if f["stage"].startswith("rebuild")]
    assert all(n["events"] >= 150 and n["peak_mb"] > 0 for n in rebuilt)
    idle, busy, idle_confluent, busy_confluent = (lat["load"] for lat in results["latencies"])
    assert (idle, idle_confluent) == ("idle", "idle via confluent-kafka")
    assert busy.startswith("steady load, ")
    assert busy_confluent.startswith("steady load, ")
    assert busy_confluent.endswith(" via confluent-kafka")
    assert all(0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"] for lat in results["latencies"])
