from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import RegionCalendar
from infra.bootstrap import build_region_calendars
from infra.settings import Settings

LONDON = RegionCalendar("EMEA", ZoneInfo("Europe/London"), holidays={date(2024, 5, 6)})  # early May bank holiday


def test_a_weekend_and_a_public_holiday_in_the_region_are_not_working_days() -> None:
    assert LONDON.is_working_day(date(2024, 5, 3))  # Friday
    assert not LONDON.is_working_day(date(2024, 5, 4))  # Saturday
    assert not LONDON.is_working_day(date(2024, 5, 6))  # bank holiday Monday
    assert LONDON.working_days(date(2024, 5, 3), date(2024, 5, 8)) == [
        date(2024, 5, 3),
        date(2024, 5, 7),
        date(2024, 5, 8),
    ]


def test_working_days_between_instants_count_the_regions_local_days() -> None:
    # 23:30 UTC on Thursday is still Thursday in New York but already Friday in Singapore and London.
    thursday_night = datetime(2024, 5, 2, 23, 30, tzinfo=UTC)
    monday = datetime(2024, 5, 6, 12, tzinfo=UTC)
    new_york = RegionCalendar("AMER", ZoneInfo("America/New_York"))
    singapore = RegionCalendar("APAC", ZoneInfo("Asia/Singapore"))

    assert new_york.working_days_between(thursday_night, monday) == 2  # Friday, Monday
    assert singapore.working_days_between(thursday_night, monday) == 1  # Monday
    assert LONDON.working_days_between(thursday_night, monday) == 0  # Monday is the bank holiday


def test_a_deadline_n_working_days_after_ends_with_that_local_day() -> None:
    friday_noon = datetime(2024, 5, 3, 11, tzinfo=UTC)

    deadline = LONDON.working_days_after(friday_noon, 2)

    # Tuesday and Wednesday (Monday is the holiday): due by Thursday 00:00 in London, BST = UTC+1.
    assert deadline == datetime(2024, 5, 8, 23, tzinfo=UTC)
    assert LONDON.working_days_after(friday_noon, 0) == datetime(2024, 5, 3, 23, tzinfo=UTC)


def test_the_composition_root_builds_each_regions_calendar_from_settings() -> None:
    calendars = build_region_calendars(Settings(region_calendars={"EMEA": {"tz": "Europe/Berlin", "country": "DE"}}))

    assert calendars["EMEA"].zone.key == "Europe/Berlin"
    assert not calendars["EMEA"].is_working_day(date(2024, 10, 3))  # German Unity Day
    assert calendars["EMEA"].is_working_day(date(2024, 7, 4))


def test_the_default_calendars_keep_each_regions_public_holidays() -> None:
    calendars = build_region_calendars(Settings())

    assert not calendars["AMER"].is_working_day(date(2024, 7, 4))
    assert not calendars["APAC"].is_working_day(date(2024, 8, 9))  # National Day in Singapore
    assert calendars["EMEA"].is_working_day(date(2024, 7, 4))


def test_an_unknown_holiday_country_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="does not know"):
        build_region_calendars(Settings(region_calendars={"EMEA": {"tz": "Europe/London", "country": "XX"}}))


def test_a_region_without_working_days_has_no_deadline_and_the_error_says_what_to_check() -> None:
    no_week = RegionCalendar("APAC", working_week=frozenset())

    with pytest.raises(ValueError, match=r"APAC has no 2 working days .* check its working week"):
        no_week.working_days_after(datetime(2024, 5, 13, 9, tzinfo=UTC), 2)


def test_a_day_starts_at_an_instant_written_in_utc_whatever_the_regions_zone() -> None:
    tokyo = RegionCalendar("APAC", zone=ZoneInfo("Asia/Tokyo"))

    start = tokyo.start_of(date(2026, 12, 1))

    assert start.isoformat() == "2026-11-30T15:00:00+00:00"  # stored and compared as text in the read models
