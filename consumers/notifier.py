"""The notifier consumer: turns events into deliveries, recorded with its offsets, never sent from here.

Sending happens in the delivery loop (`infra/notify`), so a slow or dead receiver never holds up
the stream. Each delivery is keyed by (event, destination), so a rebuild or a replayed topic adds
nothing; an event seen for the first time when it is already older than `max_age` is recorded as
skipped, so a new notifier on an old topic does not flood the channels.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from consumers.runtime import Decoded, OnError
from projections.facts import RecordedEvent
from projections.notification_tables import (
    PENDING,
    SKIPPED,
    NewDelivery,
    StoredSubscription,
    load_contexts,
    load_subscriptions,
    record_deliveries,
    save_contexts,
)
from projections.notifications import EscalationContext, SlackMessage, fold_context, matches, render

GROUP = "escalations.notifier"
_NAMESPACE = uuid.UUID("5d0c3c1e-7f8e-4b0c-9a43-6f1f3c2c9d11")
CloudEventOf = Callable[[RecordedEvent], dict[str, Any]]


def delivery_id(event_id: str, destination: str) -> str:
    """The webhook-id: derived from what is delivered where, so every retry and every rebuild agrees."""
    return f"msg_{uuid.uuid5(_NAMESPACE, f'{event_id}|{destination}').hex}"


def slack_payload(message: SlackMessage) -> dict[str, Any]:
    return {"channel": message.channel, "text": message.text, "blocks": list(message.blocks)}


class NotifierProjector:
    def __init__(
        self,
        *,
        cloudevent: CloudEventOf,
        clock: Callable[[], datetime],
        max_age: timedelta,
        slack: bool,
    ) -> None:
        self.cloudevent = cloudevent
        self.clock = clock
        self.max_age = max_age
        self.slack = slack  # no Slack token configured: record webhook deliveries only

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        contexts = load_contexts(conn, list({event.escalation_id for _, event in batch}))
        subscriptions = load_subscriptions(conn)
        now = self.clock()
        new: list[NewDelivery] = []
        applied = 0
        for record, event in batch:
            version, before = contexts.get(event.escalation_id, (0, None))
            if event.version <= version:
                continue  # a republished duplicate: its deliveries are in the log already
            try:
                after = fold_context(before, event)
                recorded = datetime.fromisoformat(event.data.get("recorded_at") or event.data["occurred_at"])
                state = SKIPPED if now - recorded > self.max_age else PENDING
                new += self._deliveries(
                    event, after, state, now, subscriptions_for(subscriptions, event, after, recorded)
                )
            except Exception as error:  # noqa: BLE001 - one bad record goes to the dead-letter topic
                on_error(record, error)
                continue
            if after is not None:
                contexts[event.escalation_id] = (event.version, after)
            applied += 1
        record_deliveries(conn, new)
        save_contexts(conn, contexts)
        return applied

    def _deliveries(
        self,
        event: RecordedEvent,
        context: EscalationContext | None,
        state: str,
        now: datetime,
        subscription_ids: list[str],
    ) -> list[NewDelivery]:
        out: list[NewDelivery] = []
        event_id = event.event_id or f"{event.escalation_id}:{event.version}"
        message = render(event, context) if self.slack else None

        def add(destination: str, kind: str, payload: dict[str, Any]) -> None:
            out.append(
                NewDelivery(
                    delivery_id(event_id, destination),
                    event_id,
                    destination,
                    event.escalation_id,
                    event.version,
                    kind,
                    payload,
                    state,
                    now.timestamp(),
                )
            )

        if message is not None:
            add(f"slack:{message.channel}", message.kind, slack_payload(message))
        if subscription_ids:
            cloudevent = self.cloudevent(event)
            for subscription_id in subscription_ids:
                add(f"webhook:{subscription_id}", event.name, cloudevent)
        return out


def subscriptions_for(
    stored: Sequence[StoredSubscription], event: RecordedEvent, context: EscalationContext | None, recorded: datetime
) -> list[str]:
    """The subscriptions that want this event: matching, and created before the event was recorded.

    The second rule keeps a new subscription, or a rebuild after one was added, from receiving history.
    """
    return [
        s.subscription.subscription_id
        for s in stored
        if s.created_at <= recorded.timestamp() and matches(s.subscription, event.name, context)
    ]
