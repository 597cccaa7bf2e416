"""Rebuild beside the live read model, then switch it in, in one transaction, while queries keep answering.

The rebuild fills a staging place of its own: a new SQLite file beside the live one, or a new schema
in the live PostgreSQL database. Nothing reads it, so it runs with settings unsafe for live traffic
(SQLite `synchronous=OFF` and `journal_mode=OFF`, PostgreSQL `synchronous_commit=off`). The switch
is one transaction on the live database: raise the group's generation (see `consumers/offsets.py`),
replace the read model's tables, views and indexes with the staged ones, and replace the group's
offsets with the rebuild's. That commit is an ordinary durable one (and on PostgreSQL it flushes the
WAL of the staged commits before it). A live consumer of the group then finds its generation gone
and continues from the rebuild's offsets: nothing is applied twice, nothing skipped.

Queries answer throughout: the live tables stay until the switch commits; on SQLite the copy into
the live file runs inside the write transaction (readers see the old rows until the commit), on
PostgreSQL the staged tables move in with `ALTER TABLE ... SET SCHEMA` (readers wait for that short
transaction, then see the new tables).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import structlog

from consumers.offsets import metadata

log = structlog.get_logger(__name__)

# The offsets tables stay where they are: only this group's rows move.
KEPT = frozenset({"consumer_offsets", "read_model_generations"})


class StagingError(Exception):
    """The read model's database cannot hold a staged rebuild beside it."""


def staging_engine(live: sa.Engine, name: str) -> sa.Engine:
    """An empty place for the rebuild of `name`: a fresh file beside the live SQLite one, or a fresh schema."""
    if live.dialect.name == "sqlite":
        path = staged_sqlite_path(live, name)
        path.unlink(missing_ok=True)
        staged = sa.create_engine(f"sqlite:///{path}")

        @sa.event.listens_for(staged, "connect")
        def unsafe_but_fast(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            # Durability comes from the switch's own commit into the live file, not from this one.
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=OFF")
            cursor.close()

        return staged
    if live.dialect.name == "postgresql":
        schema = staged_schema(name)
        with live.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        return sa.create_engine(
            live.url, connect_args={"options": f"-c search_path={schema} -c synchronous_commit=off"}
        )
    msg = f"no rebuild beside a {live.dialect.name} read model; use SQLite or PostgreSQL"
    raise StagingError(msg)


def staged_sqlite_path(live: sa.Engine, name: str) -> Path:
    database = live.url.database
    if not database or database == ":memory:":
        msg = "an in-memory SQLite read model has no place beside it; set ESCALATIONS_READ_MODEL_URL to a file"
        raise StagingError(msg)
    path = Path(database)
    return path.with_name(f"{path.stem}.rebuild-{name}{path.suffix or '.db'}")


def staged_schema(name: str) -> str:
    return f"rebuild_{name}"


def switch(live: sa.Engine, staged: sa.Engine, name: str, group: str) -> None:
    """Replace the live read model with the staged one, and the group's offsets with the rebuild's, atomically."""
    staged.dispose()
    metadata.create_all(live)  # the offsets' own tables, if the live database has none yet
    if live.dialect.name == "sqlite":
        _switch_sqlite(live, staged, group)
    else:
        _switch_postgres(live, staged_schema(name), group)
    log.info("rebuild.switched", group=group)


def discard(live: sa.Engine, staged: sa.Engine, name: str) -> None:
    """Remove the staging place (after a switch it holds nothing the live model needs)."""
    staged.dispose()
    if live.dialect.name == "sqlite":
        staged_sqlite_path(live, name).unlink(missing_ok=True)
    else:
        with live.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {staged_schema(name)} CASCADE")


def _next_generation(conn: sa.Connection, group: str) -> None:
    """First statement of the switch: takes the group's row lock, so no batch of the live consumer is half-way."""
    raised = conn.exec_driver_sql(
        _params(conn, "UPDATE read_model_generations SET generation = generation + 1 WHERE consumer_group = ?"),
        (group,),
    )
    if raised.rowcount == 0:
        conn.exec_driver_sql(
            _params(conn, "INSERT INTO read_model_generations (consumer_group, generation) VALUES (?, 1)"), (group,)
        )


def _params(conn: sa.Connection, sql: str) -> str:
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def _switch_sqlite(live: sa.Engine, staged: sa.Engine, group: str) -> None:
    path = str(staged.url.database)
    with live.connect() as conn:
        conn.exec_driver_sql("ATTACH DATABASE ? AS rebuilt", (path,))
        conn.commit()
        try:
            objects = conn.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM rebuilt.sqlite_master WHERE sql IS NOT NULL"
            ).all()
            tables = [o.name for o in objects if o.type == "table" and o.name not in KEPT]
            views = [o for o in objects if o.type == "view"]
            indexes = [o for o in objects if o.type == "index" and o.tbl_name not in KEPT]
            _next_generation(conn, group)  # pysqlite opens the write transaction here
            for view in views:
                conn.exec_driver_sql(f'DROP VIEW IF EXISTS main."{view.name}"')
            for table in tables:
                # Dropped and created from the staged definition: a rebuild may follow a schema change.
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS main."{table}"')
                conn.exec_driver_sql(next(o.sql for o in objects if o.type == "table" and o.name == table))
                conn.exec_driver_sql(f'INSERT INTO main."{table}" SELECT * FROM rebuilt."{table}"')  # noqa: S608
            for index in indexes:
                conn.exec_driver_sql(index.sql)
            for view in views:
                conn.exec_driver_sql(view.sql)
            _copy_offsets(conn, "rebuilt.", "main.", group)
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql("DETACH DATABASE rebuilt")
            conn.commit()


def _switch_postgres(live: sa.Engine, schema: str, group: str) -> None:
    with live.begin() as conn:
        current = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        _next_generation(conn, group)
        moved = conn.exec_driver_sql(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).all()
        for name, kind in moved:
            if name not in KEPT and kind == "VIEW":
                conn.exec_driver_sql(f'DROP VIEW IF EXISTS "{current}"."{name}" CASCADE')
        for name, kind in moved:
            if name not in KEPT and kind != "VIEW":
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{current}"."{name}" CASCADE')
        for name, kind in moved:
            if name not in KEPT:
                what = "VIEW" if kind == "VIEW" else "TABLE"
                conn.exec_driver_sql(f'ALTER {what} {schema}."{name}" SET SCHEMA "{current}"')
        _copy_offsets(conn, f"{schema}.", f'"{current}".', group)


def _copy_offsets(conn: sa.Connection, source: str, target: str, group: str) -> None:
    delete = f"DELETE FROM {target}consumer_offsets WHERE consumer_group = ?"  # noqa: S608 - our own schema names
    conn.exec_driver_sql(_params(conn, delete), (group,))
    conn.exec_driver_sql(
        _params(
            conn,
            f"INSERT INTO {target}consumer_offsets (consumer_group, topic, partition, next_offset) "  # noqa: S608
            f"SELECT consumer_group, topic, partition, next_offset FROM {source}consumer_offsets "
            "WHERE consumer_group = ?",
        ),
        (group,),
    )
