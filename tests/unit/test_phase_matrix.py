"""Every command in every phase of an escalation: accepted, or refused with what to do instead.

The whole matrix is one reviewed golden file (`golden/phase-matrix.json`): a changed rule, or a
changed word in a refusal, shows there as a diff to review. The state machine checks the same rules
on random walks; this pins each answer a manager reads.
"""

from __future__ import annotations

from uuid import UUID

from domain import commands as c
from domain.errors import EscalationError
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.golden_stories import as_text, check_golden
from tests.unit.test_blank_fields import VALID, Build
from tests.unit.test_midway import in_phase

PHASES = ("opened", "prepared", "lead_assigned", "active", "stalled", "criteria_met", "monitoring", "closed", "retro")


def escalation_in(service: EscalationService, phase: str) -> UUID:
    if phase != "stalled":
        return in_phase(service, phase)
    escalation_id = in_phase(service, "active")
    service.handle(c.MarkStalled(escalation_id=escalation_id, reason="stuck", noticed_by="mia.manager"), actor="m")
    return escalation_id


def answer(phase: str, build: Build) -> str:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock())
    escalation_id = escalation_in(service, phase)
    try:
        service.handle(build(escalation_id), actor="mia.manager")
    except EscalationError as error:
        return f"{type(error).__name__}: {error}"
    return "accepted"


def test_every_command_in_every_phase_answers_as_reviewed() -> None:
    matrix = {
        type(build(UUID(int=0))).__name__: {phase: answer(phase, build) for phase in PHASES} for _, build in VALID
    }

    check_golden("phase-matrix.json", as_text(matrix))
