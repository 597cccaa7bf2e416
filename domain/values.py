"""Value objects of an account escalation: the vocabulary the handbook uses."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


class RiskOutcome(StrEnum):
    """What became of a risk: mitigated (it may still happen), happened (an issue now), or retired."""

    MITIGATED = "mitigated"
    HAPPENED = "happened"
    RETIRED = "retired"


class ActionOutcome(StrEnum):
    DONE = "done"
    DROPPED = "dropped"


class HelperKind(StrEnum):
    BACKUP = "backup"
    HELPER = "helper"


class HandedOverRole(StrEnum):
    """The roles that can be handed over midway (the lead is reassigned with AssignLeadEngineer)."""

    ESCALATION_DRI = "escalation_dri"
    DRI_MANAGER = "dri_manager"


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
DEFAULT_OPENING_HORIZON = timedelta(days=365)  # how far back an escalation may be opened


# Slack channel names: lowercase letters (of any script), digits, hyphens and underscores; at most 80.
SLACK_CHANNEL_MAX = 80
_NOT_IN_SLUG = re.compile(r"[\W_]+")  # Unicode-aware: letters and digits of every script stay


def customer_slug(customer: str) -> str:
    """The customer's name as Slack allows it in a channel name, in any script ("Société" -> "société")."""
    slug = _NOT_IN_SLUG.sub("-", unicodedata.normalize("NFKC", customer).lower()).strip("-")
    if not slug:
        msg = f"customer {customer!r} has no letters or digits to name a channel with; give the customer's name"
        raise InvalidCommandError(msg)
    return slug


def legacy_customer_key(customer: str) -> str:
    """The ASCII-only slug that keyed a customer's channels before names in any script were allowed.

    Kept as the key wherever it is not empty, so customers recorded before keep their channel records.
    """
    return re.sub(r"[^a-z0-9]+", "-", customer.lower()).strip("-") or customer_slug(customer)


def channel_name(customer: str, template: str, suffix: str | None = None) -> str:
    """`#a_<customer>_escalation`, with a suffix when the customer has another escalation.

    Slack's 80-character limit is kept by shortening the customer's part, never the template's.
    """
    tail = f"_{customer_slug(suffix)}" if suffix else ""
    room = SLACK_CHANNEL_MAX - len(template.format(customer="").lstrip("#")) - len(tail)
    if room < 1:
        msg = (
            f"the channel name for reason {suffix!r} would be over Slack's {SLACK_CHANNEL_MAX} characters; "
            f"give a shorter reason"
        )
        raise InvalidCommandError(msg)
    customer_part = customer_slug(customer)[:room].strip("-")
    return template.format(customer=customer_part) + tail


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
        # Any UTC offset is accepted; the ledger stores UTC, so equal moments compare and print alike.
        object.__setattr__(self, "occurred_at", require_aware(self.occurred_at, "occurred_at").astimezone(UTC))
        object.__setattr__(self, "recorded_at", require_aware(self.recorded_at, "recorded_at").astimezone(UTC))
        if self.occurred_at > self.recorded_at:
            msg = (
                f"occurred_at {self.occurred_at.isoformat()} is in the future "
                f"(now is {self.recorded_at.isoformat()}); give the time it actually happened"
            )
            raise InvalidCommandError(msg)
