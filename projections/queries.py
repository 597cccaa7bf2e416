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


def position_seen(
    conn: sa.Connection, escalation_id: str | None = None, column: sa.Column[Any] = escalations.c.position
) -> int:
    """The newest event-store position (or `column`) the read model has applied (for one escalation, if given)."""
    query = sa.select(sa.func.max(column))
    if escalation_id is not None:
        query = query.where(escalations.c.escalation_id == escalation_id)
    return int(conn.execute(query).scalar() or 0)
