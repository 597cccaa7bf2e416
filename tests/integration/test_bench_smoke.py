"""The benchmarks still run (at a tiny size). Speed is measured by `make bench`, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.kafka


def test_the_benchmarks_run_and_write_every_figure_with_its_baseline(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = main(
        ["--escalations", "12", "--bootstrap", kafka_bootstrap, "--no-postgres", "--out", str(tmp_path / "bench.json")]
    )

    results = json.loads(out.read_text())
    assert results["machine"]["cores"]
    assert [f["stage"] for f in results["figures"]] == ["commands (SQLite)", "relay", "projection (SQLite read model)"]
    assert all(f["ours"] > 0 and f["baseline"] > 0 for f in results["figures"])
