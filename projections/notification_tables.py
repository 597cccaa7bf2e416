"""The notifier's own tables: each escalation's context, the delivery log, and the webhook subscriptions.

The delivery log is keyed by (event, destination): recording the same event for the same
destination twice (a rebuild from offset zero, a replayed topic, a republished event) finds the
row already there and adds nothing, so nothing is ever sent twice from history. Rebuilding resets
only the context table; deliveries and subscriptions stay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from projections.notifications import EscalationContext, Subscription

metadata = sa.MetaData()

notify_context = sa.Table(
    "notify_context",
    metadata,
    sa.Column("escalation_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("context", sa.Text, nullable=False),
)

PENDING, SENT, DEAD, SKIPPED = "pending", "sent", "dead", "skipped"
STATES = (PENDING, SENT, DEAD, SKIPPED)

notify_deliveries = sa.Table(
    "notify_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),  # the webhook-id: the same on every retry
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("destination", sa.String(300), nullable=False),  # slack:<channel> or webhook:<subscription id>
    sa.Column("escalation_id", sa.String(64), nullable=True),  # None for the daily digest
    sa.Column("position", sa.BigInteger, nullable=False),  # order within an escalation
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("leased_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.UniqueConstraint("event_id", "destination", name="uq_notify_event_destination"),
    sa.Index("ix_notify_deliveries_state", "state", "escalation_id", "destination", "position"),
)

notify_subscriptions = sa.Table(
    "notify_subscriptions",
    metadata,
    sa.Column("subscription_id", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("filters", sa.Text, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)


def create_notifier_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def reset_notifier_context(engine: sa.Engine) -> None:
    """What a rebuild drops: only the folded context. The delivery log is what makes a rebuild silent."""
    notify_context.drop(engine, checkfirst=True)
    notify_context.create(engine)


@dataclass(frozen=True)
class NewDelivery:
    delivery_id: str
    event_id: str
    destination: str
    escalation_id: str | None
    position: int
    kind: str
    payload: dict[str, Any]
    state: str
    created_at: float


def load_contexts(conn: sa.Connection, keys: Sequence[str]) -> dict[str, tuple[int, EscalationContext]]:
    rows = conn.execute(sa.select(notify_context).where(notify_context.c.escalation_id.in_(keys)))
    return {row.escalation_id: (row.version, EscalationContext(**json.loads(row.context))) for row in rows}


def active_contexts(conn: sa.Connection) -> list[EscalationContext]:
    rows = conn.execute(sa.select(notify_context.c.context))
    contexts = [EscalationContext(**json.loads(text)) for (text,) in rows]
    return [c for c in contexts if c.phase != "closed"]


def save_contexts(conn: sa.Connection, contexts: dict[str, tuple[int, EscalationContext]]) -> None:
    if not contexts:
        return
    conn.execute(notify_context.delete().where(notify_context.c.escalation_id.in_(list(contexts))))
    conn.execute(
        notify_context.insert(),
        [{"escalation_id": k, "version": v, "context": json.dumps(asdict(c))} for k, (v, c) in contexts.items()],
    )


def record_deliveries(conn: sa.Connection, new: Sequence[NewDelivery]) -> int:
    """Insert the deliveries whose (event, destination) is not in the log yet; returns how many."""
    if not new:
        return 0
    known = {
        (e, d)
        for e, d in conn.execute(
            sa.select(notify_deliveries.c.event_id, notify_deliveries.c.destination).where(
                notify_deliveries.c.event_id.in_({n.event_id for n in new})
            )
        )
    }
    fresh: dict[tuple[str, str], NewDelivery] = {}
    for n in new:
        if (n.event_id, n.destination) not in known:
            fresh.setdefault((n.event_id, n.destination), n)
    if fresh:
        conn.execute(
            notify_deliveries.insert(),
            [
                {
                    "delivery_id": n.delivery_id,
                    "event_id": n.event_id,
                    "destination": n.destination,
                    "escalation_id": n.escalation_id,
                    "position": n.position,
                    "kind": n.kind,
                    "payload": json.dumps(n.payload),
                    "state": n.state,
                    "attempts": 0,
                    "next_attempt_at": n.created_at,
                    "created_at": n.created_at,
                }
                for n in fresh.values()
            ],
        )
    return len(fresh)


@dataclass(frozen=True)
class StoredSubscription:
    subscription: Subscription
    created_at: float
    created_by: str


def load_subscriptions(conn: sa.Connection) -> list[StoredSubscription]:
    return [_subscription(row) for row in conn.execute(sa.select(notify_subscriptions))]


def _subscription(row: Any) -> StoredSubscription:
    filters = json.loads(row.filters)
    return StoredSubscription(
        Subscription(
            row.subscription_id,
            row.url,
            **{name: frozenset(values) for name, values in filters.items()},
            paused=bool(row.paused),
        ),
        row.created_at,
        row.created_by,
    )
