"""The questions a support organisation asks, answered from the reporting read model.

Each report reads the view of its name (see `docs/read-models.md`) and returns plain rows, so the
command line and the API print what any SQL client gets; only `active` adds the ages as of the
caller's "now", and `scope` gathers each escalation's ticket ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.calendar import hours_between
from projections.deadline_tables import overdue_updates
from projections.facts import at

Row = dict[str, Any]
Report = Callable[[sa.Connection, datetime], list[Row]]


def view(conn: sa.Connection, name: str, order_by: str) -> list[Row]:
    """A report's rows as its documented view gives them to any SQL client."""
    return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY {order_by}")).mappings()]  # noqa: S608 - names are ours


def active_escalations(conn: sa.Connection, now: datetime) -> list[Row]:
    """The `active` view, with the ages that depend on the caller's "now", and what the watcher found overdue."""
    overdue = overdue_updates(conn)  # the watcher's: since when an update is overdue
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
            "update_overdue_since": overdue.get(r["escalation_id"]),
        }
        for r in view(conn, "active", "opened_at")
    ]


def update_compliance(conn: sa.Connection, _: datetime) -> list[Row]:
    """Update windows due and met as the severity's cadence asks, per lead, region, month and week.

    `rate` repeats `share_met` for the dashboard's heat-map."""
    return [r | {"rate": r["share_met"]} for r in view(conn, "compliance", "lead_engineer, region, month, week")]


def lifecycle_durations(conn: sa.Connection, _: datetime) -> list[Row]:
    """Hours from opening to each milestone: median and p90 (nearest rank) by severity, region and quarter."""
    return view(conn, "durations", "severity, region, quarter")


def stalls_and_further_escalations(conn: sa.Connection, _: datetime) -> list[Row]:
    return view(conn, "stalls", "customer, escalation_id")


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


def uncertainty_to_risk(conn: sa.Connection, _: datetime) -> list[Row]:
    return [r | {"became_risk": bool(r["became_risk"])} for r in view(conn, "uncertainty", "raised_at, uncertainty_id")]


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
