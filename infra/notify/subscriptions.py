"""Webhook subscriptions: added (the secret is returned once), listed, paused, resumed and removed."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from domain.events import ALL_EVENT_TYPES
from infra.notify.urls import check_url, redacted
from projections.notification_tables import create_notifier_schema, load_subscriptions, notify_subscriptions
from projections.notifications import RENDERERS

# The watcher's events are known by name before they exist, so subscriptions to them are accepted now.
KNOWN_EVENT_TYPES = frozenset({cls.__name__ for cls in ALL_EVENT_TYPES} | set(RENDERERS))


class SubscriptionError(ValueError):
    """A subscription request we refuse; the text says what to change."""


@dataclass(frozen=True)
class Created:
    subscription_id: str
    secret: SecretStr  # shown once, to whoever created it; never listed again


def new_secret() -> SecretStr:
    return SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())


def add_subscription(
    engine: sa.Engine,
    url: str,
    now: datetime,
    created_by: str,
    *,
    event_types: Iterable[str] = (),
    customers: Iterable[str] = (),
    regions: Iterable[str] = (),
    severities: Iterable[str] = (),
    allow_plain_http: bool = False,
) -> Created:
    check_url(url, allow_plain_http=allow_plain_http)
    unknown = sorted(set(event_types) - KNOWN_EVENT_TYPES)
    if unknown:
        msg = f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_EVENT_TYPES))}"
        raise SubscriptionError(msg)
    create_notifier_schema(engine)
    subscription_id = f"sub_{uuid.uuid4().hex[:16]}"
    secret = new_secret()
    filters = {
        "event_types": sorted(set(event_types)),
        "customers": sorted(set(customers)),
        "regions": sorted(set(regions)),
        "severities": sorted(set(severities)),
    }
    with engine.begin() as conn:
        conn.execute(
            notify_subscriptions.insert().values(
                subscription_id=subscription_id,
                url=url,
                secret=secret.get_secret_value(),
                filters=json.dumps(filters),
                paused=False,
                created_at=now.timestamp(),
                created_by=created_by,
            )
        )
    return Created(subscription_id, secret)


def list_subscriptions(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every subscription as shown to people: the URL without credentials or query, never the secret."""
    create_notifier_schema(engine)
    with engine.connect() as conn:
        stored = load_subscriptions(conn)
    return [
        {
            "subscription_id": s.subscription.subscription_id,
            "url": redacted(s.subscription.url),
            "event_types": sorted(s.subscription.event_types),
            "customers": sorted(s.subscription.customers),
            "regions": sorted(s.subscription.regions),
            "severities": sorted(s.subscription.severities),
            "paused": s.subscription.paused,
            "created_by": s.created_by,
        }
        for s in stored
    ]


def set_paused(engine: sa.Engine, subscription_id: str, *, paused: bool) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            notify_subscriptions.update()
            .where(notify_subscriptions.c.subscription_id == subscription_id)
            .values(paused=paused)
        )
    _found(changed.rowcount, subscription_id)


def remove_subscription(engine: sa.Engine, subscription_id: str) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            notify_subscriptions.delete().where(notify_subscriptions.c.subscription_id == subscription_id)
        )
    _found(changed.rowcount, subscription_id)


def _found(rowcount: int, subscription_id: str) -> None:
    if rowcount == 0:
        msg = f"no subscription {subscription_id}; `escalations notify list` shows the ids"
        raise SubscriptionError(msg)


def destination_of(engine: sa.Engine, subscription_id: str) -> tuple[str, SecretStr] | None:
    """Where a webhook delivery goes, read at send time (so a removed subscription stops receiving)."""
    query = sa.select(notify_subscriptions.c.url, notify_subscriptions.c.secret).where(
        notify_subscriptions.c.subscription_id == subscription_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (str(row.url), SecretStr(str(row.secret)))
