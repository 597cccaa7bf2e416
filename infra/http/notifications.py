"""The notifier over HTTP, for managers: webhook subscriptions and the dead deliveries."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from infra.http.problems import problem
from infra.notify.delivery import dead_deliveries, delivery_counts, retry_dead
from infra.notify.subscriptions import (
    SubscriptionError,
    add_subscription,
    list_subscriptions,
    remove_subscription,
    set_paused,
)
from infra.notify.urls import OutboundUrlError
from projections.notification_tables import create_notifier_schema


class SubscriptionBody(BaseModel):
    url: str = Field(description="https URL that receives the signed CloudEvents")
    event_types: list[str] = Field(default_factory=list, description="empty: every event type")
    customers: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)


def mount_notifications(
    app: FastAPI, engine: sa.Engine, managers: Callable[..., Awaitable[Any]], *, allow_plain_http: bool = False
) -> None:
    create_notifier_schema(engine)
    # Evaluated here, not postponed: FastAPI must see the dependency, which only this closure knows.
    Manager = Annotated[Any, Depends(managers)]  # noqa: N806 - a type alias, local to the closures

    @app.post("/notifications/subscriptions", status_code=201, tags=["notifications"])
    def subscribe(body: SubscriptionBody, who: Manager) -> JSONResponse:
        """Add a subscription. The answer holds its signing secret: shown this once, never listed."""
        try:
            created = add_subscription(
                engine,
                body.url,
                datetime.now(UTC),
                who.name,
                event_types=body.event_types,
                customers=body.customers,
                regions=body.regions,
                severities=body.severities,
                allow_plain_http=allow_plain_http,
            )
        except (SubscriptionError, OutboundUrlError) as error:
            return problem(422, "invalid-subscription", "Invalid subscription", str(error))
        secret = created.secret.get_secret_value()
        return JSONResponse({"subscription_id": created.subscription_id, "secret": secret}, status_code=201)

    @app.get("/notifications/subscriptions", tags=["notifications"])
    def subscriptions(_: Manager) -> list[dict[str, Any]]:
        return list_subscriptions(engine)

    def change(subscription_id: str, act: Callable[[], None]) -> JSONResponse:
        try:
            act()
        except SubscriptionError as error:
            return problem(404, "unknown-subscription", "Unknown subscription", str(error))
        return JSONResponse({"subscription_id": subscription_id})

    @app.post("/notifications/subscriptions/{subscription_id}/pause", tags=["notifications"])
    def pause(subscription_id: str, _: Manager) -> JSONResponse:
        return change(subscription_id, lambda: set_paused(engine, subscription_id, paused=True))

    @app.post("/notifications/subscriptions/{subscription_id}/resume", tags=["notifications"])
    def resume(subscription_id: str, _: Manager) -> JSONResponse:
        return change(subscription_id, lambda: set_paused(engine, subscription_id, paused=False))

    @app.delete("/notifications/subscriptions/{subscription_id}", tags=["notifications"])
    def remove(subscription_id: str, _: Manager) -> JSONResponse:
        return change(subscription_id, lambda: remove_subscription(engine, subscription_id))

    @app.get("/notifications/deliveries", tags=["notifications"])
    def deliveries(_: Manager) -> dict[str, Any]:
        """Counts by state, and the dead deliveries with their last error."""
        return {"counts": delivery_counts(engine), "dead": dead_deliveries(engine)}

    @app.post("/notifications/deliveries/retry", tags=["notifications"])
    def retry(_: Manager, delivery_id: str | None = None) -> dict[str, int]:
        """Queue dead deliveries again (one, or all)."""
        return {"queued": retry_dead(engine, datetime.now(UTC), delivery_id)}
