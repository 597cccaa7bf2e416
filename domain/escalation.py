"""The Escalation aggregate: one customer account escalation, from opening to retrospective.

Every public method is a command from the handbook. It checks the rule it must keep, raising an
error that says what to do instead, and only then records an event. State changes happen only in
the events' `apply`, so replaying history rebuilds exactly the same escalation.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from datetime import UTC, date, datetime, timedelta
from types import UnionType
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import (
    DeadlineAlreadyFiredError,
    DeadlineNoLongerDueError,
    IllegalTransitionError,
    InvalidCommandError,
)
from domain.events import (
    ALL_EVENT_TYPES,
    CorrectionRecorded,
    EmergencyRaised,
    EmergencyWorkReviewed,
    EscalatedToSpecialistTeam,
    EscalationClosed,
    EscalationEvent,
    EscalationOpened,
    ExitCriterionMet,
    FollowUpActionAdded,
    FollowUpActionOverdue,
    FollowUpActionSettled,
    HelperAdded,
    HelperRemoved,
    LeadEngineerAssigned,
    MonitoringInterrupted,
    MonitoringPeriodEnded,
    MonitoringStarted,
    PreparationCompleted,
    ProductDriAssigned,
    ProgressResumed,
    ProgressStalled,
    RetrospectiveCompleted,
    RetrospectiveDue,
    RetrospectiveOpened,
    RiskDefined,
    RiskRecorded,
    RiskSettled,
    RoleHandedOver,
    ScopeDefined,
    SeverityChanged,
    SyncCadenceAgreed,
    UncertaintyAnswered,
    UncertaintyRaised,
    UpdateOverdue,
    UpdatePosted,
    UpdatesPaused,
)
from domain.uncertainties import OPEN
from domain.values import (
    DEFAULT_OPENING_HORIZON,
    ActionOutcome,
    CadenceData,
    ExitCriterionData,
    HandedOverRole,
    HelperKind,
    Level,
    Outcome,
    Phase,
    Region,
    RiskOutcome,
    Severity,
    Source,
    Stamp,
    TaskData,
    UpdateCadence,
    parse_choice,
    require_aware,
    require_text,
    require_tickets,
)

WORKING_PHASES = (Phase.ACTIVE, Phase.MONITORING)


def _thawed(value: Any) -> Any:
    """A copy of the lists and dicts in `value`, nested ones too; anything else is immutable and shared."""
    kind = type(value)
    if kind is list:
        # Most lists hold only strings: one pass in C over their types tells whether a shallow copy will do.
        return [_thawed(item) for item in value] if _MUTABLE & set(map(type, value)) else value.copy()
    if kind is dict:
        return (
            {key: _thawed(item) for key, item in value.items()}
            if _MUTABLE & set(map(type, value.values()))
            else value.copy()
        )
    return value


_MUTABLE = {list, dict}


class Escalation(Aggregate):
    def __init__(self) -> None:
        self.customer = ""
        self.region = Region.AMER
        self.account_owner = ""
        self.dri_manager = ""
        self.escalation_dri = ""
        self.source = Source.SUPPORT_MANAGER
        self.severity = Severity.LOW
        self.summary = ""
        self.reason: str | None = None
        self.channel = ""
        self.cadence = UpdateCadence("", None)
        self.opened_at: datetime | None = None
        self.phase = Phase.OPENED
        self.cs_process_followed = False
        self.tickets_reviewed: list[str] = []
        self.lead_engineer: str | None = None
        self.lead_region: str | None = None
        self.backup_engineer: str | None = None
        self.previous_leads: list[str] = []
        self.product_dri: str | None = None
        self.scope_version = 0
        self.exit_criteria: dict[str, str] = {}
        self.criteria_met: dict[str, str] = {}
        self.related_tickets: list[str] = []
        self.unrelated_tickets: list[str] = []
        self.uncertainties: dict[str, dict[str, Any]] = {}
        self.updates_posted = 0
        self.last_update_at: datetime | None = None
        self.updates_paused_until: str | None = None
        self.stalled_since: datetime | None = None
        self.stall_count = 0
        self.specialist_teams: list[str] = []
        self.emergencies: dict[str, dict[str, Any]] = {}
        self.sync_cadence: str | None = None
        self.monitoring_ends_at: datetime | None = None
        self.outcome: str | None = None
        self.closed_at: datetime | None = None
        self.retrospective: str | None = None
        self.retrospective_completed_on: str | None = None
        self.follow_up_actions: dict[str, dict[str, Any]] = {}
        self.corrections: list[int] = []
        self.helpers: dict[str, dict[str, str]] = {}
        self.risks: dict[str, dict[str, Any]] = {}
        self.event_types: list[str] = []
        # The watcher's bookkeeping: when progress last showed, which deadlines already recorded their event.
        self.progress_at: datetime | None = None
        self.update_overdue_since: datetime | None = None
        self.fired_deadlines: list[str] = []
        # When each once-only deadline last recorded its event: a correction moves a deadline (so its
        # id changes), but the gap, the monitoring period or the closing it was about is the same one.
        self.update_overdue_noticed_at: datetime | None = None
        self.monitoring_period_ended_at: datetime | None = None
        self.retrospective_due_noticed_at: datetime | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Escalation:
        # The repository's aggregate cache hands every command a deep copy. Only the lists and dicts
        # of this state are mutable (the rest are str, int, enum, datetime, UUID or frozen values),
        # so copying just those is enough, and several times cheaper than a generic deepcopy.
        # A plain recursive copy of those: the generic deepcopy's memo bookkeeping costs more than the copying.
        copied = object.__new__(type(self))
        copied.__dict__.update(
            {name: _thawed(value) if type(value) in _MUTABLE else value for name, value in vars(self).items()}
        )
        memo[id(self)] = copied
        return copied

    # -- Opening ---------------------------------------------------------------------------------

    @classmethod
    def open(  # noqa: PLR0913 - the handbook's opening facts
        cls,
        stamp: Stamp,
        *,
        escalation_id: UUID,
        customer: str,
        region: str,
        account_owner: str,
        dri_manager: str,
        source: str,
        severity: str,
        summary: str,
        channel: str,
        cadence: UpdateCadence,
        opening_horizon: timedelta = DEFAULT_OPENING_HORIZON,
        escalation_dri: str | None = None,
        reason: str | None = None,
    ) -> Escalation:
        earliest = stamp.recorded_at - opening_horizon
        if stamp.occurred_at < earliest:
            msg = (
                f"occurred_at {stamp.occurred_at.isoformat()} is more than {opening_horizon.days} days ago "
                f"(the earliest opening is {earliest.isoformat()}); check the date, or raise "
                f"ESCALATIONS_OPENING_HORIZON_DAYS to record an older escalation"
            )
            raise InvalidCommandError(msg)
        return cls._create(
            EscalationOpened,
            id=escalation_id,
            timestamp=stamp.recorded_at,
            occurred_at=stamp.occurred_at,
            actor=stamp.actor,
            customer=require_text(customer, "customer"),
            region=parse_choice(Region, region, "region").value,
            account_owner=require_text(account_owner, "account_owner"),
            dri_manager=require_text(dri_manager, "dri_manager"),
            escalation_dri=require_text(escalation_dri or dri_manager, "escalation_dri"),
            source=parse_choice(Source, source, "source").value,
            severity=parse_choice(Severity, severity, "severity").value,
            summary=require_text(summary, "summary"),
            reason=reason.strip() if reason and reason.strip() else None,
            channel=channel,
            update_cadence=cadence.as_data(),
        )

    def start(self, opened: EscalationOpened) -> None:
        self.customer = opened.customer
        self.region = Region(opened.region)
        self.account_owner = opened.account_owner
        self.dri_manager = opened.dri_manager
        self.escalation_dri = opened.escalation_dri
        self.source = Source(opened.source)
        self.severity = Severity(opened.severity)
        self.summary = opened.summary
        self.reason = opened.reason
        self.channel = opened.channel
        self.cadence = UpdateCadence(**opened.update_cadence)
        self.opened_at = opened.occurred_at

    # -- Step 0: preparation ---------------------------------------------------------------------

    def complete_preparation(
        self, stamp: Stamp, *, cs_process_followed: bool, tickets_reviewed: list[str], notes: str = ""
    ) -> None:
        self.check_open_for(stamp, "complete preparation")
        if self.phase is not Phase.OPENED:
            # The next step only while it is still the next one: later, a lead is already assigned.
            then = "assign the lead engineer next" if self.phase is Phase.PREPARED else "nothing more to record"
            msg = f"preparation is already complete; {then}"
            raise IllegalTransitionError(msg)
        self._record(
            PreparationCompleted,
            stamp,
            cs_process_followed=bool(cs_process_followed),
            tickets_reviewed=require_tickets(tickets_reviewed, "tickets_reviewed"),
            notes=notes.strip(),
        )

    # -- Step 1: lead support engineer -----------------------------------------------------------

    def assign_lead_engineer(
        self,
        stamp: Stamp,
        *,
        engineer: str,
        engineer_region: str,
        handed_off_tickets: list[str] | None = None,
        backup_engineer: str | None = None,
        region_override_reason: str | None = None,
    ) -> None:
        self.check_open_for(stamp, "assign a lead engineer")
        if self.phase is Phase.OPENED:
            msg = "cannot assign a lead engineer before preparation is complete; complete preparation first"
            raise IllegalTransitionError(msg)
        engineer = require_text(engineer, "engineer")
        region = parse_choice(Region, engineer_region, "engineer_region")
        if engineer == self.lead_engineer:
            msg = f"{engineer} is already the lead engineer; name a different engineer to reassign"
            raise IllegalTransitionError(msg)
        if engineer in self.helpers:
            kind = self.helpers[engineer]["kind"]
            msg = f"{engineer} helps here as {kind}; remove them as a helper first, then assign them lead"
            raise IllegalTransitionError(msg)
        override = (region_override_reason or "").strip() or None
        if region is not self.region and override is None:
            msg = (
                f"lead engineer {engineer} is in {region}, but the customer is in {self.region}; "
                f"assign an engineer in {self.region} or give a region_override_reason"
            )
            raise InvalidCommandError(msg)
        if backup_engineer is not None and backup_engineer.strip() == engineer:
            msg = "the backup engineer must be someone other than the lead; name another engineer"
            raise InvalidCommandError(msg)
        self._record(
            LeadEngineerAssigned,
            stamp,
            engineer=engineer,
            engineer_region=region.value,
            backup_engineer=(backup_engineer or "").strip() or None,
            handed_off_tickets=require_tickets(handed_off_tickets or [], "handed_off_tickets"),
            region_override_reason=override,
        )

    def assign_product_dri(self, stamp: Stamp, *, product_dri: str) -> None:
        self.check_open_for(stamp, "assign a product DRI")
        if self.severity not in (Severity.HIGH, Severity.CRITICAL):
            msg = (
                f"a product DRI is assigned only to high or critical escalations, "
                f"and this one is {self.severity}; raise the severity first if it is product-related"
            )
            raise IllegalTransitionError(msg)
        self._record(ProductDriAssigned, stamp, product_dri=require_text(product_dri, "product_dri"))

    # -- Step 2: scope ---------------------------------------------------------------------------

    def define_scope(
        self,
        stamp: Stamp,
        *,
        exit_criteria: list[ExitCriterionData],
        related_tickets: list[str],
        unrelated_tickets: list[str],
        agreed_with: str,
        customer_acknowledged_delays: bool,
    ) -> None:
        self.check_open_for(stamp, "define scope")
        if self.phase in (Phase.OPENED, Phase.PREPARED):
            msg = "cannot define scope before a lead engineer is assigned; assign the lead engineer first"
            raise IllegalTransitionError(msg)
        if self.phase is Phase.MONITORING:
            msg = "cannot redefine scope during monitoring; interrupt monitoring first"
            raise IllegalTransitionError(msg)
        self._check_agreed_with_account_owner(agreed_with, "scope")
        if not customer_acknowledged_delays:
            msg = (
                "the customer must acknowledge that lower-priority tickets may be delayed; "
                "get that acknowledgement, then define scope"
            )
            raise InvalidCommandError(msg)
        criteria = _checked_criteria(exit_criteria)
        related = require_tickets(related_tickets, "related_tickets")
        unrelated = require_tickets(unrelated_tickets, "unrelated_tickets")
        both = sorted(set(related) & set(unrelated))
        if both:
            msg = f"tickets {', '.join(both)} are listed as both related and unrelated; agree on one"
            raise InvalidCommandError(msg)
        self._record(
            ScopeDefined,
            stamp,
            scope_version=self.scope_version + 1,
            exit_criteria=criteria,
            related_tickets=related,
            unrelated_tickets=unrelated,
            agreed_with=agreed_with.strip(),
            customer_acknowledged_delays=True,
        )

    def meet_exit_criterion(self, stamp: Stamp, *, criterion_id: str, evidence: str) -> None:
        self.check_open_for(stamp, "mark an exit criterion met")
        self._check_scope_defined("mark an exit criterion met")
        if criterion_id not in self.exit_criteria:
            known = ", ".join(self.exit_criteria)
            msg = f"exit criterion {criterion_id!r} is not in the current scope; use one of: {known}"
            raise InvalidCommandError(msg)
        if criterion_id in self.criteria_met:
            msg = f"exit criterion {criterion_id!r} is already met; nothing to record"
            raise IllegalTransitionError(msg)
        self._record(ExitCriterionMet, stamp, criterion_id=criterion_id, evidence=require_text(evidence, "evidence"))

    # -- Uncertainty into risk (the manager's core job) ------------------------------------------

    def raise_uncertainty(self, stamp: Stamp, *, question: str) -> str:
        self.check_open_for(stamp, "raise an uncertainty")
        uncertainty_id = f"U{len(self.uncertainties) + 1}"
        self._record(
            UncertaintyRaised,
            stamp,
            uncertainty_id=uncertainty_id,
            question=require_text(question, "question"),
        )
        return uncertainty_id

    def define_risk(
        self,
        stamp: Stamp,
        *,
        uncertainty_id: str,
        description: str,
        likelihood: str,
        impact: str,
        mitigation: str,
    ) -> None:
        self.check_open_for(stamp, "define a risk")
        self._check_uncertainty_open(uncertainty_id)
        self._record(
            RiskDefined,
            stamp,
            uncertainty_id=uncertainty_id,
            **_checked_risk(description, likelihood, impact, mitigation),
        )

    def answer_uncertainty(self, stamp: Stamp, *, uncertainty_id: str, answer: str) -> None:
        self.check_open_for(stamp, "answer an uncertainty")
        self._check_uncertainty_open(uncertainty_id)
        self._record(UncertaintyAnswered, stamp, uncertainty_id=uncertainty_id, answer=require_text(answer, "answer"))

    # -- Step 3: daily updates -------------------------------------------------------------------

    def post_update(
        self,
        stamp: Stamp,
        *,
        progress: str,
        status: str,
        current_tasks: list[TaskData],
        next_steps: list[str],
        next_steps_owner: str,
        blockers: list[str],
        author: str | None = None,
        exit_criteria_change: str | None = None,
    ) -> None:
        self.check_open_for(stamp, "post an update")
        if self.scope_version == 0:
            msg = "cannot post an update before scope is defined; define scope first"
            raise IllegalTransitionError(msg)
        tasks = [_checked_task(task) for task in current_tasks]
        steps = [require_text(step, "each next step") for step in next_steps]
        if not steps:
            msg = "an update needs at least one next step; say what happens next"
            raise InvalidCommandError(msg)
        change = (exit_criteria_change or "").strip() or None
        self._record(
            UpdatePosted,
            stamp,
            update_number=self.updates_posted + 1,
            channel=self.channel,
            author=require_text(author or stamp.actor, "author"),
            progress=require_text(progress, "progress"),
            criteria_met=len(self.criteria_met),
            criteria_total=len(self.exit_criteria),
            status=require_text(status, "status"),
            current_tasks=tasks,
            next_steps=steps,
            next_steps_owner=require_text(next_steps_owner, "next_steps_owner"),
            blockers=[require_text(blocker, "each blocker") for blocker in blockers],
            exit_criteria_changed=change is not None,
            exit_criteria_change=change,
        )

    # -- Step 4: evaluate progress ---------------------------------------------------------------

    def mark_stalled(self, stamp: Stamp, *, reason: str, noticed_by: str) -> None:
        self.check_open_for(stamp, "mark progress stalled")
        self._check_phase(Phase.ACTIVE, "mark progress stalled")
        if self.is_stalled:
            msg = "progress is already marked stalled; resume it or escalate to a specialist team"
            raise IllegalTransitionError(msg)
        self._record(
            ProgressStalled,
            stamp,
            reason=require_text(reason, "reason"),
            noticed_by=require_text(noticed_by, "noticed_by"),
            deadline_id=None,
        )

    def resume_progress(self, stamp: Stamp, *, note: str) -> None:
        self.check_open_for(stamp, "resume progress")
        if not self.is_stalled:
            msg = "progress is not stalled; mark it stalled before resuming it"
            raise IllegalTransitionError(msg)
        self._record(ProgressResumed, stamp, note=require_text(note, "note"))

    def escalate_to_specialist_team(self, stamp: Stamp, *, team: str, reference: str, reason: str) -> None:
        self.check_open_for(stamp, "escalate to a specialist team")
        self._check_phase(Phase.ACTIVE, "escalate to a specialist team")
        self._record(
            EscalatedToSpecialistTeam,
            stamp,
            team=require_text(team, "team"),
            reference=require_text(reference, "reference"),
            reason=require_text(reason, "reason"),
        )

    # -- Emergencies during the escalation (the handbook's FAQ) ----------------------------------

    def raise_emergency(self, stamp: Stamp, *, ticket: str, out_of_hours: bool, handled_by: str) -> str:
        self.check_open_for(stamp, "raise an emergency")
        handler = require_text(handled_by, "handled_by")
        if not out_of_hours and self.lead_engineer is not None and handler != self.lead_engineer:
            msg = (
                f"an in-hours emergency goes to the lead engineer {self.lead_engineer}, not {handler}; "
                f"hand it to the lead, or mark it out_of_hours"
            )
            raise InvalidCommandError(msg)
        emergency_id = f"E{len(self.emergencies) + 1}"
        self._record(
            EmergencyRaised,
            stamp,
            emergency_id=emergency_id,
            ticket=require_text(ticket, "ticket"),
            out_of_hours=bool(out_of_hours),
            handled_by=handler,
        )
        return emergency_id

    def review_emergency_work(
        self,
        stamp: Stamp,
        *,
        emergency_id: str,
        notes: str,
        reviewed_by: str | None = None,
        reviewer_override_reason: str | None = None,
    ) -> None:
        self.check_open_for(stamp, "review emergency work")
        emergency = self.emergencies.get(emergency_id)
        if emergency is None:
            known = ", ".join(self.emergencies) or "none yet"
            msg = f"emergency {emergency_id!r} is not known here; known emergencies: {known}"
            raise InvalidCommandError(msg)
        if emergency["reviewed"]:
            msg = f"emergency {emergency_id} was already reviewed; nothing to record"
            raise IllegalTransitionError(msg)
        reviewer = require_text(reviewed_by or stamp.actor, "reviewed_by")
        override = (reviewer_override_reason or "").strip() or None
        reviewers = [who for who in (self.dri_manager, self.lead_engineer) if who]
        if reviewer not in reviewers and override is None:
            msg = (
                f"emergency work is reviewed by the DRI manager or the lead engineer ({' or '.join(reviewers)}), "
                f"not {reviewer}; have one of them review it, or give a reviewer_override_reason"
            )
            raise InvalidCommandError(msg)
        self._record(
            EmergencyWorkReviewed,
            stamp,
            emergency_id=emergency_id,
            reviewed_by=reviewer,
            notes=require_text(notes, "notes"),
            reviewer_override_reason=override,
        )

    def agree_sync_cadence(self, stamp: Stamp, *, cadence: str, agreed_with: str) -> None:
        self.check_open_for(stamp, "agree a sync cadence")
        self._check_agreed_with_account_owner(agreed_with, "the sync cadence")
        self._record(
            SyncCadenceAgreed,
            stamp,
            cadence=require_text(cadence, "cadence"),
            agreed_with=agreed_with.strip(),
        )

    # -- Step 5: monitoring and closing ----------------------------------------------------------

    def start_monitoring(
        self, stamp: Stamp, *, period_days: int, agreed_with: str, override_reason: str | None = None
    ) -> None:
        self.check_open_for(stamp, "start monitoring")
        self._check_phase(Phase.ACTIVE, "start monitoring")
        if self.is_stalled:
            msg = "cannot start monitoring while progress is stalled; resume progress first"
            raise IllegalTransitionError(msg)
        if not isinstance(period_days, int) or period_days < 1:
            msg = f"period_days must be a whole number of days of at least 1, not {period_days!r}"
            raise InvalidCommandError(msg)
        self._check_agreed_with_account_owner(agreed_with, "the monitoring period")
        override = (override_reason or "").strip() or None
        unmet = self.unmet_criteria
        if unmet and override is None:
            msg = (
                f"exit criteria {', '.join(unmet)} are not met yet; meet them first "
                f"(record each with its evidence), or give an override_reason to monitor anyway"
            )
            raise IllegalTransitionError(msg)
        self._record(
            MonitoringStarted,
            stamp,
            period_days=period_days,
            agreed_with=agreed_with.strip(),
            override_reason=override,
        )

    def pause_updates(self, stamp: Stamp, *, resume_on: date, reason: str) -> None:
        self.check_open_for(stamp, "pause updates")
        self._check_phase(Phase.MONITORING, "pause updates")
        if resume_on <= stamp.occurred_at.date():
            msg = f"resume_on {resume_on.isoformat()} is not after today; give a later date"
            raise InvalidCommandError(msg)
        self._record(UpdatesPaused, stamp, resume_on=resume_on.isoformat(), reason=require_text(reason, "reason"))

    def interrupt_monitoring(self, stamp: Stamp, *, reason: str) -> None:
        self.check_open_for(stamp, "interrupt monitoring")
        self._check_phase(Phase.MONITORING, "interrupt monitoring")
        self._record(MonitoringInterrupted, stamp, reason=require_text(reason, "reason"))

    def close(
        self,
        stamp: Stamp,
        *,
        outcome: str,
        exit_criteria_met: bool,
        summary: str,
        closing_checklist_done: bool,
        customer_comfortable: bool,
        agreed_with_account_owner: bool,
        override_reason: str | None = None,
    ) -> None:
        self.check_open_for(stamp, "close")
        override = (override_reason or "").strip() or None
        if override is None:
            self._check_monitoring_period_passed(stamp)
        for done, what in (
            (closing_checklist_done, "the closing checklist must be done"),
            (customer_comfortable, "the customer must be comfortable with the solution and their status"),
            (agreed_with_account_owner, "closing must be agreed with the account owner"),
        ):
            if not done:
                msg = f"cannot close yet: {what}; do that first, then close"
                raise IllegalTransitionError(msg)
        if exit_criteria_met and self.unmet_criteria:
            msg = (
                f"cannot close with exit_criteria_met: the recorded exit criteria "
                f"{', '.join(self.unmet_criteria)} are not met; record them as met first, "
                f"or close with exit_criteria_met false"
            )
            raise IllegalTransitionError(msg)
        self._record(
            EscalationClosed,
            stamp,
            outcome=parse_choice(Outcome, outcome, "outcome").value,
            exit_criteria_met=bool(exit_criteria_met),
            summary=require_text(summary, "summary"),
            closing_checklist_done=True,
            customer_comfortable=True,
            agreed_with_account_owner=True,
            override_reason=override,
        )

    # -- Step 6: retrospective -------------------------------------------------------------------

    def open_retrospective(self, stamp: Stamp, *, retro_reference: str) -> None:
        self._check_not_before_opening(stamp)
        if self.phase is not Phase.CLOSED:
            msg = "the retrospective is opened after closing; close the escalation first"
            raise IllegalTransitionError(msg)
        if self.retrospective is not None:
            msg = f"the retrospective is already open at {self.retrospective}; add to that one"
            raise IllegalTransitionError(msg)
        self._record(RetrospectiveOpened, stamp, retro_reference=require_text(retro_reference, "retro_reference"))

    # -- Corrections: nothing is overwritten -----------------------------------------------------

    def record_correction(
        self,
        stamp: Stamp,
        *,
        corrects_version: int,
        reason: str,
        correction: str,
        corrected_facts: dict[str, Any] | None = None,
    ) -> None:
        # The retrospective is where mistakes are found: a closed escalation accepts corrections too.
        self._check_not_before_opening(stamp)
        if not 1 <= corrects_version <= self.version:
            msg = f"corrects_version {corrects_version} is not an event of this escalation; use 1 to {self.version}"
            raise InvalidCommandError(msg)
        corrected = self.event_types[corrects_version - 1]
        self._record(
            CorrectionRecorded,
            stamp,
            corrects_version=corrects_version,
            corrects_event=corrected,
            reason=require_text(reason, "reason"),
            correction=require_text(correction, "correction"),
            corrected_facts=checked_corrected_facts(corrected, corrected_facts or {}, stamp),
        )

    # -- What changes midway ---------------------------------------------------------------------

    def change_severity(
        self,
        stamp: Stamp,
        *,
        severity: str,
        reason: str,
        cadences: Mapping[Severity, UpdateCadence],
        product_dri: str | None = None,
        product_dri_reason: str | None = None,
    ) -> None:
        self.check_open_for(stamp, "change the severity")
        new = parse_choice(Severity, severity, "severity")
        if new is self.severity:
            msg = f"the escalation is already {new}; give a different severity to change it"
            raise IllegalTransitionError(msg)
        named = (product_dri or "").strip() or None
        why_none = (product_dri_reason or "").strip() or None
        needs_dri = new in PRODUCT_DRI_SEVERITIES
        if needs_dri and self.product_dri is None and named is None and why_none is None:
            msg = (
                f"a {new} escalation needs a product DRI; name the product_dri, "
                f"or give a product_dri_reason (for example, it is not product-related)"
            )
            raise InvalidCommandError(msg)
        if named is not None and not needs_dri:
            msg = f"a product DRI is assigned only to high or critical escalations, not {new}; leave product_dri out"
            raise InvalidCommandError(msg)
        self._record(
            SeverityChanged,
            stamp,
            severity=new.value,
            previous_severity=self.severity.value,
            reason=require_text(reason, "reason"),
            update_cadence=cadences[new].as_data(),
            product_dri=(named or self.product_dri) if needs_dri else None,
            product_dri_reason=why_none,
        )

    def hand_over_role(self, stamp: Stamp, *, role: str, successor: str, reason: str) -> None:
        self.check_open_for(stamp, "hand over a role")
        handed = parse_choice(HandedOverRole, role, "role")
        successor = require_text(successor, "successor")
        previous = getattr(self, handed.value)
        if successor == previous:
            msg = f"{successor} is already the {handed}; name someone else to hand it over to"
            raise IllegalTransitionError(msg)
        self._record(
            RoleHandedOver,
            stamp,
            role=handed.value,
            previous=previous,
            successor=successor,
            reason=require_text(reason, "reason"),
        )

    def add_helper(self, stamp: Stamp, *, engineer: str, engineer_region: str, kind: str, reason: str) -> None:
        self.check_open_for(stamp, "add a helper")
        engineer = require_text(engineer, "engineer")
        if engineer == self.lead_engineer:
            msg = f"{engineer} is the lead engineer; a backup or helper is someone else"
            raise InvalidCommandError(msg)
        if engineer in self.helpers:
            msg = f"{engineer} already helps as {self.helpers[engineer]['kind']}; remove them first to change that"
            raise IllegalTransitionError(msg)
        self._record(
            HelperAdded,
            stamp,
            engineer=engineer,
            engineer_region=parse_choice(Region, engineer_region, "engineer_region").value,
            kind=parse_choice(HelperKind, kind, "kind").value,
            reason=require_text(reason, "reason"),
        )

    def remove_helper(self, stamp: Stamp, *, engineer: str, reason: str) -> None:
        self.check_open_for(stamp, "remove a helper")
        engineer = require_text(engineer, "engineer")
        if engineer not in self.helpers:
            known = ", ".join(self.helpers) or "none"
            msg = f"{engineer} is not a backup or helper here; current ones: {known}"
            raise InvalidCommandError(msg)
        self._record(HelperRemoved, stamp, engineer=engineer, reason=require_text(reason, "reason"))

    def record_risk(self, stamp: Stamp, *, description: str, likelihood: str, impact: str, mitigation: str) -> str:
        self.check_open_for(stamp, "record a risk")
        risk_id = f"R{sum(1 for key in self.risks if key.startswith('R')) + 1}"
        self._record(
            RiskRecorded,
            stamp,
            risk_id=risk_id,
            **_checked_risk(description, likelihood, impact, mitigation),
        )
        return risk_id

    def settle_risk(self, stamp: Stamp, *, risk_id: str, outcome: str, note: str) -> None:
        self.check_open_for(stamp, "settle a risk")
        risk = self.risks.get(risk_id)
        if risk is None:
            known = ", ".join(self.risks) or "none yet"
            msg = f"risk {risk_id!r} is not known here; known risks: {known}"
            raise InvalidCommandError(msg)
        settled = parse_choice(RiskOutcome, outcome, "outcome")
        if risk["state"] in (RiskOutcome.HAPPENED, RiskOutcome.RETIRED) or risk["state"] == settled:
            msg = f"risk {risk_id} is already {risk['state']}; record a new risk if another one appeared"
            raise IllegalTransitionError(msg)
        self._record(RiskSettled, stamp, risk_id=risk_id, outcome=settled.value, note=require_text(note, "note"))

    # -- The retrospective's follow-ups ----------------------------------------------------------

    def add_follow_up_action(
        self, stamp: Stamp, *, what: str, owner: str, due_on: date, ticket: str | None = None
    ) -> str:
        self._check_retrospective_open("add a follow-up action", stamp)
        if due_on < stamp.occurred_at.date():
            msg = f"due_on {due_on.isoformat()} is before the action was agreed; give a date from then on"
            raise InvalidCommandError(msg)
        action_id = f"A{len(self.follow_up_actions) + 1}"
        self._record(
            FollowUpActionAdded,
            stamp,
            action_id=action_id,
            what=require_text(what, "what"),
            owner=require_text(owner, "owner"),
            due_on=due_on.isoformat(),
            ticket=(ticket or "").strip() or None,
        )
        return action_id

    def settle_follow_up_action(self, stamp: Stamp, *, action_id: str, outcome: str, note: str) -> None:
        self._check_retrospective_open("settle a follow-up action", stamp)
        action = self.follow_up_actions.get(action_id)
        if action is None:
            known = ", ".join(self.follow_up_actions) or "none yet"
            msg = f"follow-up action {action_id!r} is not known here; known actions: {known}"
            raise InvalidCommandError(msg)
        if action["state"] != "open":
            msg = f"follow-up action {action_id} is already {action['state']}; add a new action for more work"
            raise IllegalTransitionError(msg)
        settled = parse_choice(ActionOutcome, outcome, "outcome")
        self._record(
            FollowUpActionSettled, stamp, action_id=action_id, outcome=settled.value, note=require_text(note, "note")
        )

    def complete_retrospective(self, stamp: Stamp, *, completed_on: date, notes: str = "") -> None:
        self._check_retrospective_open("complete the retrospective", stamp)
        if self.retrospective_completed_on is not None:
            msg = f"the retrospective was already completed on {self.retrospective_completed_on}; nothing to record"
            raise IllegalTransitionError(msg)
        if completed_on > stamp.recorded_at.date():
            msg = f"completed_on {completed_on.isoformat()} is in the future; give the day it was completed"
            raise InvalidCommandError(msg)
        assert self.closed_at is not None
        if completed_on < self.closed_at.date():
            msg = f"completed_on {completed_on.isoformat()} is before the escalation closed; give a later day"
            raise InvalidCommandError(msg)
        self._record(RetrospectiveCompleted, stamp, completed_on=completed_on.isoformat(), notes=notes.strip())

    # -- What the ledger's watcher records when a deadline fires -----------------------------------
    # Each refuses a deadline that already fired (by its id, or, once a correction moved it, by what
    # it is about), and one whose reason went away meanwhile (the watcher may fire from a schedule
    # that has not yet seen the newest events), with a DeadlineSettledError the watcher takes as
    # "already done".

    def record_update_overdue(
        self,
        stamp: Stamp,
        *,
        deadline_id: str,
        due_at: datetime,
        gap_started_at: datetime,
        working_days_overdue: int,
        allowed_working_days: int,
    ) -> None:
        self._check_deadline(deadline_id, due_at, stamp)
        if self.phase not in WORKING_PHASES:
            self._no_longer_due(deadline_id, f"the escalation is {self.phase}")
        if self.cadence.max_working_days_between_updates is None:
            self._no_longer_due(deadline_id, f"a {self.severity} escalation has no update cadence")
        if allowed_working_days != self.cadence.max_working_days_between_updates:
            # Computed before a severity change: the watcher recomputes the deadline with the new cadence.
            self._no_longer_due(
                deadline_id,
                f"the {self.severity} cadence now allows {self.cadence.max_working_days_between_updates} working "
                f"days between updates, not {allowed_working_days}",
            )
        if self.last_update_at is not None and self.last_update_at > gap_started_at:
            self._no_longer_due(deadline_id, f"an update was posted at {self.last_update_at.isoformat()}")
        paused = self.updates_paused_until
        if paused is not None and stamp.occurred_at.date() < date.fromisoformat(paused):
            self._no_longer_due(deadline_id, f"updates are paused until {paused}")
        noticed = self.update_overdue_noticed_at
        if noticed is not None and noticed >= gap_started_at:
            self._already_recorded(
                deadline_id,
                f"the gap since {gap_started_at.isoformat()} was recorded overdue at {noticed.isoformat()} "
                f"and no update came since",
            )
        self._record(
            UpdateOverdue,
            stamp,
            deadline_id=deadline_id,
            due_at=due_at,
            gap_started_at=gap_started_at,
            working_days_overdue=max(1, working_days_overdue),
            allowed_working_days=allowed_working_days,
            severity=self.severity.value,
            lead_engineer=self.lead_engineer,
        )

    def notice_stall(self, stamp: Stamp, *, deadline_id: str, no_progress_since: datetime, working_days: int) -> None:
        self._check_deadline(deadline_id, no_progress_since, stamp)
        if self.phase is not Phase.ACTIVE or self.is_stalled:
            self._no_longer_due(deadline_id, f"the escalation is {self.phase}{', stalled' if self.is_stalled else ''}")
        if self.progress_at is not None and self.progress_at > no_progress_since:
            self._no_longer_due(deadline_id, f"progress showed at {self.progress_at.isoformat()}")
        self._record(
            ProgressStalled,
            stamp,
            reason=(
                f"no exit criterion met and no update reporting progress for {working_days} working days "
                f"(since {no_progress_since.isoformat()})"
            ),
            noticed_by=stamp.actor,
            deadline_id=deadline_id,
        )

    def end_monitoring_period(self, stamp: Stamp, *, deadline_id: str, due_at: datetime) -> None:
        self._check_deadline(deadline_id, due_at, stamp)
        if self.phase is not Phase.MONITORING or self.monitoring_ends_at != due_at:
            self._no_longer_due(deadline_id, f"the escalation is {self.phase}, its monitoring period not ending then")
        if self.monitoring_period_ended_at is not None:
            ended = self.monitoring_period_ended_at.isoformat()
            self._already_recorded(deadline_id, f"this monitoring period was recorded ended at {ended}")
        self._record(MonitoringPeriodEnded, stamp, deadline_id=deadline_id, ended_at=due_at)

    def record_retrospective_due(
        self, stamp: Stamp, *, deadline_id: str, closed_at: datetime, working_days_since_closing: int
    ) -> None:
        self._check_deadline(deadline_id, closed_at, stamp)
        if self.closed_at != closed_at or self.retrospective is not None:
            self._no_longer_due(deadline_id, "the retrospective is open, or the escalation is not closed then")
        if self.retrospective_due_noticed_at is not None:
            noticed_at = self.retrospective_due_noticed_at.isoformat()
            self._already_recorded(deadline_id, f"the retrospective was recorded due at {noticed_at}")
        self._record(
            RetrospectiveDue,
            stamp,
            deadline_id=deadline_id,
            closed_at=closed_at,
            working_days_since_closing=working_days_since_closing,
        )

    def record_follow_up_action_overdue(self, stamp: Stamp, *, deadline_id: str, action_id: str) -> None:
        self._check_deadline(deadline_id, None, stamp)
        action = self.follow_up_actions.get(action_id)
        if action is None or action["state"] != "open":
            self._no_longer_due(deadline_id, f"follow-up action {action_id} is not open")
        assert action is not None
        self._record(
            FollowUpActionOverdue,
            stamp,
            deadline_id=deadline_id,
            action_id=action_id,
            owner=action["owner"],
            due_on=action["due_on"],
        )

    def _check_deadline(self, deadline_id: str, due_at: datetime | None, stamp: Stamp) -> None:
        require_text(deadline_id, "deadline_id")
        self._check_not_before_opening(stamp)
        if deadline_id in self.fired_deadlines:
            msg = f"deadline {deadline_id} already recorded its event; nothing more to record"
            raise DeadlineAlreadyFiredError(msg)
        if due_at is not None and require_aware(due_at, "due_at") > stamp.recorded_at:
            msg = f"deadline {deadline_id} is due at {due_at.isoformat()}, not yet; fire it from then on"
            raise InvalidCommandError(msg)

    @staticmethod
    def _no_longer_due(deadline_id: str, why: str) -> None:
        msg = f"deadline {deadline_id} is no longer due: {why}; nothing to record"
        raise DeadlineNoLongerDueError(msg)

    @staticmethod
    def _already_recorded(deadline_id: str, why: str) -> None:
        # A correction moved the deadline (a new id), but what it is about already recorded its event.
        msg = f"deadline {deadline_id} already recorded its event under another id: {why}; nothing more to record"
        raise DeadlineAlreadyFiredError(msg)

    # -- Questions -------------------------------------------------------------------------------

    def as_data(self) -> dict[str, Any]:
        """The escalation's state as plain data (copies, so a caller cannot change the aggregate)."""
        state = {name.lstrip("_"): value for name, value in vars(self).items() if name != "_pending_events"}
        return deepcopy(state) | {"id": self.id, "version": self.version}

    @property
    def unmet_criteria(self) -> list[str]:
        return [key for key in self.exit_criteria if key not in self.criteria_met]

    @property
    def engineers_on(self) -> frozenset[str]:
        """Who works on this escalation: the lead, the backup named with the lead, and every helper."""
        return frozenset(who for who in (self.lead_engineer, self.backup_engineer, *self.helpers) if who)

    @property
    def is_stalled(self) -> bool:
        return self.stalled_since is not None

    @property
    def is_closed(self) -> bool:
        return self.phase is Phase.CLOSED

    # -- Guards ----------------------------------------------------------------------------------

    def check_open_for(self, stamp: Stamp, action: str) -> None:
        if self.is_closed:
            msg = f"cannot {action}: the escalation is closed; open a new escalation if the customer needs one"
            raise IllegalTransitionError(msg)
        self._check_not_before_opening(stamp)

    def _check_not_before_opening(self, stamp: Stamp) -> None:
        assert self.opened_at is not None
        if stamp.occurred_at < self.opened_at:
            msg = (
                f"occurred_at {stamp.occurred_at.isoformat()} is before the escalation was opened "
                f"({self.opened_at.isoformat()}); give a time during the escalation"
            )
            raise InvalidCommandError(msg)

    def _check_retrospective_open(self, action: str, stamp: Stamp) -> None:
        self._check_not_before_opening(stamp)
        if self.retrospective is None:
            msg = (
                f"cannot {action} before the retrospective is opened; "
                f"close the escalation and open its retrospective first"
            )
            raise IllegalTransitionError(msg)

    def _check_phase(self, phase: Phase, action: str) -> None:
        if self.phase is not phase:
            hint = {
                Phase.OPENED: "complete preparation, assign the lead engineer and define scope first",
                Phase.PREPARED: "assign the lead engineer and define scope first",
                Phase.LEAD_ASSIGNED: "define scope first",
                Phase.ACTIVE: "start monitoring first",
                Phase.MONITORING: "interrupt monitoring first",
            }[self.phase]
            msg = f"cannot {action} while the escalation is {self.phase}; {hint}"
            raise IllegalTransitionError(msg)

    def _check_scope_defined(self, action: str) -> None:
        if self.scope_version == 0:
            msg = f"cannot {action} before scope is defined; define scope first"
            raise IllegalTransitionError(msg)

    def _check_uncertainty_open(self, uncertainty_id: str) -> None:
        uncertainty = self.uncertainties.get(uncertainty_id)
        if uncertainty is None:
            known = ", ".join(self.uncertainties) or "none yet"
            msg = f"uncertainty {uncertainty_id!r} is not known here; known uncertainties: {known}"
            raise InvalidCommandError(msg)
        if uncertainty["state"] != OPEN:
            msg = f"uncertainty {uncertainty_id} is already settled ({uncertainty['state']}); raise a new one"
            raise IllegalTransitionError(msg)

    def _check_agreed_with_account_owner(self, agreed_with: str, what: str) -> None:
        if require_text(agreed_with, "agreed_with") != self.account_owner:
            msg = (
                f"{what} must be agreed with the account owner {self.account_owner}, "
                f"not {agreed_with.strip()}; agree it with {self.account_owner}"
            )
            raise InvalidCommandError(msg)

    def _check_monitoring_period_passed(self, stamp: Stamp) -> None:
        if self.phase is not Phase.MONITORING or self.monitoring_ends_at is None:
            msg = (
                f"cannot close while the escalation is {self.phase}: closing comes after an agreed "
                f"monitoring period; start monitoring first, or give an override_reason"
            )
            raise IllegalTransitionError(msg)
        if stamp.occurred_at < self.monitoring_ends_at:
            msg = (
                f"the agreed monitoring period runs until {self.monitoring_ends_at.isoformat()}; "
                f"close after that, or give an override_reason"
            )
            raise IllegalTransitionError(msg)

    def _record(self, event_class: type[EscalationEvent], stamp: Stamp, **fields: Any) -> None:
        self.trigger_event(
            event_class,
            timestamp=stamp.recorded_at,
            occurred_at=stamp.occurred_at,
            actor=stamp.actor,
            **fields,
        )


