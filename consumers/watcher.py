"""The watcher: the ledger notices by itself when an update is overdue, progress stalls, monitoring
ends, a retrospective or a follow-up action is due.

It is a consumer like the others (its own group, its own tables): each batch of events is folded
into one schedule per escalation and the deadlines that follow from it, in the same transaction as
the batch's Kafka offsets. Beside the consumer, a firing round picks the due deadlines of the
partitions this instance owns and issues each one's command through the application service,
then marks it fired. The command carries the deadline's id, derived from the deadline, and the
aggregate refuses a second one: a crash between firing and marking, a second watcher, or a rebuild
from offset zero can never record the same deadline twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
import structlog
from prometheus_client import Counter

from consumers.runtime import ConsumerRunner, Decoded, OnError
from domain import commands as c
from domain.calendar import RegionCalendar
from domain.errors import DeadlineSettledError, EscalationError, VersionConflictError
from projections.corrected import corrected
from projections.deadline_tables import (
    ANSWERED,
    FIRED,
    PENDING,
    REFUSED,
    SETTLED,
    metadata,
    utc_text,
    watcher_deadlines,
    watcher_events,
    watcher_schedules,
)
from projections.deadlines import (
    FOLDED_FACTS,
    KINDS,
    Deadline,
    DeadlinePolicy,
    Schedule,
    deadlines,
    fold,
    new_schedule,
)
from projections.facts import RecordedEvent

GROUP = "escalations.watcher"
log = structlog.get_logger(__name__)
# What the watcher keeps of each event: what `fold` reads, and what says which facts a correction changes.
KEPT_FACTS = FOLDED_FACTS | {"corrects_version", "corrected_facts"}
FIRED_TOTAL = Counter("escalations_watcher_deadlines_fired", "Deadlines that recorded their event", ["kind"])


class WatcherProjector:
    """Folds events into schedules and keeps each escalation's pending deadlines in step with them."""

    def __init__(self, calendars: Mapping[str, RegionCalendar], policy: DeadlinePolicy) -> None:
        self.calendars = calendars
        self.policy = policy

    def apply(self, conn: sa.Connection, batch: Sequence[Decoded], on_error: OnError) -> int:
        ids = sorted({event.escalation_id for _, event in batch})
        rows = conn.execute(sa.select(watcher_schedules).where(watcher_schedules.c.escalation_id.in_(ids))).mappings()
        stored = {row["escalation_id"]: (row["version"], json.loads(row["schedule"])) for row in rows}
        current: dict[str, tuple[int, Schedule, int]] = {}
        kept: list[RecordedEvent] = []
        applied = 0
        for record, event in batch:
            version, schedule, _ = current.get(event.escalation_id) or (*stored.get(event.escalation_id, (0, None)), 0)
            if event.version <= version:
                continue  # a republished duplicate
            try:
                schedule = fold(schedule or new_schedule(), event.name, event.data)
            except Exception as error:  # noqa: BLE001 - one bad record goes to the dead-letter topic
                on_error(record, error)
                continue
            current[event.escalation_id] = (event.version, schedule, record.partition)
            kept.append(event)
            applied += 1
        self._keep(conn, kept)
        for escalation_id, schedule in self._refold_corrected(conn, kept).items():
            version, _, partition = current[escalation_id]
            current[escalation_id] = (version, schedule, partition)
        self._store(conn, current, set(stored))
        return applied

    @staticmethod
    def _keep(conn: sa.Connection, events: list[RecordedEvent]) -> None:
        if events:
            conn.execute(
                watcher_events.insert(),
                [
                    {
                        "escalation_id": e.escalation_id,
                        "version": e.version,
                        "name": e.name,
                        "data": json.dumps({k: v for k, v in e.data.items() if k in KEPT_FACTS}, default=str),
                    }
                    for e in events
                ],
            )

    @staticmethod
    def _refold_corrected(conn: sa.Connection, kept: list[RecordedEvent]) -> dict[str, Schedule]:
        """{escalation id: its schedule refolded from the corrected history} for each corrected in `kept`.

        A correction of an earlier event's facts (a back-dated update, a later close) moves the
        deadlines computed from them, so the schedule is folded again with the corrected facts in place.
        """
        keys = sorted(
            {e.escalation_id for e in kept if e.name == "CorrectionRecorded" and e.data.get("corrected_facts")}
        )
        refolded: dict[str, Schedule] = {}
        for key in keys:
            t = watcher_events
            rows = conn.execute(sa.select(t).where(t.c.escalation_id == key).order_by(t.c.version)).all()
            history = [RecordedEvent(r.name, key, r.version, 0, json.loads(r.data)) for r in rows]
            if [e.version for e in history] != list(range(1, len(history) + 1)):
                # Kept since before this table existed, or an event was dead-lettered: refolding a
                # partial history would be worse than ignoring the correction.
                log.warning("watcher.correction_not_applied", escalation=key, hint="run `escalations rebuild watcher`")
                continue
            schedule = new_schedule()
            for event in corrected(history):
                schedule = fold(schedule, event.name, event.data)
            refolded[key] = schedule
        return refolded

    def _store(self, conn: sa.Connection, current: dict[str, tuple[int, Schedule, int]], known: set[str]) -> None:
        """Every escalation's schedule and deadlines of the batch, each statement run once for all of them."""
        schedules = [
            {"key": key, "version": version, "partition": partition, "schedule": json.dumps(schedule)}
            for key, (version, schedule, partition) in current.items()
        ]
        s = watcher_schedules
        updated = [row for row in schedules if row["key"] in known]
        if updated:
            conn.execute(
                s.update()
                .where(s.c.escalation_id == sa.bindparam("key"))
                .values(
                    version=sa.bindparam("version"),
                    partition=sa.bindparam("partition"),
                    schedule=sa.bindparam("schedule"),
                ),
                updated,
            )
        inserted = [row for row in schedules if row["key"] not in known]
        if inserted:
            conn.execute(
                s.insert(),
                [
                    {
                        "escalation_id": r["key"],
                        "version": r["version"],
                        "partition": r["partition"],
                        "schedule": r["schedule"],
                    }
                    for r in inserted
                ],
            )
        t = watcher_deadlines
        existing: dict[str, list[Any]] = {key: [] for key in current}
        ids = sorted(current.keys() & known)  # a schedule stored for the first time has no deadlines yet
        for chunk in range(0, len(ids), 500):
            query = sa.select(t.c.escalation_id, t.c.deadline_id, t.c.state, t.c.due_at, t.c.facts).where(
                t.c.escalation_id.in_(ids[chunk : chunk + 500])
            )
            for row in conn.execute(query):
                existing[row.escalation_id].append(row)
        plan = _DeadlineWrites()
        for escalation_id, (_, schedule, partition) in current.items():
            calendar = self.calendars.get(schedule["region"]) or RegionCalendar(schedule["region"] or "UTC")
            every = deadlines(escalation_id, schedule, calendar, self.policy, include_fired=True)
            plan.follow(escalation_id, partition, schedule, every, existing[escalation_id])
        plan.run(conn)


