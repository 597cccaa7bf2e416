"""Read-your-writes without a thread per reader: waiters are futures, one poller answers them all.

A reader that asks for "the read model at position N" waits on the event loop, not in a worker
thread, so any number of readers leave the thread pool to commands. One poller task reads the
positions every waiter needs in one round, on a thread of its own, and wakes those that are
satisfied. The number of waiters is bounded: past it the reader is told to come back later.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import UUID

import sqlalchemy as sa

from projections import queries


class TooManyWaitersError(Exception):
    """Every waiting place is taken."""


class NotCaughtUpError(Exception):
    """The read model did not reach the position in time."""


@dataclass(eq=False)  # each waiter is itself, however alike two are
class _Waiter:
    escalation_id: str | None
    position: int
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class PositionWaiters:
    def __init__(self, read_model: sa.Engine, *, limit: int = 256, interval: float = 0.05) -> None:
        self.read_model = read_model
        self.limit = limit
        self.interval = interval
        self._waiting: set[_Waiter] = set()
        self._poller: asyncio.Task[None] | None = None
        # Its own thread: the poller never queues behind commands in the shared pool, nor they behind it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-your-writes")

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def wait(self, position: int, timeout: float, escalation_id: UUID | None = None) -> None:  # noqa: ASYNC109
        if len(self._waiting) >= self.limit:
            msg = f"{self.limit} readers are already waiting for the read model; retry shortly"
            raise TooManyWaitersError(msg)
        waiter = _Waiter(str(escalation_id) if escalation_id else None, position)
        if await self._reached(waiter):  # even with no time to wait, a position already reached is answered
            return
        self._waiting.add(waiter)
        try:
            self._ensure_poller()
            await asyncio.wait_for(asyncio.shield(waiter.done), timeout)
        except TimeoutError:
            msg = f"the read model has not reached position {position} within {timeout}s; retry shortly"
            raise NotCaughtUpError(msg) from None
        finally:
            self._waiting.discard(waiter)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            waiting = list(self._waiting)
            ids = sorted({w.escalation_id for w in waiting if w.escalation_id is not None})
            newest, by_escalation = await loop.run_in_executor(self._executor, self._positions, ids)
            for waiter in waiting:
                seen = newest if waiter.escalation_id is None else by_escalation.get(waiter.escalation_id, 0)
                if seen >= waiter.position and not waiter.done.done():
                    waiter.done.set_result(None)
            await asyncio.sleep(self.interval)

    async def _reached(self, waiter: _Waiter) -> bool:
        ids = [waiter.escalation_id] if waiter.escalation_id else []
        newest, by_escalation = await asyncio.get_running_loop().run_in_executor(self._executor, self._positions, ids)
        seen = newest if waiter.escalation_id is None else by_escalation.get(waiter.escalation_id, 0)
        return seen >= waiter.position

    def _positions(self, escalation_ids: list[str]) -> tuple[int, dict[str, int]]:
        with self.read_model.connect() as conn:
            return queries.position_seen(conn), queries.positions_seen(conn, escalation_ids)