PRODUCT_DRI_SEVERITIES = (Severity.HIGH, Severity.CRITICAL)
# Facts a correction may not change: the ledger's own bookkeeping, and who issued the command.
UNCORRECTABLE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "actor"})
# The library's class settings (`class_version`, `originator_id_type`) are ClassVars, not facts.
_FIELD_TYPES = {
    cls.__name__: {
        k: v for k, v in get_type_hints(cls).items() if k not in UNCORRECTABLE and get_origin(v) is not ClassVar
    }
    for cls in ALL_EVENT_TYPES
}


def checked_corrected_facts(event_name: str, facts: dict[str, Any], stamp: Stamp) -> dict[str, Any]:
    """The corrected facts of an event of type `event_name`, checked against its fields (JSON-friendly)."""
    allowed = _FIELD_TYPES[event_name]
    checked: dict[str, Any] = {}
    for name, value in facts.items():
        if name not in allowed:
            msg = f"{event_name} has no correctable fact {name!r}; correct one of: {', '.join(sorted(allowed))}"
            raise InvalidCommandError(msg)
        if name == "occurred_at":
            checked[name] = _corrected_time(value, stamp).isoformat()
        elif not _fits(value, allowed[name]):
            msg = (
                f"the corrected {name} {value!r} is not of the type {event_name}.{name} has; give a value of that type"
            )
            raise InvalidCommandError(msg)
        else:
            checked[name] = value
    return checked


