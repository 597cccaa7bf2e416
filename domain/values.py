"""Value objects of an account escalation: the vocabulary the handbook uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from typing_extensions import TypedDict  # pydantic's schema generator needs this one on Python 3.11

from domain.errors import InvalidCommandError


class Region(StrEnum):
    AMER = "AMER"
    EMEA = "EMEA"
    APAC = "APAC"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Source(StrEnum):
    """Who started the escalation (the handbook's overview)."""

    CUSTOMER_SUCCESS = "customer_success"
    SUPPORT_MANAGER = "support_manager"
    SUPPORT_ENGINEER = "support_engineer"
    CONVERTED_EMERGENCY = "converted_emergency"


class Phase(StrEnum):
    OPENED = "opened"
    PREPARED = "prepared"
    LEAD_ASSIGNED = "lead_assigned"
    ACTIVE = "active"
    MONITORING = "monitoring"
    CLOSED = "closed"


class Outcome(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    NONE = "none"


class Level(StrEnum):
    """Likelihood or impact of a defined risk."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


E = TypeVar("E", bound=StrEnum)


def parse_choice(kind: type[E], value: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        msg = f"{field} {value!r} is not valid; use one of: {allowed}"
        raise InvalidCommandError(msg) from None


def require_text(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"{field} must not be empty; say who or what it is"
        raise InvalidCommandError(msg)
    return value.strip()


def require_tickets(tickets: list[str], field: str) -> list[str]:
    cleaned = [require_text(ticket, f"each ticket in {field}") for ticket in tickets]
    if len(set(cleaned)) != len(cleaned):
        msg = f"{field} lists a ticket twice; list each ticket once"
        raise InvalidCommandError(msg)
    return cleaned


# JSON-friendly shapes that events carry.
class ExitCriterionData(TypedDict):
    id: str
    description: str


class TaskData(TypedDict):
    description: str
    tickets: list[str]


class CadenceData(TypedDict):
    description: str
    max_working_days_between_updates: int | None


@dataclass(frozen=True)
class UpdateCadence:
    """How often updates are due for a severity (the wider escalation process)."""

    description: str
    max_working_days_between_updates: int | None

    def as_data(self) -> CadenceData:
        return {
            "description": self.description,
            "max_working_days_between_updates": self.max_working_days_between_updates,
        }


DEFAULT_CADENCES: dict[Severity, UpdateCadence] = {
    Severity.CRITICAL: UpdateCadence("daily", 1),
    Severity.HIGH: UpdateCadence("several times a week", 2),
    Severity.MEDIUM: UpdateCadence("weekly to fortnightly", 10),
    Severity.LOW: UpdateCadence("standard communication", None),
}

DEFAULT_CHANNEL_TEMPLATE = "#a_{customer}_escalation"


def customer_slug(customer: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", customer.lower()).strip("-")
    if not slug:
        msg = f"customer {customer!r} has no letters or digits to name a channel with"
        raise InvalidCommandError(msg)
    return slug


def channel_name(customer: str, template: str, suffix: str | None = None) -> str:
    """`#a_<customer>_escalation`, with a suffix when the customer has another escalation."""
    name = template.format(customer=customer_slug(customer))
    return f"{name}_{customer_slug(suffix)}" if suffix else name


def require_aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"{field} {moment.isoformat()} has no time zone; give it with an offset, e.g. +00:00"
        raise InvalidCommandError(msg)
    return moment


@dataclass(frozen=True)
class Stamp:
    """Who issued a command, when the thing happened, and when the ledger records it."""

    actor: str
    occurred_at: datetime
    recorded_at: datetime

    def __post_init__(self) -> None:
        require_text(self.actor, "actor")
        require_aware(self.occurred_at, "occurred_at")
        require_aware(self.recorded_at, "recorded_at")
        if self.occurred_at > self.recorded_at:
            msg = (
                f"occurred_at {self.occurred_at.isoformat()} is in the future "
                f"(now is {self.recorded_at.isoformat()}); give the time it actually happened"
            )
            raise InvalidCommandError(msg)
