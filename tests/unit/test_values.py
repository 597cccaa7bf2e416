"""The handbook's vocabulary as values: choices, texts, tickets, channel names, and the stamp of a command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from domain.errors import InvalidCommandError
from domain.values import (
    DEFAULT_CHANNEL_TEMPLATE,
    Severity,
    Stamp,
    channel_name,
    customer_slug,
    legacy_customer_key,
    parse_choice,
    require_aware,
    require_text,
    require_tickets,
)

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def refusal(call: object, *args: object) -> str:
    with pytest.raises(InvalidCommandError) as refused:
        call(*args)  # type: ignore[operator]
    return str(refused.value)


def test_a_choice_is_one_of_its_values_and_a_wrong_one_names_them_all() -> None:
    assert parse_choice(Severity, "high", "severity") is Severity.HIGH
    assert refusal(parse_choice, Severity, "High", "severity") == (
        "severity 'High' is not valid; use one of: critical, high, medium, low"
    )


def test_a_text_is_kept_trimmed_and_a_blank_or_missing_one_names_its_field() -> None:
    assert require_text("  Globex ", "customer") == "Globex"
    for blank in ("", "   ", None, 7):
        assert refusal(require_text, blank, "customer") == "customer must not be empty; say who or what it is"


def test_tickets_are_trimmed_each_named_once() -> None:
    assert require_tickets([" ZD-1", "ZD-2 "], "related_tickets") == ["ZD-1", "ZD-2"]
    assert refusal(require_tickets, ["ZD-1", " ZD-1 "], "related_tickets") == (
        "related_tickets lists a ticket twice; list each ticket once"
    )
    assert refusal(require_tickets, ["ZD-1", " "], "related_tickets") == (
        "each ticket in related_tickets must not be empty; say who or what it is"
    )


def test_a_customer_slug_keeps_letters_and_digits_of_any_script_and_needs_one() -> None:
    assert customer_slug("  Société -- Générale_2 ") == "société-générale-2"
    assert refusal(customer_slug, "--- !") == (
        "customer '--- !' has no letters or digits to name a channel with; give the customer's name"
    )


def test_the_legacy_key_is_ascii_where_the_name_has_some_and_the_slug_otherwise() -> None:
    assert legacy_customer_key("Globex Corp.") == "globex-corp"
    assert legacy_customer_key("トヨタ") == "トヨタ"
    assert legacy_customer_key("Société Générale") == "soci-t-g-n-rale"  # as recorded before: not the slug


def test_a_second_escalations_channel_carries_its_reason_and_keeps_slacks_limit() -> None:
    assert channel_name("Globex", DEFAULT_CHANNEL_TEMPLATE) == "#a_globex_escalation"
    assert channel_name("Globex", DEFAULT_CHANNEL_TEMPLATE, "LDAP Proxy") == "#a_globex_escalation_ldap-proxy"
    long = channel_name("A" * 100, DEFAULT_CHANNEL_TEMPLATE, "sso")
    assert long == "#a_" + "a" * 63 + "_escalation_sso"
    assert len(long.lstrip("#")) == 80
    # Cut where the name had a hyphen: no hyphen is left hanging before the template's underscore.
    assert channel_name("a" * 66 + " b", DEFAULT_CHANNEL_TEMPLATE) == "#a_" + "a" * 66 + "_escalation"


def test_a_reason_too_long_for_any_channel_name_is_refused_with_the_fix() -> None:
    assert refusal(channel_name, "Globex", DEFAULT_CHANNEL_TEMPLATE, "r" * 66) == (
        f"the channel name for reason {'r' * 66!r} would be over Slack's 80 characters; give a shorter reason"
    )
    assert channel_name("Globex", DEFAULT_CHANNEL_TEMPLATE, "r" * 65) == "#a_g_escalation_" + "r" * 65  # room for one


class NoOffset(tzinfo):
    """A zone that knows no offset: as good as none."""

    def utcoffset(self, _: datetime | None) -> timedelta | None:
        return None


def test_a_moment_needs_its_offset() -> None:
    assert require_aware(NOW, "due_at") is NOW
    assert refusal(require_aware, datetime(2026, 11, 2, 8, 0, tzinfo=NoOffset()), "due_at") == (
        "due_at 2026-11-02T08:00:00 has no time zone; give it with an offset, e.g. +00:00"
    )
    assert refusal(require_aware, datetime(2026, 11, 2, 8, 0), "due_at") == (  # noqa: DTZ001 - the mistake
        "due_at 2026-11-02T08:00:00 has no time zone; give it with an offset, e.g. +00:00"
    )


def test_a_stamp_keeps_utc_and_refuses_what_happened_after_it_was_recorded() -> None:
    plus_two = timezone(timedelta(hours=2))
    stamp = Stamp(
        actor=" mia ",
        occurred_at=datetime(2026, 11, 2, 9, 0, tzinfo=plus_two),
        recorded_at=datetime(2026, 11, 2, 10, 0, tzinfo=plus_two),
    )

    assert (stamp.occurred_at, stamp.recorded_at) == (datetime(2026, 11, 2, 7, 0, tzinfo=UTC), NOW)
    assert stamp.occurred_at.tzinfo is UTC
    assert stamp.recorded_at.tzinfo is UTC
    with pytest.raises(InvalidCommandError) as refused:
        Stamp(actor="mia", occurred_at=NOW + timedelta(minutes=1), recorded_at=NOW)
    assert str(refused.value) == (
        "occurred_at 2026-11-02T08:01:00+00:00 is in the future (now is 2026-11-02T08:00:00+00:00); "
        "give the time it actually happened"
    )
    with pytest.raises(InvalidCommandError, match=r"^actor must not be empty"):
        Stamp(actor=" ", occurred_at=NOW, recorded_at=NOW)
    with pytest.raises(InvalidCommandError, match=r"^occurred_at 2026-11-02T08:00:00 has no time zone"):
        Stamp(actor="mia", occurred_at=NOW.replace(tzinfo=None), recorded_at=NOW)
    with pytest.raises(InvalidCommandError, match=r"^recorded_at 2026-11-02T08:00:00 has no time zone"):
        Stamp(actor="mia", occurred_at=NOW, recorded_at=NOW.replace(tzinfo=None))
