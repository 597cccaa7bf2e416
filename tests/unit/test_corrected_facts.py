"""A correction's facts are checked against the corrected event's fields: names, and types as declared."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import InvalidCommandError
from domain.escalation import checked_corrected_facts
from domain.values import Stamp

NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
STAMP = Stamp(actor="mia.manager", occurred_at=NOW, recorded_at=NOW)

FITTING: list[tuple[str, dict[str, Any]]] = [
    ("UpdatePosted", {"author": "bob"}),  # str
    ("UpdatePosted", {"criteria_met": 2}),  # int
    ("EmergencyRaised", {"out_of_hours": True}),  # bool
    ("UpdatePosted", {"next_steps": ["Trace the balancer"]}),  # list[str]
    ("UpdatePosted", {"current_tasks": [{"description": "Trace", "tickets": ["ZD-1"]}]}),  # list of a TypedDict
    ("SeverityChanged", {"update_cadence": {"description": "daily", "max_working_days_between_updates": 1}}),
    ("EscalationOpened", {"reason": "ldap"}),  # str | None, given
    ("EscalationOpened", {"reason": None}),  # str | None, none
    ("SeverityChanged", {"product_dri": None, "product_dri_reason": "not product-related"}),
]

NOT_FITTING: list[tuple[str, dict[str, Any], str]] = [
    ("UpdatePosted", {"author": 5}, "the corrected author 5 is not of the type UpdatePosted.author has"),
    ("UpdatePosted", {"criteria_met": True}, "the corrected criteria_met True is not of the type"),  # a bool is no int
    ("EmergencyRaised", {"out_of_hours": 1}, "the corrected out_of_hours 1 is not of the type"),  # nor an int a bool
    ("UpdatePosted", {"next_steps": "Trace"}, "the corrected next_steps 'Trace' is not of the type"),
    ("SeverityChanged", {"update_cadence": "daily"}, "the corrected update_cadence 'daily' is not of the type"),
    ("EscalationOpened", {"reason": 7}, "the corrected reason 7 is not of the type EscalationOpened.reason has"),
    ("EscalationOpened", {"summary": None}, "the corrected summary None is not of the type"),
]


@pytest.mark.parametrize(("event", "facts"), FITTING, ids=[f"{e}.{next(iter(f))}" for e, f in FITTING])
def test_facts_of_the_declared_type_are_kept_as_given(event: str, facts: dict[str, Any]) -> None:
    assert checked_corrected_facts(event, facts, STAMP) == facts


@pytest.mark.parametrize(
    ("event", "facts", "message"), NOT_FITTING, ids=[f"{e}.{next(iter(f))}" for e, f, _ in NOT_FITTING]
)
def test_a_fact_of_another_type_is_refused_naming_the_field(event: str, facts: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        checked_corrected_facts(event, facts, STAMP)

    assert str(refused.value).startswith(message)
    assert str(refused.value).endswith("; give a value of that type")


def test_a_corrected_time_is_kept_in_utc_and_a_fact_the_event_lacks_is_refused_with_the_ones_it_has() -> None:
    checked = checked_corrected_facts("ExitCriterionMet", {"occurred_at": "2026-11-03T10:00:00+01:00"}, STAMP)
    assert checked == {"occurred_at": "2026-11-03T09:00:00+00:00"}

    with pytest.raises(InvalidCommandError) as refused:
        checked_corrected_facts("ExitCriterionMet", {"ticket": "ZD-1"}, STAMP)
    assert str(refused.value) == (
        "ExitCriterionMet has no correctable fact 'ticket'; correct one of: criterion_id, evidence, occurred_at"
    )


def test_the_librarys_class_settings_are_no_facts_to_correct() -> None:
    for name in ("originator_id_type", "class_version"):
        with pytest.raises(InvalidCommandError, match=f"ExitCriterionMet has no correctable fact '{name}'"):
            checked_corrected_facts("ExitCriterionMet", {name: None}, STAMP)
