"""Many rows into one table in one driver call, without SQLAlchemy's per-row parameter processing.

`conn.execute(table.insert(), dicts)` compiles once but still walks every row's parameters through
SQLAlchemy's bind processors, about as much Python work per row as building the row. The read-model
tables hold only text, numbers and booleans, which both drivers (sqlite3, psycopg) adapt as they
are, so the rows can go straight to the driver's `executemany`. Only for tables with no Python-side
column defaults: a default would be skipped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@lru_cache(maxsize=128)
def _insert_sql(table: sa.Table, dialect: sa.Dialect) -> str:
    defaulted = [c.name for c in table.columns if c.default is not None]
    if defaulted:
        msg = f"{table.name} has Python-side defaults ({', '.join(defaulted)}); insert it through SQLAlchemy"
        raise ValueError(msg)
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        msg = f"no bulk insert for the {dialect.paramstyle!r} parameter style of {dialect.name}"
        raise ValueError(msg)
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in table.columns)
    values = ", ".join([placeholder] * len(table.columns))
    return f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({values})"  # noqa: S608 - names from our tables


def insert_tuples(conn: sa.Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows as tuples in the table's column order."""
    if rows:
        conn.exec_driver_sql(_insert_sql(table, conn.dialect), list(rows))


def insert_dicts(conn: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows as mappings by column name; a column a row does not name is NULL."""
    names = [c.name for c in table.columns]
    insert_tuples(conn, table, [tuple(row.get(name) for name in names) for row in rows])


@lru_cache(maxsize=128)
def _delete_sql(table: sa.Table, column: str, dialect: sa.Dialect) -> str:
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle, "?")
    quote = dialect.identifier_preparer.quote
    return f"DELETE FROM {quote(table.name)} WHERE {quote(column)} = {placeholder}"  # noqa: S608 - names from our tables


def delete_where(conn: sa.Connection, table: sa.Table, column: str, keys: Sequence[Any]) -> None:
    """Delete the rows whose `column` holds any of `keys`: one prepared statement run per key."""
    if keys:
        conn.exec_driver_sql(_delete_sql(table, column, conn.dialect), [(key,) for key in keys])
