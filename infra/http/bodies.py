"""Request bodies of the commands: what a caller may send, validated before the domain sees it."""

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(min_length=1, max_length=10_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Tickets = Annotated[list[Name], Field(max_length=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    occurred_at: datetime | None = Field(default=None, description="when it happened; default now; never in the future")

    def arguments(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=False)


class OpenEscalation(Body):
    customer: Name
    region: Name
    account_owner: Name
    dri_manager: Name
    source: Name
    severity: Name
    summary: Text
    escalation_dri: Name | None = None
    reason: Name | None = None


class CompletePreparation(Body):
    cs_process_followed: bool
    tickets_reviewed: Tickets
    notes: str = ""


class AssignLead(Body):
    engineer: Name
    engineer_region: Name
    handed_off_tickets: Tickets = []
    backup_engineer: Name | None = None
    region_override_reason: Text | None = None


class AssignProductDri(Body):
    product_dri: Name


class ExitCriterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Name
    description: Text


class DefineScope(Body):
    exit_criteria: Annotated[list[ExitCriterion], Field(max_length=100)]
    related_tickets: Tickets
    unrelated_tickets: Tickets
    agreed_with: Name
    customer_acknowledged_delays: bool

    def arguments(self) -> dict[str, Any]:
        return self.model_dump()


class MeetExitCriterion(Body):
    criterion_id: Name
    evidence: Text


class RaiseUncertainty(Body):
    question: Text


class DefineRisk(Body):
    uncertainty_id: Name
    description: Text
    likelihood: Name
    impact: Name
    mitigation: Text


class AnswerUncertainty(Body):
    uncertainty_id: Name
    answer: Text


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Text
    tickets: Tickets


class PostUpdate(Body):
    progress: Text
    status: Name
    current_tasks: Annotated[list[Task], Field(max_length=100)]
    next_steps: Annotated[list[Text], Field(max_length=100)]
    next_steps_owner: Name
    blockers: Annotated[list[Text], Field(max_length=100)]
    author: Name | None = None
    exit_criteria_change: Text | None = None


class MarkStalled(Body):
    reason: Text
    noticed_by: Name


class ResumeProgress(Body):
    note: Text


class EscalateToSpecialistTeam(Body):
    team: Name
    reference: Name
    reason: Text


class RaiseEmergency(Body):
    ticket: Name
    out_of_hours: bool
    handled_by: Name


class ReviewEmergency(Body):
    emergency_id: Name
    notes: Text
    reviewed_by: Name | None = None


class AgreeSyncCadence(Body):
    cadence: Name
    agreed_with: Name


class StartMonitoring(Body):
    period_days: Annotated[int, Field(ge=1, le=365)]
    agreed_with: Name


class PauseUpdates(Body):
    resume_on: date
    reason: Text


class InterruptMonitoring(Body):
    reason: Text


class CloseEscalation(Body):
    outcome: Name
    exit_criteria_met: bool
    summary: Text
    closing_checklist_done: bool
    customer_comfortable: bool
    agreed_with_account_owner: bool
    override_reason: Text | None = None


class OpenRetrospective(Body):
    retro_reference: Name


class RecordCorrection(Body):
    corrects_version: Annotated[int, Field(ge=1)]
    reason: Text
    correction: Text
