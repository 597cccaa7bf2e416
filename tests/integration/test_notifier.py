"""The notifier against a local Slack and a local webhook receiver: every kind, failures, crashes, rebuilds.

No broker: the consumer's projector gets the story's events as the runtime would hand them over,
and the delivery loop sends to `LocalReceiver` over real HTTP. Waits are on conditions.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from consumers.notifier import NotifierProjector
from consumers.runtime import Decoded
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.bootstrap import build_delivery_loop
from infra.http.app import create_app
from infra.local.receiver import LocalReceiver, Misbehaviour
from infra.local.stories import ldap_proxy_story
from infra.messaging.envelope import structured
from infra.notify.delivery import DeliveryLoop, dead_deliveries, delivery_counts, retry_dead
from infra.notify.subscriptions import add_subscription
from infra.settings import Settings
from projections.facts import RecordedEvent
from projections.notification_tables import create_notifier_schema, notify_deliveries, reset_notifier_context
from projections.notifications import fold_context, render
from tests.fakes import SteppingClock
from tests.support.processes import escalations_process

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def story() -> list[RecordedEvent]:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    start = (NOW - timedelta(days=14)).replace(hour=8, minute=0, second=0)
    return history_as_recorded(service, ldap_proxy_story(service, start))


@dataclass
class Notifier:
    engine: sa.Engine
    settings: Settings
    receiver: LocalReceiver
    loop: DeliveryLoop

    def record(
        self,
        events: list[RecordedEvent],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        slack: bool = True,
    ) -> None:
        projector = NotifierProjector(
            cloudevent=lambda e: structured(e, "urn:test"), clock=clock, max_age=timedelta(hours=24), slack=slack
        )
        with self.engine.begin() as conn:
            projector.apply(conn, [Decoded(None, e) for e in events], lambda _, error: pytest.fail(str(error)))

    def subscribe(self, hook: str, secret_seen_by_receiver: str | None = None, **filters: Any) -> str:
        created = add_subscription(
            self.engine, self.receiver.hook_url(hook), NOW - timedelta(days=30), "mia", **filters
        )
        self.receiver.secrets[hook] = secret_seen_by_receiver or created.secret.get_secret_value()
        return created.subscription_id

    def deliver_until(self, done: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; log: {delivery_counts(self.engine)}")
            if not self.loop.run_once():
                time.sleep(0.02)

    def counts(self) -> dict[str, int]:
        return delivery_counts(self.engine)


@pytest.fixture
def notifier(tmp_path: Path) -> Iterator[Notifier]:
    with LocalReceiver() as receiver:
        settings = Settings(
            data_dir=tmp_path,
            read_model_url=f"sqlite:///{tmp_path / 'notifier.db'}",
            notify_slack_token=SecretStr(receiver.token),
            notify_slack_base_url=receiver.slack_base_url,
            notify_max_attempts=4,
            notify_backoff_initial_seconds=0.05,
            notify_backoff_max_seconds=0.2,
            notify_timeout_seconds=1,
        )
        engine = sa.create_engine(settings.read_model)
        create_notifier_schema(engine)
        yield Notifier(engine, settings, receiver, build_delivery_loop(settings, engine))


def expected_slack(events: list[RecordedEvent]) -> list[str]:
    context, texts = None, []
    for event in events:
        context = fold_context(context, event)
        message = render(event, context)
        if message is not None:
            texts.append(message.text)
    return texts


def test_every_message_kind_reaches_slack_in_order_and_every_event_the_signed_webhook(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    notifier.subscribe("ops")

    notifier.record(story)
    notifier.deliver_until(lambda: notifier.counts() == {"sent": len(expected_slack(story)) + len(story)}, "all sent")

    assert [m["text"] for m in notifier.receiver.received.slack] == expected_slack(story)
    assert all(m["channel"] == "#a_globex_escalation" for m in notifier.receiver.received.slack)
    hooks = notifier.receiver.received.webhooks["ops"]
    assert [h["aggregateversion"] for h in hooks] == list(range(1, len(story) + 1))
    assert hooks[0]["specversion"] == "1.0"
    assert hooks[0]["type"] == "escalations.EscalationOpened.v1"
    assert hooks[0]["data"]["channel"] == "#a_globex_escalation"


def test_a_subscription_receives_only_what_it_chose(notifier: Notifier, story: list[RecordedEvent]) -> None:
    notifier.subscribe("closings", event_types=["EscalationClosed"])
    notifier.subscribe("amer", regions=["AMER"])

    notifier.record(story)
    notifier.deliver_until(lambda: notifier.counts().get("pending", 0) == 0, "nothing pending")

    assert [h["data"]["outcome"] for h in notifier.receiver.received.webhooks["closings"]] != []
    assert len(notifier.receiver.received.webhooks["closings"]) == 1
    assert "amer" not in notifier.receiver.received.webhooks


def test_a_receiver_down_for_a_while_gets_everything_later_and_nothing_twice(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    notifier.subscribe("ops")
    notifier.receiver.stop()
    notifier.record(story)
    notifier.loop.policy = type(notifier.loop.policy)(max_attempts=1000, initial=0.05, limit=0.2)
    notifier.deliver_until(lambda: _failed_attempts(notifier) >= 3, "three refused attempts while the receiver is down")
    assert notifier.counts() == {"pending": len(expected_slack(story)) + len(story)}

    notifier.receiver.start()
    notifier.deliver_until(lambda: notifier.counts() == {"sent": len(expected_slack(story)) + len(story)}, "all sent")

    received = notifier.receiver.received
    assert [m["text"] for m in received.slack] == expected_slack(story)
    assert len(received.webhook_ids["ops"]) == len(set(received.webhook_ids["ops"])) == len(story)


def _failed_attempts(notifier: Notifier) -> int:
    query = sa.select(sa.func.max(notify_deliveries.c.attempts))
    with notifier.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def test_500s_and_429_with_retry_after_are_retried_and_the_retry_after_is_honoured(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    notifier.receiver.misbehave(Misbehaviour(500), Misbehaviour(429, retry_after=1))
    notifier.record(story[:1])

    notifier.loop.run_once()
    notifier.deliver_until(lambda: _failed_attempts(notifier) == 2, "the 500 and the 429 to be recorded")
    with notifier.engine.connect() as conn:
        row = conn.execute(sa.select(notify_deliveries)).one()

    assert row.next_attempt_at - time.time() > 0.5  # waits out Retry-After, not the 0.2s backoff limit
    assert "429" in row.last_error
    notifier.deliver_until(lambda: notifier.counts() == {"sent": 1}, "the opening message to be sent")
    assert len(notifier.receiver.received.slack) == 1


def test_a_timed_out_webhook_is_sent_again_with_the_same_webhook_id(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    notifier.settings = notifier.settings.but(notify_slack_token=None)
    notifier.loop = build_delivery_loop(notifier.settings, notifier.engine)
    notifier.subscribe("ops", event_types=["EscalationOpened"])
    notifier.receiver.misbehave(Misbehaviour(delay=2.5))  # past the 1s timeout
    notifier.record(story[:1], slack=False)

    notifier.deliver_until(
        lambda: (
            notifier.counts().get("sent", 0) == 1 and len(notifier.receiver.received.webhook_ids.get("ops", [])) == 2
        ),
        "the retry after the timeout, and the slow first request, to arrive",
    )

    ids = notifier.receiver.received.webhook_ids["ops"]
    assert ids[0] == ids[1]  # the receiver can drop the duplicate
    assert len(notifier.receiver.received.webhooks["ops"]) == 1


def test_a_bad_signature_secret_ends_dead_and_a_retry_delivers_once_fixed(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    subscription = notifier.subscribe(
        "ops", secret_seen_by_receiver="whsec_" + "A" * 43 + "=", event_types=["EscalationOpened"]
    )
    notifier.record(story[:1])

    notifier.deliver_until(lambda: notifier.counts().get("dead", 0) == 1, "the webhook delivery to die")
    dead = dead_deliveries(notifier.engine)
    assert dead[0]["destination"] == f"webhook:{subscription}"
    assert dead[0]["attempts"] == 4
    assert "401" in str(dead[0]["last_error"])
    assert notifier.receiver.received.rejected_signatures == 4

    with notifier.engine.connect() as conn:
        secret = conn.execute(sa.text("select secret from notify_subscriptions")).scalar_one()
    notifier.receiver.secrets["ops"] = secret
    assert retry_dead(notifier.engine, datetime.now(UTC)) == 1
    notifier.deliver_until(
        lambda: notifier.counts().get("dead", 0) == 0 and "ops" in notifier.receiver.received.webhooks,
        "the retried delivery",
    )

    assert len(notifier.receiver.received.webhooks["ops"]) == 1


def test_a_rebuild_or_a_replayed_topic_sends_nothing_again(notifier: Notifier, story: list[RecordedEvent]) -> None:
    notifier.subscribe("ops")
    notifier.record(story)
    notifier.deliver_until(lambda: notifier.counts().get("pending", 0) == 0, "the first pass to be delivered")
    before = (len(notifier.receiver.received.slack), len(notifier.receiver.received.webhook_ids["ops"]))

    notifier.record(story)  # a replayed topic
    reset_notifier_context(notifier.engine)
    notifier.record(story)  # a rebuild from offset zero
    notifier.loop.run_once()

    assert notifier.counts().get("pending", 0) == 0
    assert (len(notifier.receiver.received.slack), len(notifier.receiver.received.webhook_ids["ops"])) == before


def test_events_older_than_the_limit_at_first_sight_are_recorded_as_skipped(
    notifier: Notifier, story: list[RecordedEvent]
) -> None:
    notifier.subscribe("ops")

    notifier.record(story, clock=lambda: datetime.now(UTC) + timedelta(days=2))
    notifier.loop.run_once()

    assert set(notifier.counts()) == {"skipped"}
    assert notifier.receiver.received.requests == 0


def test_the_digest_goes_to_the_managers_channel_once_a_day(notifier: Notifier, story: list[RecordedEvent]) -> None:
    settings = notifier.settings.but(notify_managers_channel="#support-managers", notify_digest_hour_utc=0)
    loop = build_delivery_loop(settings, notifier.engine)
    notifier.record(story[:5])

    notifier.loop = loop
    notifier.deliver_until(
        lambda: notifier.counts().get("pending", 0) == 0 and notifier.counts().get("sent", 0) > 0, "the digest"
    )
    loop.run_once()

    digests = [m for m in notifier.receiver.received.slack if m["channel"] == "#support-managers"]
    assert len(digests) == 1
    assert "Globex" in str(digests[0]["blocks"])


def test_the_notifier_killed_mid_delivery_delivers_after_restart(
    notifier: Notifier, story: list[RecordedEvent], tmp_path: Path
) -> None:
    notifier.subscribe("ops", event_types=["EscalationOpened"])
    notifier.record(story[:1])
    notifier.receiver.misbehave(Misbehaviour(delay=30))  # holds the first request open
    settings = notifier.settings.but(notify_timeout_seconds=30)
    log = tmp_path / "deliver.log"

    first = escalations_process(settings, log, "notify", "deliver")
    try:
        _wait(lambda: notifier.receiver.received.requests >= 1, "the first request to reach the receiver", 60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    with notifier.engine.begin() as conn:  # the lease a crashed loop left is over (2 x timeout + 5 s in life)
        conn.execute(notify_deliveries.update().values(leased_until=time.time()))
    second = escalations_process(settings, log, "notify", "deliver")
    try:
        _wait(lambda: notifier.counts() == {"sent": 2}, f"both messages to be sent; see {log}", 60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    assert len(notifier.receiver.received.webhooks["ops"]) == 1
    assert len(notifier.receiver.received.slack) in (1, 2)  # the held request may yet land: at least once


def _wait(done: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_managers_add_list_pause_and_remove_subscriptions_over_the_api_and_see_the_secret_once(
    notifier: Notifier,
) -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    app = create_app(service, notifier.engine, {"m": "manager:mia", "e": "engineer:priya.lead"})
    manager, engineer = {"Authorization": "Bearer m"}, {"Authorization": "Bearer e"}
    with TestClient(app) as http:
        created = http.post(
            "/notifications/subscriptions",
            json={"url": "https://hooks.example.com/x?token=abc", "regions": ["EMEA"]},
            headers=manager,
        )
        refused = http.post("/notifications/subscriptions", json={"url": "https://u:p@h.example/"}, headers=manager)
        forbidden = http.get("/notifications/subscriptions", headers=engineer)
        sub_id = created.json()["subscription_id"]
        paused = http.post(f"/notifications/subscriptions/{sub_id}/pause", headers=manager)
        listed = http.get("/notifications/subscriptions", headers=manager).json()
        removed = http.delete(f"/notifications/subscriptions/{sub_id}", headers=manager)
        gone = http.delete(f"/notifications/subscriptions/{sub_id}", headers=manager)
        deliveries = http.get("/notifications/deliveries", headers=manager)

    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    assert refused.status_code == 422
    assert "credentials" in refused.json()["detail"]
    assert "u:p" not in refused.text
    assert forbidden.status_code == 403
    assert paused.status_code == 200
    assert listed == [
        {
            "subscription_id": sub_id,
            "url": "https://hooks.example.com/x",
            "event_types": [],
            "customers": [],
            "regions": ["EMEA"],
            "severities": [],
            "paused": True,
            "created_by": "mia",
        }
    ]
    assert created.json()["secret"] not in str(listed)
    assert removed.status_code == 200
    assert gone.status_code == 404
    assert deliveries.json() == {"counts": {}, "dead": []}
