"""Update compliance as the severity's cadence asks, in the customer region's working days. Pure.

An update is due when the working days since the last update (or since updates became owed) would
exceed the cadence: each such stretch is a window, met by an update before its deadline, missed
otherwise. Updates are owed from scope to monitoring and again after an interruption; never during
an update pause, during monitoring or after closing. A severity change starts a new window with the
new cadence from its moment. Each window is credited to whoever led when it was met or missed.

Windows are computed from the events alone (never the wall clock), so a rebuild gives the same
rows; the one open window is stored with its deadline and the views decide at query time whether
it is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from domain.calendar import RegionCalendar
from projections.facts import EscalationFacts, at

JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    number: int
    lead_engineer: str | None
    cadence_days: int
    opened_at: str  # the update, scope, resumption or missed deadline it counts from
    due_at: str  # the moment the last working day it allows ends (UTC)
    met_at: str | None  # the update that met it; None while open or when missed
    missed: bool
    day: str  # the region's local day it was met or fell due on
    gap_working_days: int  # working days since the last update (or since updates became owed)
    gap_since: str  # that last update (or start of owing): the open window's gap runs from it to now


@dataclass
class _Walk:
    calendar: RegionCalendar
    owed: bool = False
    cadence: int | None = None
    lead: str | None = None
    opened: datetime | None = None  # the open window counts from here
    since: datetime | None = None  # the last update or the start of owing
    resume_at: datetime | None = None


def windows(facts: EscalationFacts, calendar: RegionCalendar) -> list[Window]:
    """Every window of the escalation, the open one (if any) last with `met_at` None and not missed."""
    walk, found = _Walk(calendar), list[Window]()
    for moment, kind, value in _moments(facts, calendar):
        _miss_until(walk, moment, found)
        if kind == "update":
            if walk.opened is not None and walk.owed and walk.cadence is not None:
                found.append(_window(walk, len(found) + 1, met_at=moment))
            walk.since = moment
            walk.opened = moment if walk.owed else None
        elif kind == "lead":
            walk.lead = value
        elif kind == "cadence":
            walk.cadence = None if value is None else int(value)
            walk.opened = moment if walk.owed else None
        elif kind in {"owed", "resume"}:
            walk.owed, walk.since, walk.opened = True, moment, moment
        elif kind in {"not_owed", "paused"}:
            walk.owed, walk.opened = False, None
    if walk.owed and walk.opened is not None and walk.cadence is not None:
        found.append(_window(walk, len(found) + 1, met_at=None, missed=False))
    return found


def _moments(facts: EscalationFacts, calendar: RegionCalendar) -> list[tuple[datetime, str, str | None]]:
    moments = [(at(m.at), m.kind, m.value) for m in facts.marks]
    moments += [(at(u.occurred_at), "update", None) for u in facts.updates]
    moments += [
        (calendar.start_of(date.fromisoformat(m.value)), "resume", None)
        for m in facts.marks
        if m.kind == "paused" and m.value
    ]
    # A resumption after the escalation stopped owing updates (monitoring, closing) changes nothing.
    order = {"lead": 0, "cadence": 1, "owed": 2, "resume": 2, "update": 3, "paused": 4, "not_owed": 4}
    moments.sort(key=lambda m: (m[0], order[m[1]]))
    return [m for m in moments if m[1] != "resume" or _still_paused(moments, m[0])]


def _still_paused(moments: list[tuple[datetime, str, str | None]], resume: datetime) -> bool:
    before = [kind for moment, kind, _ in moments if moment < resume and kind in {"owed", "not_owed", "paused"}]
    return bool(before) and before[-1] == "paused"


def _miss_until(walk: _Walk, moment: datetime, found: list[Window]) -> None:
    """Every deadline that passed before `moment` with no update is a missed window."""
    while walk.owed and walk.opened is not None and walk.cadence is not None:
        due = walk.calendar.working_days_after(walk.opened, walk.cadence)
        if due > moment:
            return
        found.append(_window(walk, len(found) + 1, met_at=None, missed=True))
        walk.opened = due - JUST_BEFORE  # the next window counts from the last day this one allowed


def _window(walk: _Walk, number: int, *, met_at: datetime | None, missed: bool = False) -> Window:
    opened, cadence = walk.opened, walk.cadence
    if opened is None or cadence is None:
        msg = "a window needs the moment it opened and a cadence"
        raise ValueError(msg)
    due = walk.calendar.working_days_after(opened, cadence)
    resolved = met_at or (due - JUST_BEFORE)
    since = walk.since or opened
    return Window(
        number=number,
        lead_engineer=walk.lead,
        cadence_days=cadence,
        opened_at=_utc(opened),
        due_at=_utc(due),
        met_at=_utc(met_at) if met_at else None,
        missed=missed,
        day=walk.calendar.local_date(resolved).isoformat(),
        gap_working_days=walk.calendar.working_days_between(since, resolved),
        gap_since=_utc(since),
    )


def _utc(moment: datetime) -> str:
    """One text form for every instant the views compare: second precision, UTC offset spelled out."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
