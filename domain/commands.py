"""The handbook's commands as data: one frozen dataclass per thing a person asks the ledger to do.

A command names its facts once. The application service dispatches it to the aggregate, the HTTP
API builds its request body from it, and the HTTP client sends it, so adding a fact to a command
touches the command, the aggregate method that checks it and the event that records it.

The `Annotated` limits are the input bounds every adapter enforces before the domain sees a value
(the domain's own checks then say what is wrong with a value inside those bounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Annotated, Any, Protocol
from uuid import UUID

from annotated_types import Ge, Le, MaxLen, MinLen

from domain.values import ExitCriterionData, TaskData

Name = Annotated[str, MinLen(1), MaxLen(200)]
Text = Annotated[str, MinLen(1), MaxLen(10_000)]
Notes = Annotated[str, MaxLen(10_000)]
Tickets = Annotated[list[Name], MaxLen(500)]
Texts = Annotated[list[Text], MaxLen(100)]


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every command carries besides its facts: when the thing happened (default: now)."""

    occurred_at: datetime | None = None

    def facts(self) -> dict[str, Any]:
        """The command's own facts, as the aggregate method takes them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ENVELOPE}


@dataclass(frozen=True, kw_only=True)
class EscalationCommand(Command):
    """A command on an existing escalation."""

    escalation_id: UUID


_ENVELOPE = frozenset({"occurred_at", "escalation_id"})


@dataclass(frozen=True)
class CommandResult:
    """What a command changed: the escalation's new version and its last event's log position."""

    escalation_id: UUID
    version: int
    position: int | None
    created: str | None = None  # the id of a thing the command created (an uncertainty, an emergency)


class CommandHandler(Protocol):
    """Anything that handles commands: the application service, or a client of its HTTP API."""

    def handle(self, command: Command, *, actor: str, expected_version: int | None = None) -> CommandResult: ...


# -- Opening and preparation (step 0) -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenEscalation(Command):
    customer: Name
    region: Name
    account_owner: Name
    dri_manager: Name
    source: Name
    severity: Name
    summary: Text
    escalation_dri: Name | None = None
    reason: Name | None = None
    escalation_id: UUID | None = None  # chosen by the caller to make a retried open idempotent


@dataclass(frozen=True, kw_only=True)
class CompletePreparation(EscalationCommand):
    cs_process_followed: bool
    tickets_reviewed: Tickets
    notes: Notes = ""


# -- Lead engineer (step 1) and product DRI -----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AssignLeadEngineer(EscalationCommand):
    engineer: Name
    engineer_region: Name
    handed_off_tickets: Tickets = field(default_factory=list)
    backup_engineer: Name | None = None
    region_override_reason: Text | None = None


@dataclass(frozen=True, kw_only=True)
class AssignProductDri(EscalationCommand):
    product_dri: Name


# -- Scope (step 2) -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DefineScope(EscalationCommand):
    exit_criteria: Annotated[list[ExitCriterionData], MaxLen(100)]
    related_tickets: Tickets
    unrelated_tickets: Tickets
    agreed_with: Name
    customer_acknowledged_delays: bool


@dataclass(frozen=True, kw_only=True)
class MeetExitCriterion(EscalationCommand):
    criterion_id: Name
    evidence: Text


# -- Uncertainty into risk ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RaiseUncertainty(EscalationCommand):
    question: Text


@dataclass(frozen=True, kw_only=True)
class DefineRisk(EscalationCommand):
    uncertainty_id: Name
    description: Text
    likelihood: Name
    impact: Name
    mitigation: Text


@dataclass(frozen=True, kw_only=True)
class AnswerUncertainty(EscalationCommand):
    uncertainty_id: Name
    answer: Text


# -- Daily updates (step 3) and progress (step 4) -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PostUpdate(EscalationCommand):
    progress: Text
    status: Name
    current_tasks: Annotated[list[TaskData], MaxLen(100)]
    next_steps: Texts
    next_steps_owner: Name
    blockers: Texts
    author: Name | None = None
    exit_criteria_change: Text | None = None


@dataclass(frozen=True, kw_only=True)
class MarkStalled(EscalationCommand):
    reason: Text
    noticed_by: Name


@dataclass(frozen=True, kw_only=True)
class ResumeProgress(EscalationCommand):
    note: Text


@dataclass(frozen=True, kw_only=True)
class EscalateToSpecialistTeam(EscalationCommand):
    team: Name
    reference: Name
    reason: Text


# -- Emergencies and the sync cadence (the handbook's FAQ) --------------------------------------


@dataclass(frozen=True, kw_only=True)
class RaiseEmergency(EscalationCommand):
    ticket: Name
    out_of_hours: bool
    handled_by: Name


@dataclass(frozen=True, kw_only=True)
class ReviewEmergencyWork(EscalationCommand):
    emergency_id: Name
    notes: Text
    reviewed_by: Name | None = None  # default: whoever issues the command
    reviewer_override_reason: Text | None = None  # needed when the reviewer is not the DRI manager or lead


@dataclass(frozen=True, kw_only=True)
class AgreeSyncCadence(EscalationCommand):
    cadence: Name
    agreed_with: Name


# -- Monitoring and closing (step 5), retrospective (step 6), corrections -----------------------


@dataclass(frozen=True, kw_only=True)
class StartMonitoring(EscalationCommand):
    period_days: Annotated[int, Ge(1), Le(365)]
    agreed_with: Name
    override_reason: Text | None = None  # needed while exit criteria are unmet


@dataclass(frozen=True, kw_only=True)
class PauseUpdates(EscalationCommand):
    resume_on: date
    reason: Text


@dataclass(frozen=True, kw_only=True)
class InterruptMonitoring(EscalationCommand):
    reason: Text


@dataclass(frozen=True, kw_only=True)
class CloseEscalation(EscalationCommand):
    outcome: Name
    exit_criteria_met: bool
    summary: Text
    closing_checklist_done: bool
    customer_comfortable: bool
    agreed_with_account_owner: bool
    override_reason: Text | None = None


@dataclass(frozen=True, kw_only=True)
class OpenRetrospective(EscalationCommand):
    retro_reference: Name


@dataclass(frozen=True, kw_only=True)
class RecordCorrection(EscalationCommand):
    corrects_version: Annotated[int, Ge(1)]
    reason: Text
    correction: Text
    # The corrected facts, by the corrected event's field names (e.g. {"occurred_at": "…"}, {"author": "…"}).
    corrected_facts: Annotated[dict[str, Any], MaxLen(50)] = field(default_factory=dict)


# -- What changes midway ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChangeSeverity(EscalationCommand):
    severity: Name
    reason: Text
    product_dri: Name | None = None  # raising to high or critical needs a product DRI ...
    product_dri_reason: Text | None = None  # ... or the reason there is none (e.g. not product-related)


@dataclass(frozen=True, kw_only=True)
class HandOverRole(EscalationCommand):
    role: Name  # escalation_dri or dri_manager
    successor: Name
    reason: Text


@dataclass(frozen=True, kw_only=True)
class AddHelper(EscalationCommand):
    engineer: Name
    engineer_region: Name
    kind: Name = "helper"  # backup or helper
    reason: Text


@dataclass(frozen=True, kw_only=True)
class RemoveHelper(EscalationCommand):
    engineer: Name
    reason: Text


@dataclass(frozen=True, kw_only=True)
class RecordRisk(EscalationCommand):
    description: Text
    likelihood: Name
    impact: Name
    mitigation: Text


@dataclass(frozen=True, kw_only=True)
class SettleRisk(EscalationCommand):
    risk_id: Name
    outcome: Name  # mitigated, happened or retired
    note: Text


# -- The retrospective's follow-ups -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AddFollowUpAction(EscalationCommand):
    what: Text
    owner: Name
    due_on: date
    ticket: Name | None = None


@dataclass(frozen=True, kw_only=True)
class SettleFollowUpAction(EscalationCommand):
    action_id: Name
    outcome: Name  # done or dropped
    note: Text


@dataclass(frozen=True, kw_only=True)
class CompleteRetrospective(EscalationCommand):
    completed_on: date
    notes: Notes = ""


# -- What the ledger's watcher records by itself (not on the HTTP API) --------------------------
# Each carries the id of the deadline that fired, derived from the deadline, so the aggregate can
# refuse a second one whatever crashed or ran twice.


@dataclass(frozen=True, kw_only=True)
class RecordUpdateOverdue(EscalationCommand):
    deadline_id: Name
    due_at: datetime
    gap_started_at: datetime
    working_days_overdue: int
    allowed_working_days: int


@dataclass(frozen=True, kw_only=True)
class NoticeStall(EscalationCommand):
    deadline_id: Name
    no_progress_since: datetime
    working_days: int


@dataclass(frozen=True, kw_only=True)
class EndMonitoringPeriod(EscalationCommand):
    deadline_id: Name
    due_at: datetime


@dataclass(frozen=True, kw_only=True)
class RecordRetrospectiveDue(EscalationCommand):
    deadline_id: Name
    closed_at: datetime
    working_days_since_closing: int


@dataclass(frozen=True, kw_only=True)
class RecordFollowUpActionOverdue(EscalationCommand):
    deadline_id: Name
    action_id: Name


WATCHER_COMMANDS: tuple[type[EscalationCommand], ...] = (
    RecordUpdateOverdue,
    NoticeStall,
    EndMonitoringPeriod,
    RecordRetrospectiveDue,
    RecordFollowUpActionOverdue,
)
