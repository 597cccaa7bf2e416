"""Charts as SVG, drawn on the server: no chart library, nothing fetched by the browser.

Every mark carries a `<title>` (a tooltip and a screen reader's text) and a shape or label of its
own, so colour is never the only signal. Styling comes from classes in the project's stylesheet:
the Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from projections.facts import RecordedEvent
from projections.timeline import summarize

LABEL_WIDTH = 130
WIDTH = 960
LANE = 30
PHASES = {
    "EscalationOpened": "open",
    "LeadEngineerAssigned": "led",
    "ScopeDefined": "scoped",
    "MonitoringStarted": "monitoring",
    "MonitoringInterrupted": "scoped",
    "EscalationClosed": "closed",
}
LANES = ("Phase", "Scope", "Updates", "Stalls", "Emergencies", "Monitoring", "Closing")


@dataclass(frozen=True)
class Axis:
    start: datetime
    end: datetime
    width: float = WIDTH - LABEL_WIDTH - 10

    def x(self, moment: datetime) -> float:
        span = max((self.end - self.start).total_seconds(), 1.0)
        return round(LABEL_WIDTH + (moment - self.start).total_seconds() / span * self.width, 1)


def _title(moment: datetime, text: str) -> str:
    return f"<title>{escape(moment.strftime('%Y-%m-%d %H:%M UTC'))}: {escape(text)}</title>"


def _mark(shape: str, x: float, y: float, css: str, title: str) -> str:
    """A point mark whose shape differs by kind (circle, square, diamond, triangle, cross, flag)."""
    r = 6
    shapes = {
        "circle": f'<circle cx="{x}" cy="{y}" r="{r}"/>',
        "square": f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}"/>',
        "diamond": f'<path d="M{x} {y - r - 2} L{x + r + 2} {y} L{x} {y + r + 2} L{x - r - 2} {y} Z"/>',
        "triangle": f'<path d="M{x} {y - r - 1} L{x + r + 1} {y + r} L{x - r - 1} {y + r} Z"/>',
        "cross": f'<path d="M{x - r} {y - r} L{x + r} {y + r} M{x + r} {y - r} L{x - r} {y + r}"/>',
        "flag": f'<path d="M{x} {y + r + 4} L{x} {y - r - 4} L{x + 2 * r} {y - r} L{x} {y}"/>',
    }
    return f'<g class="mark {css}" tabindex="0">{title}{shapes[shape]}</g>'


def _span(axis: Axis, start: datetime, end: datetime, y: float, css: str, title: str, label: str = "") -> str:
    x0, x1 = axis.x(start), axis.x(end)
    text = f'<text x="{x0 + 4}" y="{y + 4}" class="span-label">{escape(label)}</text>' if label else ""
    return (
        f'<g class="span {css}" tabindex="0">{title}'
        f'<rect x="{x0}" y="{y - 9}" width="{max(round(x1 - x0, 1), 2)}" height="18" rx="3"/>{text}</g>'
    )


POINTS: dict[str, tuple[str, str, str]] = {
    # event type: (lane, shape, css class)
    "ScopeDefined": ("Scope", "square", "scope"),
    "ExitCriterionMet": ("Scope", "circle", "criterion"),
    "UncertaintyRaised": ("Scope", "triangle", "uncertainty"),
    "UpdatePosted": ("Updates", "circle", "update"),
    "UpdatesPaused": ("Updates", "square", "paused"),
    "EscalatedToSpecialistTeam": ("Stalls", "diamond", "further"),
    "EmergencyRaised": ("Emergencies", "triangle", "emergency"),
    "EmergencyWorkReviewed": ("Emergencies", "circle", "reviewed"),
    "MonitoringInterrupted": ("Monitoring", "cross", "interruption"),
    "EscalationClosed": ("Closing", "flag", "closed"),
    "RetrospectiveOpened": ("Closing", "square", "retro"),
}


def swimlane(events: Sequence[RecordedEvent], now: datetime) -> Markup:
    """An escalation's life as lanes over time: phases, scope, updates, stalls, emergencies, monitoring, closing."""
    if not events:
        return Markup("")
    start = events[0].occurred_at
    closed = "EscalationClosed" in {e.name for e in events}
    end = max(start, *(e.occurred_at for e in events), *([] if closed else [now])) + timedelta(hours=2)
    axis = Axis(start, end)
    lane_y = {name: 40 + i * LANE for i, name in enumerate(LANES)}
    parts = [*_lanes(lane_y), *_ticks(axis, len(LANES))]
    parts += _phase_spans(events, axis, lane_y["Phase"], end)
    parts += _interval_spans(events, axis, lane_y, end)
    for event in events:
        if event.name in POINTS:
            lane, shape, css = POINTS[event.name]
            parts.append(
                _mark(shape, axis.x(event.occurred_at), lane_y[lane], css, _title(event.occurred_at, summarize(event)))
            )
    height = 40 + len(LANES) * LANE
    title = "Timeline of the escalation: lanes for phase, scope, updates, stalls, emergencies, monitoring and closing"
    return _svg("swimlane", WIDTH, height, title, parts)


