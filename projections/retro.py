"""The retrospective of an escalation, in the shape of a retro issue (the handbook's step 6)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from domain.calendar import hours_between
from domain.uncertainties import SETTLED_BY, raised, settled
from projections.corrected import corrected
from projections.facts import RecordedEvent, at
from projections.timeline import TimelineEntry, marks, summarize

# The handbook's names of the roles a handover moves (the retro's "Customer and people" uses the same).
ROLE_NAMES = {"dri_manager": "DRI support manager", "escalation_dri": "Escalation DRI"}
# What the ledger's watcher records by itself (with ProgressStalled when it carries a deadline id).
LEDGER_NOTICED = frozenset({"UpdateOverdue", "MonitoringPeriodEnded", "RetrospectiveDue", "FollowUpActionOverdue"})


def retrospective(recorded: list[RecordedEvent], now: datetime, entries: list[TimelineEntry]) -> dict[str, Any]:
    """Everything the retro needs, as plain data (the JSON format).

    Facts come from history with its corrections applied; the timeline (`entries`: the stored one,
    or `timeline(recorded, zones)`) shows what was recorded, each correction beside the event it corrects.
    """
    events = corrected(recorded)
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
    people = _people(opened, events)
    completed = by_type.get("RetrospectiveCompleted", [])
    return {
        "escalation_id": events[0].escalation_id,
        "customer": opened["customer"],
        "region": opened["region"],
        "severity": opened["severity"],
        "summary": closed[-1].data["summary"] if closed else opened["summary"],
        "outcome": closed[-1].data["outcome"] if closed else None,
        "people": {"account_owner": opened["account_owner"], **people, "lead_engineers": leads},
        "severity_changes": [
            {
                "from": e.data["previous_severity"],
                "to": e.data["severity"],
                "at": e.data["occurred_at"],
                "why": e.data["reason"],
            }
            for e in by_type.get("SeverityChanged", [])
        ],
        "handovers": [
            {k: e.data[k] for k in ("role", "previous", "successor", "reason", "occurred_at")}
            for e in by_type.get("RoleHandedOver", [])
        ],
        "risks": _risks(events),
        "follow_up_actions": _actions(events, now),
        "retrospective_completed_on": completed[-1].data["completed_on"] if completed else None,
        "corrections": [
            {
                "corrects_version": e.data["corrects_version"],
                "corrects_event": e.data.get("corrects_event", ""),
                "correction": e.data["correction"],
                "reason": e.data["reason"],
                "corrected_facts": e.data.get("corrected_facts") or {},
            }
            for e in by_type.get("CorrectionRecorded", [])
        ],
        "exit_criteria": [
            {"id": key, "description": text, "met": key in met, "evidence": met.get(key)}
            for key, text in criteria.items()
        ],
        "uncertainties": [{"id": key, **value} for key, value in uncertainties.items()],
        "further_escalations": [e.data for e in by_type.get("EscalatedToSpecialistTeam", [])],
        "noticed_by_the_ledger": [
            {"event": e.name, "at": e.data["occurred_at"], "summary": summarize(e)}
            for e in events
            if e.name in LEDGER_NOTICED or (e.name == "ProgressStalled" and e.data.get("deadline_id"))
        ],
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
            for e in entries
        ],
    }


def _people(opened: dict[str, Any], events: list[RecordedEvent]) -> dict[str, Any]:
    """Who held each role at the end, and every backup or helper who took part."""
    holders = {
        "dri_manager": opened["dri_manager"],
        "escalation_dri": opened.get("escalation_dri") or opened["dri_manager"],
    }
    helpers: dict[str, dict[str, Any]] = {}
    for event in events:
        d = event.data
        if event.name == "RoleHandedOver":
            holders[d["role"]] = d["successor"]
        elif event.name == "HelperAdded":
            helpers[d["engineer"]] = {
                "engineer": d["engineer"],
                "region": d["engineer_region"],
                "kind": d["kind"],
                "left": False,
            }
        elif event.name == "HelperRemoved" and d["engineer"] in helpers:
            helpers[d["engineer"]]["left"] = True
    return {**holders, "helpers": list(helpers.values())}


def _risks(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    risks: dict[str, dict[str, Any]] = {}
    for event in events:
        d = event.data
        if event.name in ("RiskDefined", "RiskRecorded"):
            key = d.get("risk_id") or d["uncertainty_id"]
            risks[key] = {
                "id": key,
                "description": d["description"],
                "likelihood": d["likelihood"],
                "impact": d["impact"],
                "mitigation": d["mitigation"],
                "state": "open",
                "from_uncertainty": event.name == "RiskDefined",
            }
        elif event.name == "RiskSettled" and d["risk_id"] in risks:
            risks[d["risk_id"]] |= {"state": d["outcome"], "note": d["note"]}
    return list(risks.values())


def _actions(events: list[RecordedEvent], now: datetime) -> list[dict[str, Any]]:
    actions: dict[str, dict[str, Any]] = {}
    for event in events:
        d = event.data
        if event.name == "FollowUpActionAdded":
            actions[d["action_id"]] = {k: d[k] for k in ("action_id", "what", "owner", "due_on", "ticket")} | {
                "state": "open"
            }
        elif event.name == "FollowUpActionSettled" and d["action_id"] in actions:
            actions[d["action_id"]] |= {"state": d["outcome"], "note": d["note"]}
    for action in actions.values():
        action["overdue"] = action["state"] == "open" and date.fromisoformat(action["due_on"]) < now.date()
    return list(actions.values())


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
        f"- Escalation DRI: {retro['people']['escalation_dri']}",
        f"- Lead engineer(s): {', '.join(retro['people']['lead_engineers']) or '-'}",
        f"- Backups and helpers: {_helpers(retro['people']['helpers'])}",
        *[
            f"- {ROLE_NAMES[h['role']]} handed over from {h['previous']} to {h['successor']}: {h['reason']}"
            for h in retro["handovers"]
        ],
        *[f"- Severity {s['from']} -> {s['to']} ({s['at'][:16]}): {s['why']}" for s in retro["severity_changes"]],
        "",
        "## Exit criteria",
        "",
        *(
            [
                f"- [{'x' if c['met'] else ' '}] {c['description']}" + (f" ({c['evidence']})" if c["evidence"] else "")
                for c in retro["exit_criteria"]
            ]
            or ["- none"]
        ),
        "",
        "## Uncertainty and risk",
        "",
        *(
            [
                f"- {u['question']}: {u['state']}"
                + (f" after {u['hours_unknown']} hours: {u['outcome']}" if u.get("outcome") else "")
                for u in retro["uncertainties"]
            ]
            or ["- none"]
        ),
        "",
        "## Risks",
        "",
        *(
            [
                f"- {r['id']} ({r['likelihood']} likelihood, {r['impact']} impact): {r['description']}: {r['state']}"
                + (f" ({r['note']})" if r.get("note") else "")
                for r in retro["risks"]
            ]
            or ["- none"]
        ),
        "",
        "## Corrections",
        "",
        *(
            [
                f"- v{x['corrects_version']}{_named(x['corrects_event'])}: {x['correction']} ({x['reason']})"
                + (
                    f"; now {', '.join(f'{k} = {v}' for k, v in sorted(x['corrected_facts'].items()))}"
                    if x["corrected_facts"]
                    else ""
                )
                for x in retro["corrections"]
            ]
            or ["- none"]
        ),
        "",
        "## Further escalations",
        "",
        *([f"- {e['team']} ({e['reference']}): {e['reason']}" for e in retro["further_escalations"]] or ["- none"]),
        "",
        "## Noticed by the ledger",
        "",
        *([f"- {n['at'][:16]}: {n['summary']}" for n in retro["noticed_by_the_ledger"]] or ["- nothing"]),
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
        *([_action(a) for a in retro["follow_up_actions"]] or ["- [ ]"]),
        "",
        f"Retrospective completed on {retro['retrospective_completed_on']}."
        if retro["retrospective_completed_on"]
        else "Retrospective not completed yet.",
        "",
    ]
    return "\n".join(lines)


def _named(event_type: str) -> str:
    """A first-version correction does not name the event it corrects."""
    return f" {event_type}" if event_type else ""


def _helpers(helpers: list[dict[str, Any]]) -> str:
    named = [f"{h['engineer']} ({h['kind']}, {h['region']}{', left' if h['left'] else ''})" for h in helpers]
    return ", ".join(named) or "-"


def _action(action: dict[str, Any]) -> str:
    box = "x" if action["state"] == "done" else " "
    ticket = f" [{action['ticket']}]" if action["ticket"] else ""
    state = {"done": "", "dropped": " (dropped)", "open": " (OVERDUE)" if action["overdue"] else ""}[action["state"]]
    return f"- [{box}] {action['what']}{ticket}: {action['owner']}, due {action['due_on']}{state}"
