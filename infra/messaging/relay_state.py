"""What the relay keeps in the event store's own database: its checkpoint, and its single-writer lock.

The checkpoint is the last notification position that Kafka acknowledged, plus, per partition, the
offset where our last acknowledged flush began: a broker whose partition now ends before that
offset has lost data, and everything is republished.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Self

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

metadata = sa.MetaData()
checkpoints = sa.Table(
    "relay_checkpoints",
    metadata,
    sa.Column("relay", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
partition_marks = sa.Table(
    "relay_partition_marks",
    metadata,
    sa.Column("relay", sa.String(100), primary_key=True),
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("flush_start_offset", sa.BigInteger, nullable=False),
)

# A fixed key for pg_advisory_lock: "esclrly" in ASCII, so it is recognisable in pg_locks.
ADVISORY_LOCK_KEY = 0x65_73_63_6C_72_6C_79


class RelayLockedError(RuntimeError):
    """Another relay already publishes from this event store."""


class Checkpoint:
    def __init__(self, engine: Engine, relay: str) -> None:
        self.engine = engine
        self.relay = relay
        metadata.create_all(engine)

    def position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(checkpoints.c.position).where(checkpoints.c.relay == self.relay)).scalar()
        return int(found or 0)

    def marks(self, topic: str) -> dict[int, int]:
        query = sa.select(partition_marks.c.partition, partition_marks.c.flush_start_offset).where(
            partition_marks.c.relay == self.relay, partition_marks.c.topic == topic
        )
        with self.engine.connect() as conn:
            return {int(p): int(o) for p, o in conn.execute(query)}

    def save(self, position: int, topic: str, flush_starts: dict[int, int]) -> None:
        with self.engine.begin() as conn:
            self._upsert_position(conn, position)
            for partition, offset in flush_starts.items():
                conn.execute(
                    partition_marks.delete().where(
                        partition_marks.c.relay == self.relay,
                        partition_marks.c.topic == topic,
                        partition_marks.c.partition == partition,
                    )
                )
                conn.execute(
                    partition_marks.insert().values(
                        relay=self.relay, topic=topic, partition=partition, flush_start_offset=offset
                    )
                )

    def reset(self) -> None:
        """Forget everything published: the next round republishes from the start."""
        with self.engine.begin() as conn:
            self._upsert_position(conn, 0)
            conn.execute(partition_marks.delete().where(partition_marks.c.relay == self.relay))

    def _upsert_position(self, conn: sa.Connection, position: int) -> None:
        updated = conn.execute(checkpoints.update().where(checkpoints.c.relay == self.relay).values(position=position))
        if updated.rowcount == 0:
            conn.execute(checkpoints.insert().values(relay=self.relay, position=position))


class RelayLock:
    """One relay per event store: a PostgreSQL advisory lock, or a file lock beside the SQLite file."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self._file: IO[str] | None = None
        self._engine: Engine | None = None
        self._conn: sa.Connection | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def try_acquire(self) -> bool:
        if self.url.get_backend_name() == "sqlite":
            return self._try_file_lock(Path(str(self.url.database) + ".relay.lock"))
        return self._try_advisory_lock()

    def acquire(self) -> None:
        if not self.try_acquire():
            msg = (
                f"another relay is already publishing from the event store at {self.url.render_as_string()}; "
                f"stop it first, or let this one wait as a standby"
            )
            raise RelayLockedError(msg)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _try_file_lock(self, path: Path) -> bool:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def _try_advisory_lock(self) -> bool:
        # The lock lives as long as this one session, so it needs a connection of its own.
        self._engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        self._conn = self._engine.connect()
        locked = bool(self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_LOCK_KEY))).scalar())
        self._conn.commit()
        if not locked:
            self.release()
        return locked
