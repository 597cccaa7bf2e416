"""What the notifier says, and to whom: events to Slack messages (Block Kit), and subscription matching.

Pure: no I/O. The notifier consumer folds a small context per escalation (its channel, customer,
severity, lead) so each message can be rendered from one event; the senders in `infra/notify`
only carry the rendered messages out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from projections.facts import RecordedEvent

Block = dict[str, Any]


@dataclass(frozen=True)
class EscalationContext:
    """What the notifier remembers of one escalation, to render and match each later event."""

    escalation_id: str
    customer: str
    region: str
    severity: str
    channel: str
    lead: str | None = None
    dri_manager: str | None = None
    phase: str = "open"
    criteria_total: int = 0
    criteria_met: int = 0
    last_update_at: str | None = None
    stalled: bool = False


@dataclass(frozen=True)
class SlackMessage:
    """One chat.postMessage: where, the fallback text (notifications, screen readers) and the blocks."""

    kind: str
    channel: str
    text: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Subscription:
    """Another team's webhook: which events it wants. An empty filter means every value."""

    subscription_id: str
    url: str
    event_types: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    paused: bool = False


def matches(subscription: Subscription, event_name: str, context: EscalationContext | None) -> bool:
    """Does this subscription want this event? Filters on the escalation need its context."""
    if subscription.paused or not _wanted(subscription.event_types, event_name):
        return False
    if context is None:
        return not (subscription.customers or subscription.regions or subscription.severities)
    return (
        _wanted(subscription.customers, context.customer)
        and _wanted(subscription.regions, context.region)
        and _wanted(subscription.severities, context.severity)
    )


def _wanted(chosen: frozenset[str], value: str) -> bool:
    return not chosen or value.casefold() in {c.casefold() for c in chosen}


# --- the context fold -------------------------------------------------------------------------


def fold_context(context: EscalationContext | None, event: RecordedEvent) -> EscalationContext | None:
    """The context after this event; events the notifier does not need leave it as it was."""
    data = event.data
    if event.name == "EscalationOpened":
        return EscalationContext(
            escalation_id=event.escalation_id,
            customer=data["customer"],
            region=data["region"],
            severity=data["severity"],
            channel=data["channel"],
            dri_manager=data.get("dri_manager"),
        )
    if context is None:
        return None
    change = _CONTEXT_CHANGES.get(event.name)
    return change(context, data) if change else context


def _handed_over(context: EscalationContext, data: dict[str, Any]) -> EscalationContext:
    if data.get("role") == "dri_manager":
        return replace(context, dri_manager=data["successor"])
    return context


_CONTEXT_CHANGES: dict[str, Callable[[EscalationContext, dict[str, Any]], EscalationContext]] = {
    "LeadEngineerAssigned": lambda c, d: replace(c, lead=d["engineer"]),
    "RoleHandedOver": _handed_over,
    "SeverityChanged": lambda c, d: replace(c, severity=d["severity"]),
    "ScopeDefined": lambda c, d: replace(c, criteria_total=len(d["exit_criteria"])),
    "ExitCriterionMet": lambda c, _: replace(c, criteria_met=c.criteria_met + 1),
    "UpdatePosted": lambda c, d: replace(
        c, last_update_at=d["occurred_at"], criteria_met=d["criteria_met"], criteria_total=d["criteria_total"]
    ),
    "ProgressStalled": lambda c, _: replace(c, stalled=True),
    "ProgressResumed": lambda c, _: replace(c, stalled=False),
    "MonitoringStarted": lambda c, _: replace(c, phase="monitoring"),
    "MonitoringInterrupted": lambda c, _: replace(c, phase="open"),
    "EscalationClosed": lambda c, _: replace(c, phase="closed"),
}


# --- Slack messages ---------------------------------------------------------------------------


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _bullets(items: Iterable[str]) -> str:
    lines = [f"• {item}" for item in items]
    return "\n".join(lines) or "_none_"


def _message(kind: str, context: EscalationContext, title: str, body: Sequence[Block], footer: str) -> SlackMessage:
    blocks = (_header(title), *body, _context(footer))
    return SlackMessage(kind, context.channel, f"{title}: {context.customer}", blocks)


def _footer(context: EscalationContext, event: RecordedEvent) -> str:
    who = event.data.get("actor", "?")
    return (
        f"{context.customer} ({context.region}) · severity {context.severity} · by {who} · {event.data['occurred_at']}"
    )


def _progress_bar(met: int, total: int) -> str:
    filled = round(10 * met / total) if total else 0
    return f"{'▰' * filled}{'▱' * (10 - filled)} {met} of {total} exit criteria met"


def _update(event: RecordedEvent, context: EscalationContext) -> SlackMessage:
    d = event.data
    tasks = [f"{t['description']} ({', '.join(t['tickets']) or 'no ticket'})" for t in d["current_tasks"]]
    body = [
        _section(
            f"*Progress toward exit criteria*\n{_progress_bar(d['criteria_met'], d['criteria_total'])}\n{d['progress']}"
        ),
        _section(f"*Status*\n{d['status']}"),
        _section(f"*Current tasks*\n{_bullets(tasks)}"),
        _section(f"*Next steps* (owner: {d['next_steps_owner']})\n{_bullets(d['next_steps'])}"),
        _section(f"*Blockers*\n{_bullets(d['blockers'])}"),
    ]
    if d.get("exit_criteria_changed"):
        body.append(_section(f"*Exit criteria changed*\n{d.get('exit_criteria_change') or ''}"))
    return _message("update", context, f"Daily update #{d['update_number']}", body, _footer(context, event))


