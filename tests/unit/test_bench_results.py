"""The benchmark tables: every stage's own cost per event next to its ratio."""

from __future__ import annotations

import math

from bench.results import Figure, markdown


def test_a_stage_at_half_its_baselines_rate_costs_as_much_again_per_event() -> None:
    projection = Figure(
        "projection reporting (SQLite)", ours=20_000, baseline=40_000, unit="events/s", baseline_is="raw"
    )

    assert projection.ratio == 0.5
    assert math.isclose(projection.own_us, 25.0)  # 50 µs per event, of which the raw loop takes 25


def test_the_markdown_table_shows_the_own_cost_of_each_stage() -> None:
    relay = Figure("relay", ours=8_000, baseline=10_000, unit="events/s", baseline_is="raw producer")
    document = {"figures": [{**relay.__dict__, "ratio": relay.ratio, "own_us": relay.own_us}], "latencies": []}

    table = markdown(document)

    assert "| own µs/event |" in table.splitlines()[0]
    assert "| relay | - | 8,000 events/s | 10,000 events/s | 80% | 25.0 |" in table
