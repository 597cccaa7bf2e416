"""The two ways out: Slack's chat.postMessage through slack-sdk, and Standard Webhooks over httpx.

A sender returns on success and raises `DeliveryFailed` otherwise, with Retry-After when the
receiver gave one; the delivery loop decides when to try again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from standardwebhooks import Webhook

from infra.notify.urls import redacted


class DeliveryFailed(Exception):  # noqa: N818 - a result, not a bug: the loop retries it
    """This attempt did not deliver; `retry_after` (seconds) when the receiver said when to come back."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    destination: str
    payload: dict[str, Any]


class Sender(Protocol):
    def send(self, outgoing: Outgoing) -> None: ...


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class SlackSender:
    """Posts Block Kit messages with chat.postMessage; `base_url` points elsewhere for tests and closed sites."""

    def __init__(self, token: SecretStr, base_url: str, timeout: float) -> None:
        # No slack-sdk retry handlers: retries belong to the delivery loop, which records them.
        self.client = WebClient(
            token=token.get_secret_value(), base_url=base_url.rstrip("/") + "/", timeout=int(max(1, timeout))
        )
        self.client.retry_handlers = []

    def send(self, outgoing: Outgoing) -> None:
        p = outgoing.payload
        try:
            self.client.chat_postMessage(
                channel=p["channel"],
                text=p["text"],
                blocks=p["blocks"],
                # The delivery id travels along, so a reader can spot the rare duplicate after a crash.
                metadata={
                    "event_type": "escalation_notification",
                    "event_payload": {"delivery_id": outgoing.delivery_id},
                },
            )
        except SlackApiError as error:
            status = error.response.status_code
            headers = {k.lower(): v for k, v in (error.response.headers or {}).items()}
            reason = error.response.get("error") if isinstance(error.response.data, dict) else None
            retry = _retry_after(_first(headers.get("retry-after"))) if status == 429 else None
            raise DeliveryFailed(f"Slack answered {status}: {reason or 'no error given'}", retry) from None
        except Exception as error:  # noqa: BLE001 - timeouts, refused connections, bad gateways: all retried
            raise DeliveryFailed(f"Slack unreachable: {type(error).__name__}: {error}") from None


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


class WebhookSender:
    """Posts the CloudEvent (structured JSON) signed per Standard Webhooks; the webhook-id never changes."""

    def __init__(self, subscription: Callable[[str], tuple[str, SecretStr] | None], timeout: float) -> None:
        self.subscription = subscription  # subscription id -> (url, secret), None once removed
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, outgoing: Outgoing) -> None:
        subscription_id = outgoing.destination.removeprefix("webhook:")
        found = self.subscription(subscription_id)
        if found is None:
            raise DeliveryFailed(f"subscription {subscription_id} was removed")
        url, secret = found
        body = json.dumps(outgoing.payload, separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": outgoing.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret.get_secret_value()).sign(outgoing.delivery_id, now, body),
        }
        try:
            response = self.http.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{redacted(url)} unreachable: {type(error).__name__}") from None
        if not response.is_success:
            retry = _retry_after(response.headers.get("retry-after")) if response.status_code in (429, 503) else None
            raise DeliveryFailed(f"{redacted(url)} answered {response.status_code}", retry)

    def close(self) -> None:
        self.http.close()
