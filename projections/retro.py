"""The retrospective of an escalation, in the shape of a retro issue (the handbook's step 6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.calendar import hours_between
from domain.uncertainties import SETTLED_BY, raised, settled
from projections.facts import RecordedEvent, at
from projections.timeline import marks, timeline


def retrospective(events: list[RecordedEvent], now: datetime) -> dict[str, Any]:
    """Everything the retro needs, as plain data (the JSON format)."""
    by_type: dict[str, list[RecordedEvent]] = {}
    for event in events:
        by_type.setdefault(event.name, []).append(event)
    opened = by_type["EscalationOpened"][0].data
    scopes = by_type.get("ScopeDefined", [])
    criteria = {c["id"]: c["description"] for c in scopes[-1].data["exit_criteria"]} if scopes else {}
    met = {e.data["criterion_id"]: e.data["evidence"] for e in by_type.get("ExitCriterionMet", [])}
    leads = [e.data["engineer"] for e in by_type.get("LeadEngineerAssigned", [])]
    uncertainties: dict[str, dict[str, Any]] = {}
    for event in events:
        d = event.data
        if event.name == "UncertaintyRaised":
            uncertainties[d["uncertainty_id"]] = raised(d["question"], d["occurred_at"])
        elif event.name in SETTLED_BY:
            before = uncertainties[d["uncertainty_id"]]
            uncertainties[d["uncertainty_id"]] = settled(
                before,
                event.name,
                outcome=d.get("description") or d.get("answer"),
                hours_unknown=round(hours_between(at(before["raised_at"]), event.occurred_at), 1),
            )
    closed = by_type.get("EscalationClosed", [])
    return {
        "escalation_id": events[0].escalation_id,
        "customer": opened["customer"],
        "region": opened["region"],
        "severity": opened["severity"],
        "summary": closed[-1].data["summary"] if closed else opened["summary"],
        "outcome": closed[-1].data["outcome"] if closed else None,
        "people": {
            "account_owner": opened["account_owner"],
            "dri_manager": opened["dri_manager"],
            "lead_engineers": leads,
        },
        "exit_criteria": [
            {"id": key, "description": text, "met": key in met, "evidence": met.get(key)}
            for key, text in criteria.items()
        ],
        "uncertainties": [{"id": key, **value} for key, value in uncertainties.items()],
        "further_escalations": [e.data for e in by_type.get("EscalatedToSpecialistTeam", [])],
        "emergencies": [e.data for e in by_type.get("EmergencyRaised", [])],
        "marks": marks(events, now),
        "timeline": [
            {
                "version": e.version,
                "utc": e.occurred_at_utc,
                "local": e.occurred_at_local,
                "actor": e.actor,
                "summary": e.summary,
                "hash": e.hash,
            }
            for e in timeline(events)
        ],
    }


def render_markdown(retro: dict[str, Any]) -> str:
    m = retro["marks"]
    lines = [
        f"# Retrospective: {retro['customer']} account escalation",
        "",
        "## Summary",
        "",
        f"{retro['summary']} (outcome: {retro['outcome'] or 'open'}; {retro['severity']}, {retro['region']})",
        "",
        "## Customer and people",
        "",
        f"- Account owner: {retro['people']['account_owner']}",
        f"- DRI support manager: {retro['people']['dri_manager']}",
        f"- Lead engineer(s): {', '.join(retro['people']['lead_engineers']) or '-'}",
        "",
        "## Exit criteria",
        "",
        *[
            f"- [{'x' if c['met'] else ' '}] {c['description']}" + (f" ({c['evidence']})" if c["evidence"] else "")
            for c in retro["exit_criteria"]
        ],
        "",
        "## Uncertainty and risk",
        "",
        *[
            f"- {u['question']}: {u['state']}"
            + (f" after {u['hours_unknown']} hours: {u['outcome']}" if u.get("outcome") else "")
            for u in retro["uncertainties"]
        ],
        "",
        "## Further escalations",
        "",
        *([f"- {e['team']} ({e['reference']}): {e['reason']}" for e in retro["further_escalations"]] or ["- none"]),
        "",
        "## Emergencies",
        "",
        *(
            [
                f"- {e['ticket']}: {'out of hours' if e['out_of_hours'] else 'in hours'}, handled by {e['handled_by']}"
                for e in retro["emergencies"]
            ]
            or ["- none"]
        ),
        "",
        "## Key durations",
        "",
        f"- Open to lead engineer: {m['hours_to_lead']} hours",
        f"- Open to scope: {m['hours_to_scope']} hours",
        f"- Stalled: {sum(s['hours'] for s in m['stalled_periods'])} hours in {len(m['stalled_periods'])} period(s)",
        f"- Gaps of more than one working day between updates: {len(m['update_gaps_over_one_working_day'])}",
        f"- Monitoring: {m['monitoring']['days']} days from {m['monitoring']['from'][:10]}"
        if m["monitoring"]
        else "- Monitoring: none",
        f"- Total: {m['total_hours']} hours",
        "",
        "## Timeline",
        "",
        "| When (UTC) | Local | Who | What |",
        "|---|---|---|---|",
        *[
            f"| {e['utc']} | {e['local']} | {e['actor']} | {e['summary'].replace('|', '/')} |"
            for e in retro["timeline"]
        ],
        "",
        "## What went well",
        "",
        "-",
        "",
        "## What went wrong",
        "",
        "-",
        "",
        "## Follow-up actions",
        "",
        "- [ ]",
        "",
    ]
    return "\n".join(lines)
