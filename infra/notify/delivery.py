"""The delivery loop: sends what the notifier recorded, in order per escalation, with retries.

At least once: a delivery is marked sent only after the receiver accepted it, so a crash between
the two sends it again, with the same webhook-id. Per escalation and destination only the oldest
undelivered message is tried, so order holds; a dead message stops blocking the ones behind it.
Each attempt first leases its row, so two loops never send the same row at the same time.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge

from consumers.notifier import delivery_id, slack_payload
from infra.notify.senders import DeliveryFailed, Outgoing, Sender
from projections.notification_tables import (
    DEAD,
    PENDING,
    SENT,
    STATES,
    NewDelivery,
    active_contexts,
    notify_deliveries,
    record_deliveries,
)
from projections.notifications import digest

log = structlog.get_logger(__name__)

SENT_TOTAL = Counter("escalations_notifier_sent", "Messages delivered", ["kind"])
FAILED_TOTAL = Counter("escalations_notifier_attempts_failed", "Delivery attempts that failed", ["kind"])
DEAD_TOTAL = Counter("escalations_notifier_dead", "Deliveries given up after the last retry", ["kind"])
BY_STATE = Gauge("escalations_notifier_deliveries", "Deliveries in the log by state", ["state"])


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    initial: float = 2.0
    limit: float = 600.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Exponential with full jitter up to `limit`; a receiver's Retry-After is honoured as the minimum."""
        backoff = random.uniform(0.5, 1.0) * min(self.limit, self.initial * 2 ** (attempts - 1))  # noqa: S311
        return float(max(backoff, retry_after or 0.0))


@dataclass(frozen=True)
class DigestPlan:
    channel: str
    hour_utc: int


