"""The watcher's tables: one schedule per escalation, and its deadlines with what became of each."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

# pending: not due or not fired yet; fired: recorded its event; answered: fired, then its reason went
# away (the overdue update came); settled: the aggregate said it was already done or no longer due;
# refused: the aggregate refused it for another reason (logged).
PENDING, FIRED, ANSWERED, SETTLED, REFUSED = "pending", "fired", "answered", "settled", "refused"
UPDATE_OVERDUE = "update_overdue"


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


metadata = sa.MetaData()
watcher_schedules = sa.Table(
    "watcher_schedules",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("schedule", sa.Text, nullable=False),
)
watcher_deadlines = sa.Table(
    "watcher_deadlines",
    metadata,
    sa.Column("deadline_id", sa.String(36), primary_key=True),
    sa.Column("escalation_id", sa.String(36), nullable=False, index=True),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("due_at", sa.String(40), nullable=False, index=True),  # UTC ISO: sorts as it compares
    sa.Column("facts", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("settled_at", sa.String(40)),
    sa.Column("note", sa.Text),
)

# The facts `fold` reads of each event, kept so that a correction can refold the corrected history.
watcher_events = sa.Table(
    "watcher_events",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)


def create_watcher_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def drop_watcher_schema(engine: sa.Engine) -> None:
    metadata.drop_all(engine)


def overdue_updates(conn: sa.Connection) -> dict[str, str]:
    """{escalation id: overdue since} for every escalation whose overdue update has not come yet."""
    if not sa.inspect(conn).has_table("watcher_deadlines"):
        return {}  # no watcher has run against this database
    t = watcher_deadlines
    query = sa.select(t.c.escalation_id, t.c.due_at).where(t.c.kind == UPDATE_OVERDUE, t.c.state == FIRED)
    return dict(conn.execute(query).all())
