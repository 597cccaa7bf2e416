"""A command naming an uncertainty, emergency, risk, action or helper the escalation does not have
is refused with the ones it has (or that it has none yet), word for word."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID

import pytest

from domain import commands as c
from domain.errors import InvalidCommandError
from domain.service import EscalationService
from tests.unit.test_midway import RISK, in_phase

Make = Callable[[EscalationService, UUID, int], object]


def uncertainty(s: EscalationService, e: UUID, n: int) -> object:
    return s.handle(c.RaiseUncertainty(escalation_id=e, question=f"Question {n}?"), actor="m")


def emergency(s: EscalationService, e: UUID, n: int) -> object:
    return s.handle(
        c.RaiseEmergency(escalation_id=e, ticket=f"ZD-{n}", out_of_hours=False, handled_by="priya"), actor="m"
    )


def risk(s: EscalationService, e: UUID, _: int) -> object:
    return s.handle(c.RecordRisk(escalation_id=e, **RISK), actor="m")


def action(s: EscalationService, e: UUID, n: int) -> object:
    return s.handle(
        c.AddFollowUpAction(escalation_id=e, what=f"Action {n}", owner="o", due_on=date(2026, 11, 3)), actor="m"
    )


CASES: list[tuple[str, Make, Callable[[UUID], c.Command], str, str]] = [
    (
        "active",
        uncertainty,
        lambda e: c.AnswerUncertainty(escalation_id=e, uncertainty_id="U9", answer="a"),
        "uncertainty 'U9' is not known here; known uncertainties: {}",
        "U1, U2",
    ),
    (
        "active",
        uncertainty,
        lambda e: c.DefineRisk(escalation_id=e, uncertainty_id="U9", **RISK),
        "uncertainty 'U9' is not known here; known uncertainties: {}",
        "U1, U2",
    ),
    (
        "active",
        emergency,
        lambda e: c.ReviewEmergencyWork(escalation_id=e, emergency_id="E9", notes="n"),
        "emergency 'E9' is not known here; known emergencies: {}",
        "E1, E2",
    ),
    (
        "active",
        risk,
        lambda e: c.SettleRisk(escalation_id=e, risk_id="R9", outcome="retired", note="n"),
        "risk 'R9' is not known here; known risks: {}",
        "R1, R2",
    ),
    (
        "retro",
        action,
        lambda e: c.SettleFollowUpAction(escalation_id=e, action_id="A9", outcome="done", note="n"),
        "follow-up action 'A9' is not known here; known actions: {}",
        "A1, A2",
    ),
]


@pytest.mark.parametrize(
    ("phase", "make", "command", "message", "two_known"), CASES, ids=[m[:24] for *_, m, _ in CASES]
)
@pytest.mark.parametrize("known", [0, 2])
def test_an_unknown_id_is_refused_naming_those_known(
    memory_service: EscalationService,
    phase: str,
    make: Make,
    command: Callable[[UUID], c.Command],
    message: str,
    two_known: str,
    known: int,
) -> None:
    escalation_id = in_phase(memory_service, phase)
    for n in range(known):
        make(memory_service, escalation_id, n)

    with pytest.raises(InvalidCommandError) as refused:
        memory_service.handle(command(escalation_id), actor="mia.manager")

    assert str(refused.value) == message.format(two_known if known else "none yet")


def test_removing_a_helper_when_there_are_none_says_so(memory_service: EscalationService) -> None:
    escalation_id = in_phase(memory_service, "active")

    with pytest.raises(InvalidCommandError) as refused:
        memory_service.handle(c.RemoveHelper(escalation_id=escalation_id, engineer="carl", reason="r"), actor="m")

    assert str(refused.value) == "carl is not a backup or helper here; current ones: none"
