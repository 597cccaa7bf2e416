"""The application service: one method per command of the handbook, and the queries to read back.

Each command loads the escalation, checks the caller's expected version (optimistic concurrency),
calls one aggregate method and saves. The event store's own uniqueness on (escalation, version)
turns a lost race between two writers into a `VersionConflictError` too, so nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.channels import CustomerChannels
from domain.errors import EscalationNotFoundError, VersionConflictError
from domain.escalation import Escalation
from domain.events import ALL_EVENT_TYPES, EscalationEvent
from domain.values import (
    DEFAULT_CADENCES,
    DEFAULT_CHANNEL_TEMPLATE,
    ExitCriterionData,
    Severity,
    Stamp,
    TaskData,
    UpdateCadence,
    parse_choice,
)

Clock = Callable[[], datetime]
T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    """What a command changed: the escalation's new version and its last event's log position."""

    escalation_id: UUID
    version: int
    position: int | None
    created: str | None = None  # the id of a thing the command created (an uncertainty, an emergency)


class EscalationService(Application[UUID]):
    name = "Escalations"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock,
        cadences: Mapping[Severity, UpdateCadence] = DEFAULT_CADENCES,
        channel_template: str = DEFAULT_CHANNEL_TEMPLATE,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.cadences = dict(cadences)
        self.channel_template = channel_template

    # -- Commands --------------------------------------------------------------------------------

    def open_escalation(
        self,
        *,
        actor: str,
        customer: str,
        region: str,
        account_owner: str,
        dri_manager: str,
        source: str,
        severity: str,
        summary: str,
        escalation_dri: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        escalation_id: UUID | None = None,
    ) -> CommandResult:
        stamp = self._stamp(actor, occurred_at)
        channels = self._channels_of(customer, stamp.recorded_at)
        escalation = Escalation.open(
            stamp,
            escalation_id=escalation_id or uuid4(),
            customer=customer,
            region=region,
            account_owner=account_owner,
            dri_manager=dri_manager,
            escalation_dri=escalation_dri,
            source=source,
            severity=severity,
            summary=summary,
            reason=reason,
            channel=channels.name_channel(self.channel_template, reason),
            cadence=self.cadences[parse_choice(Severity, severity, "severity")],
        )
        channels.claim(escalation.id, escalation.reason, stamp.recorded_at)
        return self._save(escalation, channels)

    def complete_preparation(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        cs_process_followed: bool,
        tickets_reviewed: list[str],
        notes: str = "",
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.complete_preparation(
                s, cs_process_followed=cs_process_followed, tickets_reviewed=tickets_reviewed, notes=notes
            ),
        )

    def assign_lead_engineer(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        engineer: str,
        engineer_region: str,
        handed_off_tickets: list[str] | None = None,
        backup_engineer: str | None = None,
        region_override_reason: str | None = None,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.assign_lead_engineer(
                s,
                engineer=engineer,
                engineer_region=engineer_region,
                handed_off_tickets=handed_off_tickets,
                backup_engineer=backup_engineer,
                region_override_reason=region_override_reason,
            ),
        )

    def assign_product_dri(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        product_dri: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.assign_product_dri(s, product_dri=product_dri),
        )

    def define_scope(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        exit_criteria: list[ExitCriterionData],
        related_tickets: list[str],
        unrelated_tickets: list[str],
        agreed_with: str,
        customer_acknowledged_delays: bool,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.define_scope(
                s,
                exit_criteria=exit_criteria,
                related_tickets=related_tickets,
                unrelated_tickets=unrelated_tickets,
                agreed_with=agreed_with,
                customer_acknowledged_delays=customer_acknowledged_delays,
            ),
        )

    def meet_exit_criterion(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        criterion_id: str,
        evidence: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.meet_exit_criterion(s, criterion_id=criterion_id, evidence=evidence),
        )

    def raise_uncertainty(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        question: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.raise_uncertainty(s, question=question),
        )

    def define_risk(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        uncertainty_id: str,
        description: str,
        likelihood: str,
        impact: str,
        mitigation: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.define_risk(
                s,
                uncertainty_id=uncertainty_id,
                description=description,
                likelihood=likelihood,
                impact=impact,
                mitigation=mitigation,
            ),
        )

    def answer_uncertainty(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        uncertainty_id: str,
        answer: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.answer_uncertainty(s, uncertainty_id=uncertainty_id, answer=answer),
        )

    def post_update(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        progress: str,
        status: str,
        current_tasks: list[TaskData],
        next_steps: list[str],
        next_steps_owner: str,
        blockers: list[str],
        author: str | None = None,
        exit_criteria_change: str | None = None,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.post_update(
                s,
                progress=progress,
                status=status,
                current_tasks=current_tasks,
                next_steps=next_steps,
                next_steps_owner=next_steps_owner,
                blockers=blockers,
                author=author,
                exit_criteria_change=exit_criteria_change,
            ),
        )

    def mark_stalled(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        reason: str,
        noticed_by: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.mark_stalled(s, reason=reason, noticed_by=noticed_by),
        )

    def resume_progress(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        note: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.resume_progress(s, note=note),
        )

    def escalate_to_specialist_team(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        team: str,
        reference: str,
        reason: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.escalate_to_specialist_team(s, team=team, reference=reference, reason=reason),
        )

    def raise_emergency(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        ticket: str,
        out_of_hours: bool,
        handled_by: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.raise_emergency(s, ticket=ticket, out_of_hours=out_of_hours, handled_by=handled_by),
        )

    def review_emergency_work(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        emergency_id: str,
        notes: str,
        reviewed_by: str | None = None,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.review_emergency_work(
                s, emergency_id=emergency_id, reviewed_by=reviewed_by or actor, notes=notes
            ),
        )

    def agree_sync_cadence(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        cadence: str,
        agreed_with: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.agree_sync_cadence(s, cadence=cadence, agreed_with=agreed_with),
        )

    def start_monitoring(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        period_days: int,
        agreed_with: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.start_monitoring(s, period_days=period_days, agreed_with=agreed_with),
        )

    def pause_updates(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        resume_on: date,
        reason: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.pause_updates(s, resume_on=resume_on, reason=reason),
        )

    def interrupt_monitoring(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        reason: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.interrupt_monitoring(s, reason=reason),
        )

    def close_escalation(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        outcome: str,
        exit_criteria_met: bool,
        summary: str,
        closing_checklist_done: bool,
        customer_comfortable: bool,
        agreed_with_account_owner: bool,
        override_reason: str | None = None,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        stamp = self._stamp(actor, occurred_at)
        escalation = self._load_expected(escalation_id, expected_version)
        escalation.close(
            stamp,
            outcome=outcome,
            exit_criteria_met=exit_criteria_met,
            summary=summary,
            closing_checklist_done=closing_checklist_done,
            customer_comfortable=customer_comfortable,
            agreed_with_account_owner=agreed_with_account_owner,
            override_reason=override_reason,
        )
        channels = self._channels_of(escalation.customer, stamp.recorded_at)
        channels.release(escalation.id, stamp.recorded_at)
        return self._save(escalation, channels)

    def open_retrospective(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        retro_reference: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.open_retrospective(s, retro_reference=retro_reference),
        )

    def record_correction(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        *,
        actor: str,
        corrects_version: int,
        reason: str,
        correction: str,
        occurred_at: datetime | None = None,
    ) -> CommandResult:
        return self._change(
            escalation_id,
            expected_version,
            self._stamp(actor, occurred_at),
            lambda e, s: e.record_correction(
                s, corrects_version=corrects_version, reason=reason, correction=correction
            ),
        )

    # -- Queries ---------------------------------------------------------------------------------

    def escalation(self, escalation_id: UUID, version: int | None = None) -> Escalation:
        try:
            found: object = self.repository.get(escalation_id, version=version)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, Escalation):
            msg = f"no escalation has id {escalation_id}; check the id (list escalations to find it)"
            raise EscalationNotFoundError(msg)
        return found

    def history(self, escalation_id: UUID) -> list[EscalationEvent]:
        """Every event of one escalation, oldest first: what an auditor replays."""
        events = [e for e in self.repository.event_store.get(escalation_id) if isinstance(e, EscalationEvent)]
        if not events:
            self.escalation(escalation_id)  # raises the not-found error
        return events

    def escalation_as_of(self, escalation_id: UUID, moment: datetime) -> Escalation:
        """The escalation as the ledger knew it at `moment` (by recording time)."""
        recorded = [e for e in self.history(escalation_id) if e.timestamp <= moment]
        if not recorded:
            msg = f"escalation {escalation_id} was not yet recorded at {moment.isoformat()}; give a later time"
            raise EscalationNotFoundError(msg)
        return self.escalation(escalation_id, version=recorded[-1].originator_version)

    @staticmethod
    def event_topics() -> list[str]:
        """The topics of escalation events, as the event store names them (for the relay's filter)."""
        from eventsourcing.utils import get_topic  # noqa: PLC0415 - only needed here

        return [get_topic(cls) for cls in ALL_EVENT_TYPES]

    # -- Plumbing --------------------------------------------------------------------------------

    def _stamp(self, actor: str, occurred_at: datetime | None) -> Stamp:
        now = self.clock()
        return Stamp(actor=actor, occurred_at=occurred_at or now, recorded_at=now)

    def _change(
        self,
        escalation_id: UUID,
        expected_version: int | None,
        stamp: Stamp,
        command: Callable[[Escalation, Stamp], T],
    ) -> CommandResult:
        escalation = self._load_expected(escalation_id, expected_version)
        created = command(escalation, stamp)
        return self._save(escalation, created=created if isinstance(created, str) else None)

    def _load_expected(self, escalation_id: UUID, expected_version: int | None) -> Escalation:
        escalation = self.escalation(escalation_id)
        if expected_version is not None and escalation.version != expected_version:
            msg = (
                f"escalation {escalation_id} is at version {escalation.version}, "
                f"not the expected {expected_version}; read it again and retry"
            )
            raise VersionConflictError(msg)
        return escalation

    def _channels_of(self, customer: str, at: datetime) -> CustomerChannels:
        try:
            channels: object = self.repository.get(CustomerChannels.id_for(customer))
        except AggregateNotFoundError:
            return CustomerChannels.register(customer, at)
        assert isinstance(channels, CustomerChannels)
        return channels

    def _save(self, escalation: Escalation, *others: Any, created: str | None = None) -> CommandResult:
        try:
            recordings = self.save(escalation, *others)
        except IntegrityError:
            msg = f"escalation {escalation.id} was changed by someone else at the same time; read it again and retry"
            raise VersionConflictError(msg) from None
        # The escalation's own last position: what its read models will show once they have it.
        positions = [r.notification.id for r in recordings if r.domain_event.originator_id == escalation.id]
        return CommandResult(escalation.id, escalation.version, max(positions) if positions else None, created)