class _DeadlineWrites:
    """What changes in the deadlines of a batch's escalations, written with one statement of each kind."""

    def __init__(self) -> None:
        self.gone: list[str] = []
        self.answered: list[str] = []
        self.moved: list[dict[str, Any]] = []
        self.new: list[dict[str, Any]] = []

    def follow(
        self, escalation_id: str, partition: int, schedule: Schedule, every: list[Deadline], rows: list[Any]
    ) -> None:
        standing = {d.deadline_id: d for d in every if d.deadline_id not in schedule["fired"]}
        existing: dict[str, str] = {row.deadline_id: row.state for row in rows}
        # A deadline whose reason went away (an update came, monitoring was interrupted) is cancelled.
        self.gone += [key for key, state in existing.items() if state == PENDING and key not in standing]
        # A fired deadline whose reason went away since (the overdue update came) is answered.
        still = {d.deadline_id for d in every}
        self.answered += [key for key, state in existing.items() if state == FIRED and key not in still]
        # The same deadline with a new moment or new facts (a severity change, a corrected due date):
        # it waits for the new moment, even if an earlier attempt was refused for the old one.
        for found in rows:
            d = standing.get(found.deadline_id)
            if d is None or found.state not in {PENDING, SETTLED, REFUSED}:
                continue
            due_at, facts = utc_text(d.due_at), json.dumps(d.facts)
            if (due_at, facts) != (found.due_at, found.facts):
                self.moved.append({"key": d.deadline_id, "due_at": due_at, "facts": facts})
        self.new += [
            {
                "deadline_id": d.deadline_id,
                "escalation_id": escalation_id,
                "partition": partition,
                "kind": d.kind,
                "due_at": utc_text(d.due_at),
                "facts": json.dumps(d.facts),
                "state": PENDING,
            }
            for key, d in standing.items()
            if key not in existing
        ]

    def run(self, conn: sa.Connection) -> None:
        t, key = watcher_deadlines, sa.bindparam("key", type_=sa.String)
        if self.gone:
            conn.execute(t.delete().where(t.c.deadline_id == key), [{"key": k} for k in self.gone])
        if self.answered:
            conn.execute(
                t.update().where(t.c.deadline_id == key).values(state=ANSWERED), [{"key": k} for k in self.answered]
            )
        if self.moved:
            conn.execute(
                t.update()
                .where(t.c.deadline_id == key)
                .values(
                    due_at=sa.bindparam("due_at"),
                    facts=sa.bindparam("facts"),
                    state=PENDING,
                    settled_at=None,
                    note=None,
                ),
                self.moved,
            )
        if self.new:
            conn.execute(t.insert(), self.new)


