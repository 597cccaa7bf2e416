"""The domain events of an account escalation.

Each event is a frozen, versioned dataclass that carries JSON-friendly values only, and knows how
it changes the escalation (`apply`). Every event records two times: `occurred_at`, when it happened
(given by the person, never in the future), and `timestamp`, when the ledger recorded it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.uncertainties import raised, settled
from domain.values import (
    CadenceData,
    ExitCriterionData,
    Phase,
    Severity,
    TaskData,
    UpdateCadence,
)

if TYPE_CHECKING:
    from domain.escalation import Escalation


class EscalationEvent(Aggregate.Event):
    class_version: ClassVar[int] = 1
    occurred_at: datetime
    actor: str

    def mutate(self, aggregate: Any) -> Any:
        mutated = super().mutate(aggregate)
        assert mutated is not None
        # Which type each version is: a correction names the event it corrects, and is checked against it.
        mutated.event_types.append(type(self).__name__)
        return mutated


class EscalationOpened(EscalationEvent, Aggregate.Created):
    """A customer account escalation was opened, and its channel named."""

    customer: str
    region: str
    account_owner: str
    dri_manager: str
    escalation_dri: str
    source: str
    severity: str
    summary: str
    reason: str | None
    channel: str
    update_cadence: CadenceData

    def apply(self, aggregate: Escalation) -> None:
        aggregate.start(self)


class PreparationCompleted(EscalationEvent):
    """Step 0: the CS escalation process was checked and recent tickets reviewed."""

    cs_process_followed: bool
    tickets_reviewed: list[str]
    notes: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.phase = Phase.PREPARED
        aggregate.tickets_reviewed = list(self.tickets_reviewed)
        aggregate.cs_process_followed = self.cs_process_followed


class LeadEngineerAssigned(EscalationEvent):
    """Step 1: a lead support engineer was assigned (a later one reassigns)."""

    engineer: str
    engineer_region: str
    backup_engineer: str | None
    handed_off_tickets: list[str]
    region_override_reason: str | None

    def apply(self, aggregate: Escalation) -> None:
        if aggregate.lead_engineer is not None:
            aggregate.previous_leads.append(aggregate.lead_engineer)
        aggregate.lead_engineer = self.engineer
        aggregate.lead_region = self.engineer_region
        aggregate.backup_engineer = self.backup_engineer
        if aggregate.phase is Phase.PREPARED:
            aggregate.phase = Phase.LEAD_ASSIGNED


class ProductDriAssigned(EscalationEvent):
    """A product DRI was assigned to a high or critical, product-related escalation."""

    product_dri: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.product_dri = self.product_dri


class ScopeDefined(EscalationEvent):
    """Step 2: scope and exit criteria were agreed with the account owner (each version kept)."""

    scope_version: int
    exit_criteria: list[ExitCriterionData]
    related_tickets: list[str]
    unrelated_tickets: list[str]
    agreed_with: str
    customer_acknowledged_delays: bool

    def apply(self, aggregate: Escalation) -> None:
        aggregate.scope_version = self.scope_version
        aggregate.exit_criteria = {c["id"]: c["description"] for c in self.exit_criteria}
        aggregate.criteria_met = {
            key: evidence for key, evidence in aggregate.criteria_met.items() if key in aggregate.exit_criteria
        }
        aggregate.related_tickets = list(self.related_tickets)
        aggregate.unrelated_tickets = list(self.unrelated_tickets)
        if aggregate.phase is Phase.LEAD_ASSIGNED:
            aggregate.phase = Phase.ACTIVE
            aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class ExitCriterionMet(EscalationEvent):
    """An exit criterion was met, with evidence."""

    criterion_id: str
    evidence: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.criteria_met[self.criterion_id] = self.evidence
        aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class UncertaintyRaised(EscalationEvent):
    """An open question the team cannot yet answer."""

    uncertainty_id: str
    question: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.uncertainties[self.uncertainty_id] = raised(self.question, self.occurred_at.isoformat())


class RiskDefined(EscalationEvent):
    """An uncertainty became a well-defined risk with likelihood, impact and mitigation."""

    uncertainty_id: str
    description: str
    likelihood: str
    impact: str
    mitigation: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.uncertainties[self.uncertainty_id] = settled(
            aggregate.uncertainties[self.uncertainty_id],
            type(self).__name__,
            risk=self.description,
            likelihood=self.likelihood,
            impact=self.impact,
            mitigation=self.mitigation,
            settled_at=self.occurred_at.isoformat(),
        )
        aggregate.risks[self.uncertainty_id] = _risk(self.description, self.likelihood, self.impact, self.mitigation)


class UncertaintyAnswered(EscalationEvent):
    """An uncertainty was answered and is no longer a risk."""

    uncertainty_id: str
    answer: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.uncertainties[self.uncertainty_id] = settled(
            aggregate.uncertainties[self.uncertainty_id],
            type(self).__name__,
            answer=self.answer,
            settled_at=self.occurred_at.isoformat(),
        )


class UpdatePosted(EscalationEvent):
    """Step 3: an update was posted in the escalation channel."""

    update_number: int
    channel: str
    author: str
    progress: str
    criteria_met: int
    criteria_total: int
    status: str
    current_tasks: list[TaskData]
    next_steps: list[str]
    next_steps_owner: str
    blockers: list[str]
    exit_criteria_changed: bool
    exit_criteria_change: str | None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.updates_posted = self.update_number
        aggregate.last_update_at = self.occurred_at
        aggregate.updates_paused_until = None
        aggregate.update_overdue_since = None
        if reports_progress(self.blockers):
            aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class ProgressStalled(EscalationEvent):
    """Step 4: progress on the current tasks stalled (noticed by a person, or by the ledger's watcher)."""

    class_version: ClassVar[int] = 2
    reason: str
    noticed_by: str
    deadline_id: str | None  # set when the ledger noticed it: the deadline that fired

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["deadline_id"] = None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.stalled_since = self.occurred_at
        aggregate.stall_count += 1
        if self.deadline_id is not None:
            aggregate.fired_deadlines.append(self.deadline_id)


class ProgressResumed(EscalationEvent):
    """Progress resumed after a stall."""

    note: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.stalled_since = None
        aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class EscalatedToSpecialistTeam(EscalationEvent):
    """Step 4: the escalation went further, to a specialised team."""

    team: str
    reference: str
    reason: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.specialist_teams.append(self.team)
        aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class EmergencyRaised(EscalationEvent):
    """The customer raised an emergency during the escalation."""

    emergency_id: str
    ticket: str
    out_of_hours: bool
    handled_by: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.emergencies[self.emergency_id] = {
            "ticket": self.ticket,
            "out_of_hours": self.out_of_hours,
            "handled_by": self.handled_by,
            "reviewed": False,
        }


class EmergencyWorkReviewed(EscalationEvent):
    """The DRI manager or lead reviewed the work done during an emergency (someone else: with a reason)."""

    class_version: ClassVar[int] = 2
    emergency_id: str
    reviewed_by: str
    notes: str
    reviewer_override_reason: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["reviewer_override_reason"] = None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.emergencies[self.emergency_id] = {
            **aggregate.emergencies[self.emergency_id],
            "reviewed": True,
        }


class SyncCadenceAgreed(EscalationEvent):
    """A sync meeting cadence was agreed with the account owner."""

    cadence: str
    agreed_with: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.sync_cadence = self.cadence


class MonitoringStarted(EscalationEvent):
    """Step 5: the customer is stable; an agreed monitoring period began (unmet exit criteria: with a reason)."""

    class_version: ClassVar[int] = 2
    period_days: int
    agreed_with: str
    override_reason: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["override_reason"] = None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.phase = Phase.MONITORING
        aggregate.monitoring_ends_at = self.occurred_at + timedelta(days=self.period_days)
        aggregate.monitoring_period_ended_at = None  # a new period, which ends once in its turn


class UpdatesPaused(EscalationEvent):
    """Updates were paused during monitoring until a stated date."""

    resume_on: str
    reason: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.updates_paused_until = self.resume_on
        aggregate.update_overdue_since = None


class MonitoringInterrupted(EscalationEvent):
    """The customer destabilised during monitoring; the escalation is active again."""

    reason: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.phase = Phase.ACTIVE
        aggregate.monitoring_ends_at = None
        aggregate.updates_paused_until = None
        aggregate.progress_at = _later(aggregate.progress_at, self.occurred_at)


class EscalationClosed(EscalationEvent):
    """The escalation was closed, with its outcome."""

    outcome: str
    exit_criteria_met: bool
    summary: str
    closing_checklist_done: bool
    customer_comfortable: bool
    agreed_with_account_owner: bool
    override_reason: str | None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.phase = Phase.CLOSED
        aggregate.outcome = self.outcome
        aggregate.closed_at = self.occurred_at
        aggregate.update_overdue_since = None


class RetrospectiveOpened(EscalationEvent):
    """Step 6: the retrospective issue was opened."""

    retro_reference: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.retrospective = self.retro_reference


class CorrectionRecorded(EscalationEvent):
    """Points at an earlier event, says what was wrong and gives the corrected facts; the earlier event stays."""

    class_version: ClassVar[int] = 2
    corrects_version: int
    corrects_event: str
    reason: str
    correction: str
    corrected_facts: dict[str, Any]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["corrects_event"] = ""  # v1 did not name the type; the version still points at the event
        state["corrected_facts"] = {}

    def apply(self, aggregate: Escalation) -> None:
        aggregate.corrections.append(self.corrects_version)


# -- What changes midway ------------------------------------------------------------------------


class SeverityChanged(EscalationEvent):
    """The escalation got worse or better; the update cadence follows the new severity from now on."""

    severity: str
    previous_severity: str
    reason: str
    update_cadence: CadenceData
    product_dri: str | None
    product_dri_reason: str | None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.severity = Severity(self.severity)
        aggregate.cadence = UpdateCadence(**self.update_cadence)
        aggregate.product_dri = self.product_dri  # kept when still high or critical, released below that


class RoleHandedOver(EscalationEvent):
    """The escalation DRI or the DRI manager handed the role over to someone else."""

    role: str
    previous: str
    successor: str
    reason: str

    def apply(self, aggregate: Escalation) -> None:
        setattr(aggregate, self.role, self.successor)


class HelperAdded(EscalationEvent):
    """A backup or a helper (possibly from another region: the handbook's cross-region help) joined."""

    engineer: str
    engineer_region: str
    kind: str
    reason: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.helpers[self.engineer] = {"region": self.engineer_region, "kind": self.kind}


class HelperRemoved(EscalationEvent):
    """A backup or helper left the escalation."""

    engineer: str
    reason: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.helpers.pop(self.engineer, None)


class RiskRecorded(EscalationEvent):
    """A well-defined risk recorded directly, without an uncertainty first."""

    risk_id: str
    description: str
    likelihood: str
    impact: str
    mitigation: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.risks[self.risk_id] = _risk(self.description, self.likelihood, self.impact, self.mitigation)


class RiskSettled(EscalationEvent):
    """A risk was mitigated, happened (became an issue) or was retired."""

    risk_id: str
    outcome: str
    note: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.risks[self.risk_id] = {**aggregate.risks[self.risk_id], "state": self.outcome}


class FollowUpActionAdded(EscalationEvent):
    """The retrospective produced a follow-up action: what, who, by when, and its ticket."""

    action_id: str
    what: str
    owner: str
    due_on: str
    ticket: str | None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.follow_up_actions[self.action_id] = {
            "what": self.what,
            "owner": self.owner,
            "due_on": self.due_on,
            "ticket": self.ticket,
            "state": "open",
        }


class FollowUpActionSettled(EscalationEvent):
    """A follow-up action was done or dropped."""

    action_id: str
    outcome: str
    note: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.follow_up_actions[self.action_id] = {
            **aggregate.follow_up_actions[self.action_id],
            "state": self.outcome,
        }


class RetrospectiveCompleted(EscalationEvent):
    """The retrospective was completed on a date."""

    completed_on: str
    notes: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.retrospective_completed_on = self.completed_on


# -- What the ledger's watcher notices by itself (each names the deadline that fired) -----------


class UpdateOverdue(EscalationEvent):
    """The severity's cadence allowed `allowed_working_days` without an update, and none came."""

    deadline_id: str
    due_at: datetime  # overdue since
    gap_started_at: datetime  # the last update (or opening, or resumption) the gap counts from
    working_days_overdue: int
    allowed_working_days: int
    severity: str
    lead_engineer: str | None

    def apply(self, aggregate: Escalation) -> None:
        aggregate.fired_deadlines.append(self.deadline_id)
        aggregate.update_overdue_since = self.due_at
        aggregate.update_overdue_noticed_at = _later(aggregate.update_overdue_noticed_at, self.occurred_at)


class MonitoringPeriodEnded(EscalationEvent):
    """The agreed monitoring period is over: the escalation is ready to close."""

    deadline_id: str
    ended_at: datetime

    def apply(self, aggregate: Escalation) -> None:
        aggregate.fired_deadlines.append(self.deadline_id)
        aggregate.monitoring_period_ended_at = self.ended_at


class RetrospectiveDue(EscalationEvent):
    """The escalation closed `working_days_since_closing` working days ago and has no retrospective yet."""

    deadline_id: str
    closed_at: datetime
    working_days_since_closing: int

    def apply(self, aggregate: Escalation) -> None:
        aggregate.fired_deadlines.append(self.deadline_id)
        aggregate.retrospective_due_noticed_at = self.occurred_at


class FollowUpActionOverdue(EscalationEvent):
    """A follow-up action from the retrospective passed its due date unsettled."""

    deadline_id: str
    action_id: str
    owner: str
    due_on: str

    def apply(self, aggregate: Escalation) -> None:
        aggregate.fired_deadlines.append(self.deadline_id)


def reports_progress(blockers: list[str]) -> bool:
    """An update reports progress when nothing blocks it (the watcher and the aggregate count alike)."""
    return not blockers


def _later(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None else max(current, moment)


def _risk(description: str, likelihood: str, impact: str, mitigation: str) -> dict[str, Any]:
    return {
        "description": description,
        "likelihood": likelihood,
        "impact": impact,
        "mitigation": mitigation,
        "state": "open",
    }


ALL_EVENT_TYPES: tuple[type[EscalationEvent], ...] = (
    EscalationOpened,
    PreparationCompleted,
    LeadEngineerAssigned,
    ProductDriAssigned,
    ScopeDefined,
    ExitCriterionMet,
    UncertaintyRaised,
    RiskDefined,
    UncertaintyAnswered,
    UpdatePosted,
    ProgressStalled,
    ProgressResumed,
    EscalatedToSpecialistTeam,
    EmergencyRaised,
    EmergencyWorkReviewed,
    SyncCadenceAgreed,
    MonitoringStarted,
    UpdatesPaused,
    MonitoringInterrupted,
    EscalationClosed,
    RetrospectiveOpened,
    CorrectionRecorded,
    SeverityChanged,
    RoleHandedOver,
    HelperAdded,
    HelperRemoved,
    RiskRecorded,
    RiskSettled,
    FollowUpActionAdded,
    FollowUpActionSettled,
    RetrospectiveCompleted,
    UpdateOverdue,
    MonitoringPeriodEnded,
    RetrospectiveDue,
    FollowUpActionOverdue,
)
# What the ledger's watcher records by itself when a deadline fires (ProgressStalled: people record it too).
WATCHER_EVENT_TYPES: tuple[type[EscalationEvent], ...] = (
    UpdateOverdue,
    MonitoringPeriodEnded,
    RetrospectiveDue,
    FollowUpActionOverdue,
)
# The events that gained fields after v1; each has an upcaster, and a test reads a stored v1 of each.
UPCAST_EVENT_TYPES: tuple[type[EscalationEvent], ...] = (
    EmergencyWorkReviewed,
    MonitoringStarted,
    CorrectionRecorded,
    ProgressStalled,
)


def event_fields(event: EscalationEvent) -> dict[str, Any]:
    """The event's own data: everything but the library's id, version and record time."""
    data = dict(vars(event))
    for bookkeeping in ("originator_id", "originator_version", "timestamp", "originator_topic"):
        data.pop(bookkeeping, None)
    return data