class DeliveryLoop:
    def __init__(
        self,
        engine: sa.Engine,
        senders: Mapping[str, Sender],
        clock: Callable[[], datetime],
        *,
        policy: RetryPolicy,
        lease_seconds: float,
        poll_interval: float = 0.5,
        digest_plan: DigestPlan | None = None,
    ) -> None:
        self.engine = engine
        self.senders = senders  # by destination prefix: "slack", "webhook"
        self.clock = clock
        self.policy = policy
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.digest_plan = digest_plan
        self._stopping = threading.Event()

    def run(self) -> None:
        log.info("notifier.delivery_started")
        while not self._stopping.is_set():
            if not self.run_once():
                self._stopping.wait(self.poll_interval)
        log.info("notifier.delivery_stopped")

    def stop(self) -> None:
        """Safe from a signal handler: the attempt in flight finishes, then the loop ends."""
        self._stopping.set()

    def run_once(self) -> int:
        """One round: queue today's digest if due, then try every due head of line. Returns attempts made."""
        self.queue_digest()
        attempts = 0
        for row in self._due():
            if self._stopping.is_set():
                break
            if self._lease(row.delivery_id):
                self._attempt(row)
                attempts += 1
        self._count_states()
        return attempts

    def queue_digest(self) -> bool:
        plan, now = self.digest_plan, self.clock()
        if plan is None or now.hour < plan.hour_utc:
            return False
        day = now.date().isoformat()
        with self.engine.begin() as conn:
            message = digest(active_contexts(conn), plan.channel, day, now)
            destination = f"slack:{plan.channel}"
            new = NewDelivery(
                delivery_id(f"digest:{day}", destination), f"digest:{day}", destination, None, 0, "digest",
                slack_payload(message), PENDING, now.timestamp(),
            )  # fmt: skip
            try:
                return record_deliveries(conn, [new]) > 0
            except sa.exc.IntegrityError:
                return False  # another loop queued it first

    def _due(self) -> list[sa.Row[tuple[object, ...]]]:
        query = (
            sa.select(notify_deliveries)
            .where(notify_deliveries.c.state == PENDING)
            .order_by(notify_deliveries.c.escalation_id, notify_deliveries.c.destination, notify_deliveries.c.position)
            .limit(1000)
        )
        now = self.clock().timestamp()
        heads: dict[tuple[object, ...], sa.Row[tuple[object, ...]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                line = (row.escalation_id or row.delivery_id, row.destination)
                heads.setdefault(line, row)
        return [
            row
            for row in heads.values()
            if float(row.next_attempt_at) <= now and (row.leased_until is None or float(row.leased_until) <= now)
        ]

    def _lease(self, key: str) -> bool:
        now = self.clock().timestamp()
        with self.engine.begin() as conn:
            taken = conn.execute(
                notify_deliveries.update()
                .where(
                    notify_deliveries.c.delivery_id == key,
                    notify_deliveries.c.state == PENDING,
                    sa.or_(notify_deliveries.c.leased_until.is_(None), notify_deliveries.c.leased_until <= now),
                )
                .values(leased_until=now + self.lease_seconds)
            )
            return taken.rowcount == 1

    def _attempt(self, row: sa.Row[tuple[object, ...]]) -> None:
        kind, destination = str(row.kind), str(row.destination)
        sender = self.senders.get(destination.partition(":")[0])
        attempts = int(str(row.attempts)) + 1
        try:
            if sender is None:
                _no_sender(destination)
            assert sender is not None
            sender.send(Outgoing(str(row.delivery_id), destination, json.loads(str(row.payload))))
        except DeliveryFailed as failure:
            self._failed(row, attempts, failure)
            return
        self._update(
            str(row.delivery_id), state=SENT, attempts=attempts, sent_at=self.clock().timestamp(), last_error=None
        )
        SENT_TOTAL.labels(kind).inc()
        log.info("notifier.delivered", delivery=row.delivery_id, kind=kind, destination=_shown(destination))

    def _failed(self, row: sa.Row[tuple[object, ...]], attempts: int, failure: DeliveryFailed) -> None:
        kind = str(row.kind)
        FAILED_TOTAL.labels(kind).inc()
        if attempts >= self.policy.max_attempts:
            self._update(str(row.delivery_id), state=DEAD, attempts=attempts, last_error=str(failure))
            DEAD_TOTAL.labels(kind).inc()
            log.error("notifier.dead", delivery=row.delivery_id, kind=kind, attempts=attempts, error=str(failure))
            return
        later = self.clock().timestamp() + self.policy.delay(attempts, failure.retry_after)
        self._update(str(row.delivery_id), attempts=attempts, next_attempt_at=later, last_error=str(failure))
        log.warning("notifier.retrying", delivery=row.delivery_id, kind=kind, attempts=attempts, error=str(failure))

    def _update(self, key: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                notify_deliveries.update()
                .where(notify_deliveries.c.delivery_id == key)
                .values(leased_until=None, **values)
            )

    def _count_states(self) -> None:
        counts = delivery_counts(self.engine)
        for state in STATES:
            BY_STATE.labels(state).set(counts.get(state, 0))


def _no_sender(destination: str) -> None:
    msg = f"no sender configured for {destination.partition(':')[0]}; set its settings (e.g. the Slack token)"
    raise DeliveryFailed(msg)


def _shown(destination: str) -> str:
    return destination  # slack:<channel> or webhook:<id>: never a URL, so never a credential


def delivery_counts(engine: sa.Engine) -> dict[str, int]:
    query = sa.select(notify_deliveries.c.state, sa.func.count()).group_by(notify_deliveries.c.state)
    with engine.connect() as conn:
        return {str(state): int(n) for state, n in conn.execute(query)}


def dead_deliveries(engine: sa.Engine) -> list[dict[str, object]]:
    query = (
        sa.select(
            notify_deliveries.c.delivery_id,
            notify_deliveries.c.kind,
            notify_deliveries.c.destination,
            notify_deliveries.c.escalation_id,
            notify_deliveries.c.attempts,
            notify_deliveries.c.last_error,
        )
        .where(notify_deliveries.c.state == DEAD)
        .order_by(notify_deliveries.c.created_at)
    )
    with engine.connect() as conn:
        return [dict(row._asdict()) for row in conn.execute(query)]


def retry_dead(engine: sa.Engine, now: datetime, key: str | None = None) -> int:
    """Give dead deliveries (one, or all) a fresh set of attempts, due now; returns how many."""
    where = [notify_deliveries.c.state == DEAD]
    if key is not None:
        where.append(notify_deliveries.c.delivery_id == key)
    with engine.begin() as conn:
        changed = conn.execute(
            notify_deliveries.update()
            .where(*where)
            .values(state=PENDING, attempts=0, next_attempt_at=now.timestamp(), leased_until=None)
        )
        return int(changed.rowcount)