def _lanes(lane_y: dict[str, int]) -> Iterable[str]:
    for name, y in lane_y.items():
        yield f'<line class="lane" x1="{LABEL_WIDTH}" x2="{WIDTH - 10}" y1="{y}" y2="{y}"/>'
        yield f'<text class="lane-label" x="4" y="{y + 4}">{name}</text>'


def _ticks(axis: Axis, lanes: int) -> Iterable[str]:
    days = max((axis.end - axis.start).days, 1)
    step = max(1, days // 10)
    day = axis.start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    bottom = 40 + lanes * LANE - 15
    while day < axis.end:
        x = axis.x(day)
        yield f'<line class="tick" x1="{x}" x2="{x}" y1="22" y2="{bottom}"/>'
        yield f'<text class="tick-label" x="{x}" y="16">{day.strftime("%d %b")}</text>'
        day += timedelta(days=step)


def _phase_spans(events: Sequence[RecordedEvent], axis: Axis, y: int, end: datetime) -> list[str]:
    # Scope is redefined in new versions; only the first definition (or a return from monitoring) starts a phase.
    phases: list[tuple[datetime, str, RecordedEvent]] = []
    for e in events:
        phase = PHASES.get(e.name)
        if phase is None or (phase == "scoped" and phases and phases[-1][1] not in ("open", "led", "monitoring")):
            continue
        phases.append((e.occurred_at, phase, e))
    spans = []
    for (moment, phase, e), nxt in zip(phases, [*(p[0] for p in phases[1:]), end], strict=True):
        if phase != "closed":
            title = _title(moment, f"{phase} until {nxt.strftime('%Y-%m-%d %H:%M')}: {summarize(e)}")
            spans.append(_span(axis, moment, nxt, y, f"phase-{phase}", title, phase))
    return spans


def _interval_spans(events: Sequence[RecordedEvent], axis: Axis, lane_y: dict[str, int], end: datetime) -> list[str]:
    """Stalls (stalled to resumed) and monitoring (started to interrupted or closed) as bars."""
    pairs = {
        "ProgressStalled": ("ProgressResumed", "Stalls", "stall"),
        "MonitoringStarted": ("MonitoringInterrupted|EscalationClosed", "Monitoring", "monitoring"),
    }
    spans = []
    for index, event in enumerate(events):
        if event.name not in pairs:
            continue
        closers, lane, css = pairs[event.name]
        stop = next((e.occurred_at for e in events[index + 1 :] if e.name in closers.split("|")), end)
        spans.append(
            _span(axis, event.occurred_at, stop, lane_y[lane], css, _title(event.occurred_at, summarize(event)))
        )
    return spans


def heatmap(rows: Sequence[dict[str, Any]]) -> Markup:
    """Update compliance per lead and period (week when the report has it, else month), with the rate printed."""
    period_key = "week" if any("week" in r for r in rows) else "month"
    leads = sorted({str(r.get("lead_engineer") or "-") for r in rows})
    periods = sorted({str(r.get(period_key) or "-") for r in rows})
    rates: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.get("rate") is not None:
            rates.setdefault((str(r.get("lead_engineer") or "-"), str(r.get(period_key) or "-")), []).append(r["rate"])
    cell_w, cell_h, left, top = 80, 30, 140, 30
    parts = [
        f'<text class="tick-label" x="{left + i * cell_w + 4}" y="20">{escape(p)}</text>' for i, p in enumerate(periods)
    ]
    for j, lead in enumerate(leads):
        y = top + j * cell_h
        parts.append(f'<text class="lane-label" x="4" y="{y + 20}">{escape(lead)}</text>')
        for i, period in enumerate(periods):
            values = rates.get((lead, period))
            rate = sum(values) / len(values) if values else None
            css = "none" if rate is None else "good" if rate >= 0.9 else "fair" if rate >= 0.6 else "poor"
            label = "-" if rate is None else f"{rate:.0%}"
            parts.append(
                f'<g class="cell {css}" tabindex="0"><title>{escape(lead)}, {escape(period)}: {label}</title>'
                f'<rect x="{left + i * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}"/>'
                f'<text x="{left + i * cell_w + 8}" y="{y + 19}">{label}</text></g>'
            )
    width, height = left + max(len(periods), 1) * cell_w + 10, top + max(len(leads), 1) * cell_h + 10
    return _svg("heatmap", width, height, f"Update compliance by lead and {period_key}", parts)


def bars(rows: Sequence[tuple[str, float]], label: str) -> Markup:
    """Horizontal bars with their value written beside them."""
    top = max((value for _, value in rows), default=1) or 1
    parts = []
    for i, (name, value) in enumerate(rows):
        y, w = 10 + i * 26, round(value / top * 500, 1)
        parts.append(
            f'<g class="bar" tabindex="0"><title>{escape(name)}: {value:g}</title>'
            f'<text class="lane-label" x="4" y="{y + 14}">{escape(name)}</text>'
            f'<rect x="200" y="{y}" width="{max(w, 1)}" height="18"/>'
            f'<text x="{206 + w}" y="{y + 14}">{value:g}</text></g>'
        )
    height = 20 + len(rows) * 26
    return _svg("bars", 760, height, label, parts)


def strips(series: dict[str, list[tuple[str, float]]], unit: str = "hours") -> Markup:
    """One row of dots per milestone (one dot per escalation), the median as a labelled bar."""
    top = max((v for values in series.values() for _, v in values), default=1) or 1
    left, width = 180, 540
    parts = []
    for i, (name, values) in enumerate(series.items()):
        y = 20 + i * 36
        parts.append(f'<text class="lane-label" x="4" y="{y + 4}">{escape(name)}</text>')
        parts.append(f'<line class="lane" x1="{left}" x2="{left + width}" y1="{y}" y2="{y}"/>')
        for who, value in values:
            x = round(left + value / top * width, 1)
            parts.append(
                f'<g class="mark dot" tabindex="0"><title>{escape(who)}: {value:g} {unit}</title>'
                f'<circle cx="{x}" cy="{y}" r="5"/></g>'
            )
        if values:
            ordered = sorted(v for _, v in values)
            median = ordered[len(ordered) // 2]
            x = round(left + median / top * width, 1)
            parts.append(
                f'<g class="median"><title>median {median:g} {unit}</title>'
                f'<line x1="{x}" x2="{x}" y1="{y - 12}" y2="{y + 12}"/>'
                f'<text x="{x + 4}" y="{y - 8}">median {median:g}</text></g>'
            )
        else:
            parts.append(f'<text x="{left}" y="{y + 4}">not reached yet</text>')
    parts.append(f'<text class="tick-label" x="{left}" y="{30 + len(series) * 36}">0</text>')
    parts.append(f'<text class="tick-label" x="{left + width - 40}" y="{30 + len(series) * 36}">{top:g} {unit}</text>')
    height = 40 + len(series) * 36
    return _svg("strips", 820, height, "Distribution of time to each milestone", parts)


def _svg(css: str, width: float, height: float, title: str, parts: list[str]) -> Markup:
    # Every text placed into `parts` went through escape(); numbers and class names are ours.
    return Markup(  # noqa: S704
        f'<svg class="{css}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )
