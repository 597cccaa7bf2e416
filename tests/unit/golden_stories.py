"""The stories the golden-file tests render: the handbook's LDAP-proxy story, a bumpy one, two quiet ones.

Recorded once through the application service with a stopped clock and fixed escalation ids, so
every rendering of them (retro, timeline, Slack messages, reports, facts) is the same on every run
and can be compared with a checked-in file under `tests/unit/golden/`.

Regenerate those files on purpose, after a change to what is rendered, with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit -q -k golden`, then read the diff (`git diff
tests/unit/golden`) and check it against the handbook before committing it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.history import bumpy_escalation
from domain import commands as c
from domain.commands import Command, CommandHandler, CommandResult
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.local.stories import ldap_proxy_story, quiet_escalation
from projections.facts import RecordedEvent
from tests.fakes import SteppingClock

GOLDEN = Path(__file__).parent / "golden"
MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = MONDAY + timedelta(days=18)


class FixedIds:
    """The service, with each opened escalation given the next of UUID(int=1), UUID(int=2), ..."""

    def __init__(self, service: CommandHandler) -> None:
        self.service = service
        self.opened = 0

    def handle(self, command: Command, *, actor: str, expected_version: int | None = None) -> CommandResult:
        if isinstance(command, c.OpenEscalation):
            self.opened += 1
            command = replace(command, escalation_id=UUID(int=self.opened))
        return self.service.handle(command, actor=actor, expected_version=expected_version)


@dataclass(frozen=True)
class Stories:
    ldap: list[RecordedEvent]
    bumpy: list[RecordedEvent]
    quiet: list[RecordedEvent]
    clashing: list[RecordedEvent]
    # Each story's escalation as the aggregate holds it at the end (`EscalationService.state`).
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def all(self) -> list[RecordedEvent]:
        """Every event, numbered by its place in one log as a relay would publish them."""
        return self.ldap + self.bumpy + self.quiet + self.clashing


def record_stories() -> Stories:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    fixed = FixedIds(service)
    ldap = ldap_proxy_story(fixed, MONDAY)
    bumpy = bumpy_escalation(fixed, MONDAY + timedelta(days=1), customer="Initech", region="AMER", lead="lead7")
    # The quiet ones claim the (closed) bumpy one's ticket, and so each other's: the scope report
    # names the clash between the two open ones only.
    quiet = quiet_escalation(
        fixed, MONDAY + timedelta(days=3), customer="Hooli", region="APAC", lead="lead9", ticket="ZD-INITECH-1"
    )
    clashing = quiet_escalation(
        fixed, MONDAY + timedelta(days=4), customer="Umbrella", region="AMER", lead="lead11", ticket="ZD-INITECH-1"
    )
    position = 0
    numbered: list[list[RecordedEvent]] = []
    for escalation in (ldap, bumpy, quiet, clashing):
        events = []
        for event in history_as_recorded(service, escalation):
            position += 1
            events.append(replace(event, position=position))
        numbered.append(events)
    ids = {"ldap": ldap, "bumpy": bumpy, "quiet": quiet, "clashing": clashing}
    return Stories(*numbered, states={story: service.state(escalation) for story, escalation in ids.items()})


def as_text(value: Any) -> str:
    """Plain data as stable, reviewable JSON."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def check_golden(name: str, text: str) -> None:
    """`text` is exactly the checked-in `golden/<name>`; with UPDATE_GOLDEN=1 it becomes it."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: create it with UPDATE_GOLDEN=1 and review it before committing"
    expected = path.read_text(encoding="utf-8")
    # Lines, so that pytest's diff shows where the rendering moved; then the whole, for the last newline.
    assert text.splitlines() == expected.splitlines(), f"{name} differs (UPDATE_GOLDEN=1 rewrites it on purpose)"
    assert text == expected, f"{name} differs in its line endings"