def pending_summary(conn: sa.Connection, now: datetime) -> list[dict[str, Any]]:
    """Per kind and state: how many deadlines, how many of the pending ones are due, the earliest due."""
    metadata.create_all(conn)
    t = watcher_deadlines
    due = sa.func.sum(sa.case((t.c.due_at <= utc_text(now), 1), else_=0))
    query = (
        sa.select(t.c.kind, t.c.state, sa.func.count().label("deadlines"), due.label("due"), sa.func.min(t.c.due_at))
        .group_by(t.c.kind, t.c.state)
        .order_by(t.c.kind, t.c.state)
    )
    return [
        {"kind": kind, "state": state, "deadlines": n, "due_now": int(d or 0), "earliest_due": first}
        for kind, state, n, d, first in conn.execute(query)
    ]


def due_deadlines(conn: sa.Connection, now: datetime, partitions: set[int] | None, limit: int = 500) -> list[Any]:
    t = watcher_deadlines
    query = sa.select(t).where(t.c.state == PENDING, t.c.due_at <= utc_text(now)).order_by(t.c.due_at).limit(limit)
    if partitions is not None:
        query = query.where(t.c.partition.in_(sorted(partitions)))
    return list(conn.execute(query).mappings())


def command_for(
    row: Mapping[str, Any], calendars: Mapping[str, RegionCalendar], region: str, now: datetime
) -> c.Command:
    """The command that records a due deadline (how far past due is counted now, in working days)."""
    facts = json.loads(row["facts"])
    escalation_id, deadline = UUID(row["escalation_id"]), row["deadline_id"]
    due_at = datetime.fromisoformat(row["due_at"])
    calendar = calendars.get(region) or RegionCalendar(region or "UTC")
    match row["kind"]:
        case "update_overdue":
            since = datetime.fromisoformat(facts["gap_started_at"])
            return c.RecordUpdateOverdue(
                escalation_id=escalation_id,
                deadline_id=deadline,
                due_at=due_at,
                gap_started_at=since,
                working_days_overdue=calendar.working_days_between(since, now) - facts["allowed_working_days"],
                allowed_working_days=facts["allowed_working_days"],
            )
        case "progress_stalled":
            return c.NoticeStall(
                escalation_id=escalation_id,
                deadline_id=deadline,
                no_progress_since=datetime.fromisoformat(facts["no_progress_since"]),
                working_days=facts["working_days"],
            )
        case "monitoring_ended":
            return c.EndMonitoringPeriod(escalation_id=escalation_id, deadline_id=deadline, due_at=due_at)
        case "retrospective_due":
            closed = datetime.fromisoformat(facts["closed_at"])
            return c.RecordRetrospectiveDue(
                escalation_id=escalation_id,
                deadline_id=deadline,
                closed_at=closed,
                working_days_since_closing=calendar.working_days_between(closed, now),
            )
        case "follow_up_overdue":
            return c.RecordFollowUpActionOverdue(
                escalation_id=escalation_id, deadline_id=deadline, action_id=facts["action_id"]
            )
    msg = f"unknown deadline kind {row['kind']!r}; this watcher knows {', '.join(KINDS)}"
    raise ValueError(msg)


