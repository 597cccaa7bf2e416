"""The composition root: builds the application and its adapters from one Settings object."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.service import Clock, EscalationService
from infra.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_service(settings: Settings, clock: Clock = utc_now) -> EscalationService:
    if settings.event_store == "sqlite":
        settings.event_store_path.parent.mkdir(parents=True, exist_ok=True)
    return EscalationService(
        settings.event_store_env(), clock=clock, channel_template=settings.channel_template
    )
