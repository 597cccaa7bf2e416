"""The questions a support organisation asks, answered from the reporting read model.

Each report is a function of a connection and "now" that returns plain rows, so the command line
can print it as a table, CSV or JSON. Aggregates that SQL dialects disagree on (medians, working
days) are computed here, in one place.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.calendar import hours_between, working_days
from projections.deadline_tables import overdue_updates
from projections.facts import at
from projections.tables import (
    escalation_emergencies,
    escalation_specialist_teams,
    escalation_stalls,
    escalation_tickets,
    escalation_uncertainties,
    escalation_updates,
    escalations,
)

Row = dict[str, Any]
Report = Callable[[sa.Connection, datetime], list[Row]]


def active_escalations(conn: sa.Connection, now: datetime) -> list[Row]:
    query = sa.select(escalations).where(escalations.c.status != "closed").order_by(escalations.c.opened_at)
    overdue = overdue_updates(conn)  # the watcher's: since when an update is overdue
    return [
        {
            "escalation_id": r.escalation_id,
            "customer": r.customer,
            "region": r.region,
            "severity": r.severity,
            "status": r.status,
            "lead_engineer": r.lead_engineer,
            "dri_manager": r.dri_manager,
            "days_open": (now - at(r.opened_at)).days,
            "hours_since_update": round(hours_between(at(r.last_update_at), now), 1) if r.last_update_at else None,
            "exit_criteria": f"{r.exit_criteria_met}/{r.exit_criteria_total}",
            "stalled": r.stalled,
            "update_overdue_since": overdue.get(r.escalation_id),
        }
        for r in conn.execute(query)
    ]


def update_compliance(conn: sa.Connection, now: datetime) -> list[Row]:
    """Per working day of each escalation while it was open: was an update posted? Rates by lead, region, month."""
    posted: dict[str, set[str]] = defaultdict(set)
    for r in conn.execute(sa.select(escalation_updates.c.escalation_id, escalation_updates.c.day)):
        posted[r.escalation_id].add(r.day)
    tally: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in conn.execute(sa.select(escalations).where(escalations.c.scope_defined_at.is_not(None))):
        first = at(e.scope_defined_at).date()
        last = (at(e.monitoring_started_at) if e.monitoring_started_at else now).date()
        for day in working_days(first, min(last, now.date())):
            key = (e.lead_engineer or "-", e.region, day.strftime("%Y-%m"))
            tally[key][0] += day.isoformat() in posted[e.escalation_id]
            tally[key][1] += 1
    return [
        {
            "lead_engineer": lead,
            "region": region,
            "month": month,
            "days_with_update": done,
            "working_days": total,
            "rate": round(done / total, 3) if total else None,
        }
        for (lead, region, month), (done, total) in sorted(tally.items())
    ]


def lifecycle_durations(conn: sa.Connection, _: datetime) -> list[Row]:
    """Hours from opening to each milestone: median and p90 by severity, region and quarter."""
    groups: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    milestones = ("hours_to_lead", "hours_to_scope", "hours_to_monitoring", "hours_to_close")
    for e in conn.execute(sa.select(escalations)):
        opened = at(e.opened_at)
        key = (e.severity, e.region, f"{opened.year}-Q{(opened.month - 1) // 3 + 1}")
        for milestone in milestones:
            value = getattr(e, milestone)
            if value is not None:
                groups[key][milestone].append(value)
    rows = []
    for (severity, region, quarter), values in sorted(groups.items()):
        row: Row = {"severity": severity, "region": region, "quarter": quarter}
        for milestone in milestones:
            row[f"{milestone}_median"] = _round(statistics.median(values[milestone])) if values[milestone] else None
            row[f"{milestone}_p90"] = _round(_p90(values[milestone])) if values[milestone] else None
        rows.append(row)
    return rows


def stalls_and_further_escalations(conn: sa.Connection, now: datetime) -> list[Row]:
    stalls: dict[str, list[Any]] = defaultdict(list)
    for s in conn.execute(sa.select(escalation_stalls)):
        stalls[s.escalation_id].append(s)
    teams: dict[str, list[Any]] = defaultdict(list)
    for t in conn.execute(sa.select(escalation_specialist_teams)):
        teams[t.escalation_id].append(t)
    rows = []
    for e in conn.execute(
        sa.select(escalations.c.escalation_id, escalations.c.customer).order_by(escalations.c.customer)
    ):
        mine, sent = stalls[e.escalation_id], teams[e.escalation_id]
        if not mine and not sent:
            continue
        stalled_hours = sum(hours_between(at(s.started_at), at(s.ended_at) if s.ended_at else now) for s in mine)
        waits = [t.hours_since_stall for t in sent if t.hours_since_stall is not None]
        rows.append(
            {
                "escalation_id": e.escalation_id,
                "customer": e.customer,
                "stalls": len(mine),
                "hours_stalled": _round(stalled_hours),
                "specialist_teams": ", ".join(t.team for t in sent),
                "hours_from_stall_to_escalation": _round(min(waits)) if waits else None,
            }
        )
    return rows


def lead_workload(conn: sa.Connection, _: datetime) -> list[Row]:
    query = (
        sa.select(escalations.c.lead_engineer, escalations.c.region, sa.func.count().label("active_escalations"))
        .where(escalations.c.status != "closed", escalations.c.lead_engineer.is_not(None))
        .group_by(escalations.c.lead_engineer, escalations.c.region)
        .order_by(sa.desc("active_escalations"), escalations.c.lead_engineer)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def scope(conn: sa.Connection, _: datetime) -> list[Row]:
    related: dict[str, list[str]] = defaultdict(list)
    unrelated: dict[str, list[str]] = defaultdict(list)
    claims: dict[str, set[str]] = defaultdict(set)
    for t in conn.execute(sa.select(escalation_tickets).order_by(escalation_tickets.c.ticket)):
        (related if t.relation == "related" else unrelated)[t.escalation_id].append(t.ticket)
        if t.relation == "related":
            claims[t.ticket].add(t.escalation_id)
    rows = []
    for e in conn.execute(
        sa.select(escalations.c.escalation_id, escalations.c.customer).order_by(escalations.c.customer)
    ):
        mine = related[e.escalation_id]
        rows.append(
            {
                "escalation_id": e.escalation_id,
                "customer": e.customer,
                "related_tickets": len(mine),
                "unrelated_tickets": len(unrelated[e.escalation_id]),
                "claimed_by_another_escalation": ", ".join(t for t in mine if len(claims[t]) > 1),
            }
        )
    return rows


def uncertainty_to_risk(conn: sa.Connection, now: datetime) -> list[Row]:
    rows = []
    for u in conn.execute(sa.select(escalation_uncertainties).order_by(escalation_uncertainties.c.raised_at)):
        end = at(u.settled_at) if u.settled_at else now
        rows.append(
            {
                "escalation_id": u.escalation_id,
                "uncertainty_id": u.uncertainty_id,
                "question": u.question,
                "state": u.state,
                "hours_unknown": round(hours_between(at(u.raised_at), end), 1),
                "became_risk": u.became_risk,
            }
        )
    return rows


def emergencies(conn: sa.Connection, _: datetime) -> list[Row]:
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for x in conn.execute(sa.select(escalation_emergencies)):
        tally[x.escalation_id][0] += 1
        tally[x.escalation_id][1] += x.out_of_hours
        tally[x.escalation_id][2] += x.reviewed
    names = {
        e.escalation_id: e.customer
        for e in conn.execute(sa.select(escalations.c.escalation_id, escalations.c.customer))
    }
    return [
        {
            "escalation_id": key,
            "customer": names.get(key, "?"),
            "emergencies": count,
            "out_of_hours_share": round(ooh / count, 3),
            "reviewed": reviewed,
            "unreviewed": count - reviewed,
        }
        for key, (count, ooh, reviewed) in sorted(tally.items(), key=lambda item: names.get(item[0], ""))
    ]


REPORTS: dict[str, Report] = {
    "active": active_escalations,
    "compliance": update_compliance,
    "durations": lifecycle_durations,
    "stalls": stalls_and_further_escalations,
    "workload": lead_workload,
    "scope": scope,
    "uncertainty": uncertainty_to_risk,
    "emergencies": emergencies,
}


def _round(value: float) -> float:
    return round(value, 2)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        if len(ordered) < 10
        else statistics.quantiles(ordered, n=10)[-1]
    )