class Runner(Protocol):
    """The consumer the watcher runs beside its firing rounds (a ConsumerRunner)."""

    assigned: set[int]

    def run(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> str: ...


class Watcher:
    """The consumer folding the schedule, and the firing rounds, as one part with `run()` and `stop()`."""

    def __init__(
        self,
        *,
        runner: Runner | ConsumerRunner,
        engine: sa.Engine,
        handler: c.CommandHandler,
        clock: Callable[[], datetime],
        calendars: Mapping[str, RegionCalendar],
        actor: str,
        interval: float = 5.0,
    ) -> None:
        self.runner = runner
        self.engine = engine
        self.handler = handler
        self.clock = clock
        self.calendars = calendars
        self.actor = actor
        self.interval = interval
        self.fired = 0
        self.rounds = 0
        self._stopping = threading.Event()

    @property
    def assigned(self) -> set[int]:
        return self.runner.assigned

    def health(self) -> str:
        """The consumer's health (for readiness): the firing rounds need its partitions."""
        return self.runner.health()

    def run(self) -> None:
        """Consume and fire until `stop()`; ends with an error if the consumer fails (the supervisor restarts it)."""
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                self.runner.run()
            except BaseException as error:  # noqa: BLE001 - handed to run(), which re-raises it
                failure.append(error)
                self._stopping.set()

        consumer = threading.Thread(target=consume, name="watcher-consumer", daemon=True)
        consumer.start()
        try:
            while not self._stopping.is_set():
                if self.runner.assigned:
                    self.fire_due()
                self._stopping.wait(self.interval)
        finally:
            self.runner.stop()
            consumer.join(timeout=60)
        if failure:
            raise failure[0]

    def stop(self) -> None:
        """Safe from a signal handler: the current round and batch finish, then both end."""
        self._stopping.set()
        self.runner.stop()

    def fire_due(self, partitions: set[int] | None = None) -> int:
        """Fire every due, unfired deadline of these partitions (default: the ones this instance owns)."""
        now = self.clock()
        owned = set(self.runner.assigned) if partitions is None else partitions
        with self.engine.connect() as conn:
            due = due_deadlines(conn, now, owned)
            regions = self._regions(conn, {row["escalation_id"] for row in due})
        fired = 0
        for row in due:
            if self._stopping.is_set():
                break
            fired += self._fire(row, regions.get(row["escalation_id"], ""), now)
        self.rounds += 1
        return fired

    def _fire(self, row: Mapping[str, Any], region: str, now: datetime) -> int:
        try:
            self.handler.handle(command_for(row, self.calendars, region, now), actor=self.actor)
        except DeadlineSettledError as settled:
            self._mark(row["deadline_id"], SETTLED, now, str(settled))
            return 0
        except VersionConflictError:
            return 0  # another writer (or watcher) got there first; the next round sees what it recorded
        except EscalationError as refused:
            log.warning("watcher.deadline_refused", deadline=row["deadline_id"], kind=row["kind"], error=str(refused))
            self._mark(row["deadline_id"], REFUSED, now, str(refused))
            return 0
        # A crash here leaves the deadline pending: the next round fires it again and the aggregate refuses.
        self._mark(row["deadline_id"], FIRED, now, None)
        FIRED_TOTAL.labels(row["kind"]).inc()
        log.info(
            "watcher.deadline_fired", deadline=row["deadline_id"], kind=row["kind"], escalation=row["escalation_id"]
        )
        self.fired += 1
        return 1

    def _mark(self, deadline: str, state: str, now: datetime, note: str | None) -> None:
        t = watcher_deadlines
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.deadline_id == deadline, t.c.state == PENDING)
                .values(state=state, settled_at=utc_text(now), note=note)
            )

    @staticmethod
    def _regions(conn: sa.Connection, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = conn.execute(
            sa.select(watcher_schedules.c.escalation_id, watcher_schedules.c.schedule).where(
                watcher_schedules.c.escalation_id.in_(sorted(ids))
            )
        )
        return {key: json.loads(schedule)["region"] for key, schedule in rows}
