"""Working days and hours: the one way the aggregate, the read models and the retrospective count time."""

from __future__ import annotations

from datetime import date, datetime, timedelta

SECONDS_PER_HOUR = 3600.0
SATURDAY = 5


def working_days(first: date, last: date) -> list[date]:
    """Monday to Friday, from `first` to `last`, both included."""
    every_day = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [day for day in every_day if day.weekday() < SATURDAY]


def working_days_between(start: date, end: date) -> int:
    """Monday to Friday days after `start` up to and including `end`."""
    return len(working_days(start + timedelta(days=1), end))


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_HOUR
