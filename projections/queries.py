"""Queries the API serves from the reporting read model, beside the tables that answer them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.tables import escalations

FILTERS = ("status", "customer", "region", "lead_engineer")


def list_escalations(conn: sa.Connection, **filters: str | None) -> list[dict[str, Any]]:
    """Escalations, oldest first, filtered by any of `FILTERS` that is given."""
    query = sa.select(escalations).order_by(escalations.c.opened_at)
    for column, value in filters.items():
        if column not in FILTERS:
            msg = f"cannot filter escalations by {column!r}; use one of: {', '.join(FILTERS)}"
            raise ValueError(msg)
        if value is not None:
            query = query.where(escalations.c[column] == value)
    return [dict(row) for row in conn.execute(query).mappings()]


def positions_seen(conn: sa.Connection, escalation_ids: list[str]) -> dict[str, int]:
    """The newest applied position of each of these escalations (absent: none applied yet)."""
    query = sa.select(escalations.c.escalation_id, escalations.c.position).where(
        escalations.c.escalation_id.in_(escalation_ids)
    )
    return {row.escalation_id: int(row.position or 0) for row in conn.execute(query)}


def position_seen(conn: sa.Connection, escalation_id: str | None = None) -> int:
    """The newest event-store position the read model has applied (for one escalation, if given)."""
    query = sa.select(sa.func.max(escalations.c.position))
    if escalation_id is not None:
        query = query.where(escalations.c.escalation_id == escalation_id)
    return int(conn.execute(query).scalar() or 0)
