"""Test doubles with production behaviour: a clock that moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SteppingClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
