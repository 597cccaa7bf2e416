"""Commands with a malformed or contradictory part: what the ledger answers, in a reviewed golden file.

Each case is a command valid in its phase but for one part (a blank blocker, a task without tickets,
a criterion named twice, a date out of order, ...). The answers are the whole sentences a manager
reads; `golden/malformed-commands.json` holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

from domain import commands as c
from domain.errors import EscalationError
from domain.service import EscalationService
from tests.fakes import SteppingClock
from tests.unit.golden_stories import as_text, check_golden
from tests.unit.test_exact_refusals import recorded
from tests.unit.test_invariants import CLOSING, SCOPE, UPDATE
from tests.unit.test_midway import RISK, in_phase

Step = Callable[[EscalationService, UUID], object]


def update(**changes: Any) -> Step:
    return lambda s, e: s.handle(c.PostUpdate(escalation_id=e, **(UPDATE | changes)), actor="priya")


def scope(**changes: Any) -> Step:
    return lambda s, e: s.handle(c.DefineScope(escalation_id=e, **(SCOPE | changes)), actor="m")


def command(build: Callable[[UUID], c.Command]) -> Step:
    return lambda s, e: s.handle(build(e), actor="mia.manager")


TWO_CRITERIA = [{"id": "auth", "description": "All users sign in"}, {"id": "sync", "description": "Groups sync"}]
CASES: dict[str, tuple[str, list[Step], Step]] = {
    "update with a blank blocker": ("active", [], update(blockers=["db", "  "])),
    "update without next steps": ("active", [], update(next_steps=[])),
    "update with a blank next step": ("active", [], update(next_steps=["  "])),
    "update with a task without tickets": ("active", [], update(current_tasks=[{"description": "Trace"}])),
    "update with a task that is no object": ("active", [], update(current_tasks=["Trace"])),
    "update with a blank task": ("active", [], update(current_tasks=[{"description": " ", "tickets": []}])),
    "update with a blank task ticket": ("active", [], update(current_tasks=[{"description": "T", "tickets": [" "]}])),
    "update with a task ticket twice": (
        "active",
        [],
        update(current_tasks=[{"description": "T", "tickets": ["ZD-1", "ZD-1"]}]),
    ),
    "update changing the exit criteria": ("active", [], update(exit_criteria_change="  sync added ")),
    "scope without exit criteria": ("lead_assigned", [], scope(exit_criteria=[])),
    "scope with a criterion without description": ("lead_assigned", [], scope(exit_criteria=[{"id": "auth"}])),
    "scope with a blank criterion id": (
        "lead_assigned",
        [],
        scope(exit_criteria=[{"id": " ", "description": "d"}]),
    ),
    "scope with a blank criterion description": (
        "lead_assigned",
        [],
        scope(exit_criteria=[{"id": "auth", "description": " "}]),
    ),
    "scope with a criterion id twice": ("lead_assigned", [], scope(exit_criteria=[TWO_CRITERIA[0]] * 2)),
    "scope with a ticket related and unrelated": ("lead_assigned", [], scope(unrelated_tickets=["ZD-1"])),
    "scope with two tickets related and unrelated": (
        "lead_assigned",
        [],
        scope(related_tickets=["ZD-1", "ZD-3"], unrelated_tickets=["ZD-3", "ZD-1"]),
    ),
    "scope with a blank related ticket": ("lead_assigned", [], scope(related_tickets=["ZD-1", " "])),
    "scope with a blank unrelated ticket": ("lead_assigned", [], scope(unrelated_tickets=[" "])),
    "scope not agreed with the account owner": ("lead_assigned", [], scope(agreed_with="someone.else")),
    "meeting a criterion out of scope": (
        "lead_assigned",
        [scope(exit_criteria=TWO_CRITERIA)],
        command(lambda e: c.MeetExitCriterion(escalation_id=e, criterion_id="dns", evidence="e")),
    ),
    "preparation with a blank reviewed ticket": (
        "opened",
        [],
        command(lambda e: c.CompletePreparation(escalation_id=e, cs_process_followed=True, tickets_reviewed=[" "])),
    ),
    "a lead who is also the backup": (
        "prepared",
        [],
        command(
            lambda e: c.AssignLeadEngineer(
                escalation_id=e, engineer="li", engineer_region="EMEA", backup_engineer=" li"
            )
        ),
    ),
    "a lead outside the region without a reason": (
        "prepared",
        [],
        command(lambda e: c.AssignLeadEngineer(escalation_id=e, engineer="li", engineer_region="APAC")),
    ),
    "the lead as a helper": (
        "active",
        [],
        command(lambda e: c.AddHelper(escalation_id=e, engineer="priya", engineer_region="EMEA", reason="r")),
    ),
    "a helper twice": (
        "active",
        [command(lambda e: c.AddHelper(escalation_id=e, engineer="tom", engineer_region="EMEA", reason="r"))],
        command(
            lambda e: c.AddHelper(escalation_id=e, engineer="tom", engineer_region="EMEA", kind="backup", reason="r")
        ),
    ),
    "monitoring not agreed with the account owner": (
        "criteria_met",
        [],
        command(lambda e: c.StartMonitoring(escalation_id=e, period_days=3, agreed_with="someone.else")),
    ),
    "closing after monitoring was interrupted": (
        "monitoring",
        [command(lambda e: c.InterruptMonitoring(escalation_id=e, reason="unstable"))],
        command(lambda e: c.CloseEscalation(escalation_id=e, **CLOSING)),
    ),
    "closing before the monitoring period ends": (
        "monitoring",
        [],
        command(lambda e: c.CloseEscalation(escalation_id=e, **CLOSING)),
    ),
    "answering an answered uncertainty": (
        "active",
        [
            command(lambda e: c.RaiseUncertainty(escalation_id=e, question="q")),
            command(lambda e: c.AnswerUncertainty(escalation_id=e, uncertainty_id="U1", answer="a")),
        ],
        command(lambda e: c.AnswerUncertainty(escalation_id=e, uncertainty_id="U1", answer="b")),
    ),
    "a risk from an answered uncertainty": (
        "active",
        [
            command(lambda e: c.RaiseUncertainty(escalation_id=e, question="q")),
            command(lambda e: c.AnswerUncertainty(escalation_id=e, uncertainty_id="U1", answer="a")),
        ],
        command(lambda e: c.DefineRisk(escalation_id=e, uncertainty_id="U1", **RISK)),
    ),
    "a risk with an unknown level": (
        "active",
        [],
        command(lambda e: c.RecordRisk(escalation_id=e, **(RISK | {"likelihood": "certain"}))),
    ),
    "settling a follow-up action twice": (
        "retro",
        [
            command(lambda e: c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 11, 3))),
            command(lambda e: c.SettleFollowUpAction(escalation_id=e, action_id="A1", outcome="done", note="n")),
        ],
        command(lambda e: c.SettleFollowUpAction(escalation_id=e, action_id="A1", outcome="dropped", note="n")),
    ),
    "a follow-up action due before it was agreed": (
        "retro",
        [],
        command(lambda e: c.AddFollowUpAction(escalation_id=e, what="w", owner="o", due_on=date(2026, 11, 1))),
    ),
    "completing the retrospective twice": (
        "retro",
        [command(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 2)))],
        command(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 2))),
    ),
    "completing the retrospective in the future": (
        "retro",
        [],
        command(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 3))),
    ),
    "completing the retrospective before closing": (
        "retro",
        [],
        command(lambda e: c.CompleteRetrospective(escalation_id=e, completed_on=date(2026, 11, 1))),
    ),
    "the same severity again": (
        "active",
        [],
        command(lambda e: c.ChangeSeverity(escalation_id=e, severity="critical", reason="r")),
    ),
    "a product DRI for a low escalation": (
        "active",
        [],
        command(lambda e: c.ChangeSeverity(escalation_id=e, severity="low", reason="r", product_dri="pat")),
    ),
    "a role handed to who has it": (
        "active",
        [],
        command(lambda e: c.HandOverRole(escalation_id=e, role="dri_manager", successor="mia.manager", reason="r")),
    ),
    "an unknown role": (
        "active",
        [],
        command(lambda e: c.HandOverRole(escalation_id=e, role="lead", successor="sam", reason="r")),
    ),
    "a correction of an unknown version": (
        "active",
        [],
        command(lambda e: c.RecordCorrection(escalation_id=e, corrects_version=99, reason="r", correction="c")),
    ),
    "a correction with a time that is no time": (
        "active",
        [],
        command(
            lambda e: c.RecordCorrection(
                escalation_id=e, corrects_version=2, reason="r", correction="c", corrected_facts={"occurred_at": "soon"}
            )
        ),
    ),
    "a correction to the future": (
        "active",
        [],
        command(
            lambda e: c.RecordCorrection(
                escalation_id=e,
                corrects_version=2,
                reason="r",
                correction="c",
                corrected_facts={"occurred_at": "2026-12-24T09:00:00+00:00"},
            )
        ),
    ),
}


def answer(phase: str, before: list[Step], step: Step) -> str:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock())
    escalation_id = in_phase(service, phase)
    for prepare in before:
        prepare(service, escalation_id)
    try:
        step(service, escalation_id)
    except EscalationError as error:
        return f"{type(error).__name__}: {error}"
    return f"accepted: {recorded(service, escalation_id)}"


def test_each_malformed_command_is_answered_as_reviewed() -> None:
    answers = {case: answer(*parts) for case, parts in CASES.items()}

    check_golden("malformed-commands.json", as_text(answers))
