"""The timeline read model: one row per event per escalation, hash-chained."""

from __future__ import annotations

from operator import attrgetter

import sqlalchemy as sa

from projections.bulk import insert_tuples
from projections.timeline import TimelineEntry

metadata = sa.MetaData()
timeline_entries = sa.Table(
    "timeline_entries",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("occurred_at_utc", sa.String(40), nullable=False),
    sa.Column("occurred_at_local", sa.String(80), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("tickets", sa.Text, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
)


def create_timeline_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def drop_timeline_schema(engine: sa.Engine) -> None:
    metadata.drop_all(engine)


def last_entries(conn: sa.Connection, escalation_ids: list[str]) -> dict[str, TimelineEntry]:
    """The newest entry of each of these escalations, in one query per 500 of them."""
    found: dict[str, TimelineEntry] = {}
    t = timeline_entries
    for chunk in range(0, len(escalation_ids), 500):
        newest = (
            sa.select(t.c.escalation_id, sa.func.max(t.c.version).label("version"))
            .where(t.c.escalation_id.in_(escalation_ids[chunk : chunk + 500]))
            .group_by(t.c.escalation_id)
            .subquery()
        )
        query = sa.select(t).join(
            newest, sa.and_(t.c.escalation_id == newest.c.escalation_id, t.c.version == newest.c.version)
        )
        found |= {row["escalation_id"]: TimelineEntry(**row) for row in conn.execute(query).mappings()}
    return found


def entries_of(conn: sa.Connection, escalation_id: str) -> list[TimelineEntry]:
    rows = conn.execute(
        sa.select(timeline_entries)
        .where(timeline_entries.c.escalation_id == escalation_id)
        .order_by(timeline_entries.c.version)
    ).mappings()
    return [TimelineEntry(**row) for row in rows]


def escalation_ids(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(timeline_entries.c.escalation_id).distinct()).scalars())


_ROW = attrgetter(*(c.name for c in timeline_entries.columns))


def insert_entries(conn: sa.Connection, entries: list[TimelineEntry]) -> None:
    insert_tuples(conn, timeline_entries, [_ROW(entry) for entry in entries])