@dataclass(frozen=True)
class _Simple:
    """A message of one section, its text from the event's data and the context.

    A class rather than a closure: the message is built when an event is rendered, not when
    `RENDERERS` is built at import (where `make mutation` could never change it)."""

    kind: str
    title: str
    text: Callable[[dict[str, Any], EscalationContext], str]

    def __call__(self, event: RecordedEvent, context: EscalationContext) -> SlackMessage:
        body = [_section(self.text(event.data, context))]
        return _message(self.kind, context, self.title, body, _footer(context, event))


def _lead(context: EscalationContext) -> str:
    return f"@{context.lead}" if context.lead else "The lead engineer (none assigned yet)"


Renderer = Callable[[RecordedEvent, EscalationContext], SlackMessage]

RENDERERS: dict[str, Renderer] = {
    "EscalationOpened": _Simple(
        "opened",
        "Account escalation opened",
        lambda d, _: (
            f"*{d['summary']}*\nDRI manager: {d['dri_manager']} · account owner: {d['account_owner']}"
            f" · updates: {d['update_cadence']['description']}"
        ),
    ),
    "UpdatePosted": _update,
    "UpdateOverdue": _Simple(
        "update_overdue",
        "Update overdue",
        lambda d, c: (
            f"{_lead(c)}, the next update was due {d['due_at']}: {d['working_days_overdue']} working day(s)"
            f" past the {d['severity']} cadence (last update: {c.last_update_at or 'none yet'})."
            f" Please post one in {c.channel}."
        ),
    ),
    "ProgressStalled": _Simple(
        "stalled",
        "Progress has stalled",
        lambda d, c: (
            f"*{d['reason']}*\nNoticed by {d['noticed_by']}. {_lead(c)}: decide whether to escalate "
            "further to a specialist team."
        ),
    ),
    "ProgressResumed": _Simple("resumed", "Progress resumed", lambda d, _: d["note"]),
    "EscalatedToSpecialistTeam": _Simple(
        "escalated_further",
        "Escalated further to a specialist team",
        lambda d, _: f"*{d['team']}* ({d['reference']})\n{d['reason']}",
    ),
    "EmergencyRaised": _Simple(
        "emergency",
        "Emergency raised",
        lambda d, _: (
            f":rotating_light: {d['ticket']}, handled by {d['handled_by']}"
            + (" (out of hours: the DRI manager and lead review it when online)" if d["out_of_hours"] else "")
        ),
    ),
    "MonitoringStarted": _Simple(
        "monitoring_started",
        "Monitoring period started",
        lambda d, _: f"The customer is stable: monitoring for {d['period_days']} days, agreed with {d['agreed_with']}.",
    ),
    "MonitoringInterrupted": _Simple(
        "monitoring_interrupted", "Monitoring interrupted", lambda d, _: f"Back to active work: {d['reason']}"
    ),
    "MonitoringPeriodEnded": _Simple(
        "monitoring_ended",
        "Monitoring period ended",
        lambda d, c: (
            f"The agreed monitoring period ended at {d['ended_at']}."
            f" {_lead(c)}: if the customer stayed stable, agree the closing with the account owner."
        ),
    ),
    "EscalationClosed": _Simple(
        "closed",
        "Account escalation closed",
        lambda d, _: (
            f"*Outcome: {d['outcome']}*\n{d['summary']}"
            + ("" if d["exit_criteria_met"] else "\n_Closed without every exit criterion met._")
        ),
    ),
    "RetrospectiveDue": _Simple(
        "retrospective_due",
        "Retrospective due",
        lambda d, c: (
            f"Closed {d['working_days_since_closing']} working day(s) ago and no retrospective yet."
            f" {_lead(c)}, open the retro issue (Retro template) now."
        ),
    ),
    "FollowUpActionOverdue": _Simple(
        "follow_up_overdue",
        "Follow-up action overdue",
        lambda d, _: f"@{d['owner']}, follow-up action {d['action_id']} from the retrospective was due {d['due_on']}.",
    ),
    "RetrospectiveOpened": _Simple(
        "retrospective", "Retrospective opened", lambda d, _: f"Retro: {d['retro_reference']}"
    ),
    "RetrospectiveCompleted": _Simple(
        "retrospective_completed",
        "Retrospective completed",
        lambda d, _: f"Completed on {d['completed_on']}" + (f": {d['notes']}" if d["notes"] else "."),
    ),
}


def render(event: RecordedEvent, context: EscalationContext | None) -> SlackMessage | None:
    """The message this event posts in the escalation's channel, or None when it posts nothing."""
    renderer = RENDERERS.get(event.name)
    if renderer is None or context is None:
        return None
    return renderer(event, context)


def digest(active: Sequence[EscalationContext], channel: str, day: str, now: datetime) -> SlackMessage:
    """The support managers' daily digest: every active escalation, one line each."""
    lines = [
        f"• *{c.customer}* ({c.region}) {c.channel} · {c.severity} · {c.phase}"
        f"{' · :warning: stalled' if c.stalled else ''} · lead {c.lead or 'none'}"
        f" · {c.criteria_met}/{c.criteria_total} exit criteria · last update {c.last_update_at or 'none yet'}"
        for c in sorted(active, key=lambda c: (c.customer, c.escalation_id))
    ]
    title = f"Active escalations, {day}"
    blocks = (
        _header(title),
        _section("\n".join(lines) or "No active escalations."),
        _context(f"as of {now:%H:%M} UTC"),
    )
    return SlackMessage("digest", channel, f"{title}: {len(active)}", blocks)