def _corrected_time(value: Any, stamp: Stamp) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        msg = f"the corrected occurred_at {value!r} is not an ISO time; give one like 2026-11-03T09:00:00+00:00"
        raise InvalidCommandError(msg) from None
    moment = require_aware(moment, "the corrected occurred_at").astimezone(UTC)
    if moment > stamp.recorded_at:
        msg = f"the corrected occurred_at {moment.isoformat()} is in the future; give the time it actually happened"
        raise InvalidCommandError(msg)
    return moment


def _fits(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is not None:
        return isinstance(value, origin)
    if hint is bool or hint is int:
        return type(value) is hint  # a bool is not an int here, nor the other way round
    return isinstance(value, hint) if isinstance(hint, type) and hint not in TYPED_DICTS else isinstance(value, dict)


TYPED_DICTS = (ExitCriterionData, TaskData, CadenceData)


def _checked_risk(description: str, likelihood: str, impact: str, mitigation: str) -> dict[str, str]:
    return {
        "description": require_text(description, "description"),
        "likelihood": parse_choice(Level, likelihood, "likelihood").value,
        "impact": parse_choice(Level, impact, "impact").value,
        "mitigation": require_text(mitigation, "mitigation"),
    }


def _checked_criteria(exit_criteria: list[ExitCriterionData]) -> list[ExitCriterionData]:
    if not exit_criteria:
        msg = "scope needs at least one exit criterion; agree what 'done' means with the account owner"
        raise InvalidCommandError(msg)
    checked: list[ExitCriterionData] = []
    for criterion in exit_criteria:
        try:
            key, description = criterion["id"], criterion["description"]
        except (KeyError, TypeError):
            msg = f"exit criterion {criterion!r} needs an 'id' and a 'description'"
            raise InvalidCommandError(msg) from None
        checked.append(
            {
                "id": require_text(key, "exit criterion id"),
                "description": require_text(description, "exit criterion description"),
            }
        )
    ids = [criterion["id"] for criterion in checked]
    if len(set(ids)) != len(ids):
        msg = "exit criterion ids must be unique; give each criterion its own id"
        raise InvalidCommandError(msg)
    return checked


def _checked_task(task: TaskData) -> TaskData:
    try:
        description, tickets = task["description"], task["tickets"]
    except (KeyError, TypeError):
        msg = f"task {task!r} needs a 'description' and a list of 'tickets'"
        raise InvalidCommandError(msg) from None
    return {
        "description": require_text(description, "task description"),
        "tickets": require_tickets(list(tickets), "task tickets"),
    }
