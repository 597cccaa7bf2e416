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
from operator import itemgetter
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
    insert_tuples(conn, table, as_tuples(table, rows))


@lru_cache(maxsize=128)
def _getter(table: sa.Table) -> itemgetter[Any]:
    return itemgetter(*(c.name for c in table.columns))


def as_tuples(table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples in the table's column order; a column a row does not name is None."""
    names, getter = [c.name for c in table.columns], _getter(table)
    if len(names) == 1:
        return [(row.get(names[0]),) for row in rows]
    found = []
    for row in rows:
        try:
            found.append(getter(row))  # one C call per row: the usual case, every column named
        except KeyError:
            found.append(tuple(row.get(name) for name in names))
    return found


@lru_cache(maxsize=128)
def _delete_sql(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> str:
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle, "?")
    quote = dialect.identifier_preparer.quote
    where = " AND ".join(f"{quote(column)} = {placeholder}" for column in columns)
    return f"DELETE FROM {quote(table.name)} WHERE {where}"  # noqa: S608 - names from our tables


def delete_where(conn: sa.Connection, table: sa.Table, column: str, keys: Sequence[Any]) -> None:
    """Delete the rows whose `column` holds any of `keys`: one prepared statement run per key."""
    if keys:
        conn.exec_driver_sql(_delete_sql(table, (column,), conn.dialect), [(key,) for key in keys])


def delete_rows(conn: sa.Connection, table: sa.Table, keys: Sequence[tuple[Any, ...]]) -> None:
    """Delete single rows by their whole primary key (in the table's primary-key column order)."""
    if keys:
        columns = tuple(c.name for c in table.primary_key.columns)
        conn.exec_driver_sql(_delete_sql(table, columns, conn.dialect), list(keys))
