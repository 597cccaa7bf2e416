"""Working days and hours: the one way the aggregate, the read models and the retrospective count time."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SECONDS_PER_HOUR = 3600.0
SATURDAY = 5
UTC_ZONE = ZoneInfo("UTC")


def working_days(first: date, last: date) -> list[date]:
    """Monday to Friday, from `first` to `last`, both included."""
    every_day = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [day for day in every_day if day.weekday() < SATURDAY]


def working_days_between(start: date, end: date) -> int:
    """Monday to Friday days after `start` up to and including `end`."""
    return len(working_days(start + timedelta(days=1), end))


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_HOUR


@dataclass(frozen=True, eq=False)
class RegionCalendar:
    """A customer region's working time: its zone decides where a day starts, its week and holidays
    which days count. Holidays are any container of dates (a set, or a `holidays` calendar built in
    the composition root); the domain never looks them up itself."""

    region: str
    zone: ZoneInfo = UTC_ZONE
    working_week: frozenset[int] = frozenset(range(SATURDAY))  # Monday = 0
    holidays: Container[date] = frozenset()

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_week and day not in self.holidays

    def working_days(self, first: date, last: date) -> list[date]:
        every_day = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [day for day in every_day if self.is_working_day(day)]

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s local day up to and including `end`'s local day."""
        return len(self.working_days(self.local_date(start) + ONE_DAY, self.local_date(end)))

    def start_of(self, day: date) -> datetime:
        """The UTC instant the local day begins."""
        return datetime.combine(day, time(), self.zone).astimezone(UTC)

    def working_days_after(self, instant: datetime, days: int) -> datetime:
        """The UTC instant the `days`-th working day after the instant's local day ends (a deadline)."""
        day, counted = self.local_date(instant), 0
        for _ in range(MAX_SEARCH_DAYS):
            if counted == days:
                return self.start_of(day + ONE_DAY)
            day += ONE_DAY
            counted += self.is_working_day(day)
        msg = f"{self.region} has no {days} working days within {MAX_SEARCH_DAYS} days; check its working week"
        raise ValueError(msg)


ONE_DAY = timedelta(days=1)
MAX_SEARCH_DAYS = 3660
