"""Server-side SVG charts: every mark has a shape and a title, text is escaped, values are printed."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.http.pages.charts import heatmap, swimlane
from projections.facts import RecordedEvent

OPENED = {
    "customer": "<script>alert(1)</script>",
    "region": "EMEA",
    "severity": "high",
    "summary": "x",
    "occurred_at": "2026-05-04T08:00:00+00:00",
}


def event(name: str, version: int, **data: object) -> RecordedEvent:
    return RecordedEvent(name, "e1", version, version, dict(data))


def test_the_swimlane_draws_stalls_as_bars_and_escapes_what_people_typed() -> None:
    events = [
        event("EscalationOpened", 1, **OPENED),
        event("ProgressStalled", 2, noticed_by="mia", reason="waiting", occurred_at="2026-05-05T08:00:00+00:00"),
        event("ProgressResumed", 3, note="back", occurred_at="2026-05-06T08:00:00+00:00"),
    ]

    svg = str(swimlane(events, datetime(2026, 5, 8, tzinfo=UTC)))

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.count('class="span stall"') == 1
    assert 'class="span phase-open"' in svg


def test_the_heatmap_prints_each_rate_and_marks_periods_without_data() -> None:
    rows = [
        {"lead_engineer": "ana", "month": "2026-05", "rate": 0.5},
        {"lead_engineer": "kenji", "month": "2026-06", "rate": 1.0},
    ]

    svg = str(heatmap(rows))

    assert ">50%<" in svg
    assert ">100%<" in svg
    assert svg.count('class="cell none"') == 2
    assert 'class="cell poor"' in svg
