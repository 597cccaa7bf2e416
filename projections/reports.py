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

from domain.calendar import hours_between
from projections.facts import at
from projections.tables import (
    escalation_specialist_teams,
    escalation_stalls,
    escalation_uncertainties,
    escalations,
)

Row = dict[str, Any]
Report = Callable[[sa.Connection, datetime], list[Row]]


def view(conn: sa.Connection, name: str, order_by: str) -> list[Row]:
    """A report's rows as its documented view gives them to any SQL client."""
    return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY {order_by}")).mappings()]  # noqa: S608 - names are ours


def active_escalations(conn: sa.Connection, now: datetime) -> list[Row]:
    """The `active` view, with the ages that depend on the caller's "now"."""
    return [
        {
            "escalation_id": r["escalation_id"],
            "customer": r["customer"],
            "region": r["region"],
            "severity": r["severity"],
            "status": r["status"],
            "lead_engineer": r["lead_engineer"],
            "dri_manager": r["dri_manager"],
            "backup_engineer": r["backup_engineer"],
            "product_dri": r["product_dri"],
            "days_open": (now - at(r["opened_at"])).days,
            "hours_since_update": round(hours_between(at(r["last_update_at"]), now), 1)
            if r["last_update_at"]
            else None,
            "next_update_due": r["next_update_due"],
            "overdue_by_working_days": r["overdue_by_working_days"],
            "updates_posted": r["updates_posted"],
            "exit_criteria": f"{r['exit_criteria_met']}/{r['exit_criteria_total']}",
            "stalled": bool(r["stalled"]),
        }
        for r in view(conn, "active", "opened_at")
    ]


def update_compliance(conn: sa.Connection, _: datetime) -> list[Row]:
    """Update windows due and met as the severity's cadence asks, per lead, region, month and week.

    `rate` repeats `share_met` for the dashboard's heat-map."""
    return [r | {"rate": r["share_met"]} for r in view(conn, "compliance", "lead_engineer, region, month, week")]


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
    return view(conn, "workload", "active_escalations DESC, lead_engineer, region")


def scope(conn: sa.Connection, _: datetime) -> list[Row]:
    """Per escalation: its ticket ids, how often the scope was redefined, and clashes between open ones."""
    tickets: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"related": [], "unrelated": [], "clash": []})
    for t in view(conn, "scope_tickets", "escalation_id, ticket"):
        mine = tickets[t["escalation_id"]]
        mine[t["relation"]].append(t["ticket"])
        if t["claimed_by_another_open_escalation"]:
            mine["clash"].append(t["ticket"])
    rows = []
    for e in view(conn, "escalation_facts", "customer, escalation_id"):
        mine = tickets[e["escalation_id"]]
        rows.append(
            {
                "escalation_id": e["escalation_id"],
                "customer": e["customer"],
                "scope_redefinitions": e["scope_redefinitions"],
                "related_tickets": len(mine["related"]),
                "unrelated_tickets": len(mine["unrelated"]),
                "related_ticket_ids": ", ".join(mine["related"]),
                "unrelated_ticket_ids": ", ".join(mine["unrelated"]),
                "claimed_by_another_escalation": ", ".join(mine["clash"]),
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
    """In-hours emergencies go to the lead and need no review: only out-of-hours ones can be unreviewed."""
    return [
        r | {"out_of_hours_share": round(r["out_of_hours"] / r["emergencies"], 3)}
        for r in view(conn, "emergencies", "customer, escalation_id")
    ]


def escalation_facts(conn: sa.Connection, _: datetime) -> list[Row]:
    return view(conn, "escalation_facts", "customer, escalation_id")


def follow_up_actions(conn: sa.Connection, _: datetime) -> list[Row]:
    return view(conn, "follow_up_actions", "due_on, escalation_id, action_id")


def monitoring(conn: sa.Connection, _: datetime) -> list[Row]:
    return view(conn, "monitoring", "customer, escalation_id, period_number")


REPORTS: dict[str, Report] = {
    "active": active_escalations,
    "compliance": update_compliance,
    "durations": lifecycle_durations,
    "stalls": stalls_and_further_escalations,
    "workload": lead_workload,
    "scope": scope,
    "uncertainty": uncertainty_to_risk,
    "emergencies": emergencies,
    "facts": escalation_facts,
    "monitoring": monitoring,
    "follow-up-actions": follow_up_actions,
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


def _hours_since(moment: str | None, now: datetime) -> float | None:
    return round(hours_between(at(moment), now), 1) if moment else None
