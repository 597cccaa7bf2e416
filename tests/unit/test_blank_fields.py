"""A blank text field or a flipped flag in any command: what the ledger answers, in a reviewed golden file.

Each command is valid in its phase; each of its text fields is blanked in turn, each flag flipped.
Most blanks are refused naming the field; a choice says which values it takes; an optional text left
blank is accepted as none. A flag the handbook requires (the closing checklist) is refused unset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from uuid import UUID

from domain import commands as c
from domain.errors import EscalationError
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.golden_stories import as_text, check_golden
from tests.unit.test_invariants import CLOSING, OPENING, SCOPE, UPDATE
from tests.unit.test_midway import RISK, in_phase

Build = Callable[[UUID], c.Command]
VALID: list[tuple[str, Build]] = [
    (
        "opened",
        lambda e: c.CompletePreparation(escalation_id=e, cs_process_followed=True, tickets_reviewed=[], notes="n"),
    ),
    (
        "prepared",
        lambda e: c.AssignLeadEngineer(
            escalation_id=e, engineer="li", engineer_region="EMEA", backup_engineer="bo", region_override_reason="r"
        ),
    ),
    ("active", lambda e: c.AssignProductDri(escalation_id=e, product_dri="pat")),
    ("lead_assigned", lambda e: c.DefineScope(escalation_id=e, **SCOPE)),
    ("active", lambda e: c.MeetExitCriterion(escalation_id=e, criterion_id="auth", evidence="logs")),
    ("active", lambda e: c.RaiseUncertainty(escalation_id=e, question="q")),
    (
        "active",
        lambda e: c.PostUpdate(escalation_id=e, **{**UPDATE, "author": "priya", "exit_criteria_change": "x"}),
    ),
    ("active", lambda e: c.MarkStalled(escalation_id=e, reason="r", noticed_by="mia.manager")),
    ("active", lambda e: c.EscalateToSpecialistTeam(escalation_id=e, team="t", reference="r", reason="r")),
    ("active", lambda e: c.RaiseEmergency(escalation_id=e, ticket="ZD-9", out_of_hours=True, handled_by="oncall")),
    ("emergency", lambda e: c.ReviewEmergencyWork(escalation_id=e, emergency_id="E1", notes="n")),
    ("active", lambda e: c.AgreeSyncCadence(escalation_id=e, cadence="weekly", agreed_with="dana.owner")),
    ("criteria_met", lambda e: c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="dana.owner")),
    ("monitoring", lambda e: c.PauseUpdates(escalation_id=e, resume_on=date(2026, 11, 3), reason="r")),
    ("monitoring", lambda e: c.InterruptMonitoring(escalation_id=e, reason="r")),
    ("active", lambda e: c.ChangeSeverity(escalation_id=e, severity="low", reason="r")),
    ("active", lambda e: c.HandOverRole(escalation_id=e, role="escalation_dri", successor="sam", reason="r")),
    ("active", lambda e: c.AddHelper(escalation_id=e, engineer="tom", engineer_region="EMEA", reason="r")),
    ("active", lambda e: c.RecordRisk(escalation_id=e, **RISK)),
    (
        "retro",
        lambda e: c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 11, 3), ticket="t"),
    ),
    ("retro", lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 2), notes="n")),
    ("closed", lambda e: c.OpenRetrospective(escalation_id=e, retro_reference="retro#1")),
    (
        "criteria_met",
        lambda e: c.CloseEscalation(escalation_id=e, **CLOSING, override_reason="the customer asked to close"),
    ),
    ("active", lambda e: c.RecordCorrection(escalation_id=e, corrects_version=2, reason="r", correction="c")),
]


def answer(phase: str, build: Build, field: str | None) -> str:
    """What a fresh escalation in `phase` answers to the command, with `field` blanked, or flipped if
    it is a flag (None: as built)."""
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock())
    command = build(in_phase(service, phase))
    if field is not None:
        value = getattr(command, field)
        command = dataclasses.replace(command, **{field: not value if isinstance(value, bool) else "  "})
    try:
        service.handle(command, actor="mia.manager")
    except EscalationError as error:
        return f"{type(error).__name__}: {error}"
    return "accepted"


def test_each_command_answers_a_blank_text_field_or_a_flipped_flag_as_reviewed() -> None:
    answers: dict[str, str] = {}
    for phase, build in VALID:
        name = type(build(UUID(int=0))).__name__
        assert answer(phase, build, None) == "accepted", f"{name} is not valid in {phase} as built"
        for field in dataclasses.fields(build(UUID(int=0))):
            value = getattr(build(UUID(int=0)), field.name)
            if field.name != "escalation_id" and isinstance(value, str):
                answers[f"{name}.{field.name}"] = answer(phase, build, field.name)
            elif isinstance(value, bool):
                answers[f"{name}.{field.name}={not value}"] = answer(phase, build, field.name)

    for field, value in (OPENING | {"escalation_dri": "erin.dri", "reason": "ldap"}).items():
        if isinstance(value, str):
            answers[f"OpenEscalation.{field}"] = opening_answer(field)

    check_golden("blank-fields.json", as_text(answers))


def opening_answer(field: str) -> str:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock())
    try:
        service.handle(c.OpenEscalation(**(OPENING | {field: "  "})), actor="mia.manager")
    except EscalationError as error:
        return f"{type(error).__name__}: {error}"
    return "accepted"


def test_a_blank_optional_text_is_recorded_as_none_and_blank_notes_as_empty() -> None:
    recorded: dict[str, object] = {}
    for phase, build in VALID:
        for field in dataclasses.fields(build(UUID(int=0))):
            if field.name == "escalation_id" or not isinstance(getattr(build(UUID(int=0)), field.name), str):
                continue
            service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock())
            escalation_id = in_phase(service, phase)
            try:
                service.handle(dataclasses.replace(build(escalation_id), **{field.name: "  "}), actor="m")
            except EscalationError:
                continue
            recorded[f"{type(build(escalation_id)).__name__}.{field.name}"] = getattr(
                service.history(escalation_id)[-1], field.name
            )

    assert recorded == {
        "CompletePreparation.notes": "",
        "AssignLeadEngineer.backup_engineer": None,
        "AssignLeadEngineer.region_override_reason": None,
        "PostUpdate.exit_criteria_change": None,
        "AddFollowUpAction.ticket": None,
        "CompleteRetrospective.notes": "",
    }
