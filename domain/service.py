"""The application service: handles any command of the handbook, and answers queries with plain data.

A command loads the escalation, checks the caller's expected version (optimistic concurrency),
calls one aggregate method and saves. The event store's own uniqueness on (escalation, version)
turns a lost race between two writers into a `VersionConflictError` too, so nothing is overwritten.

A command first decides on the escalation as this process last saw it (the aggregate cache), with
no read at all, and writes. If another writer saved something meanwhile, that write is refused by
the store's version check; and a refusal by the handbook's rules may have been judged on old facts.
Either way the command is decided once more on what the store holds now, and only that outcome
counts. So every command is judged against the latest version, as if it had read first, and the
common case (one writer per escalation at a time) costs one write and no read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import commands as c
from domain.channels import CustomerChannels
from domain.corrections import corrected_history, replay
from domain.errors import EscalationError, EscalationNotFoundError, VersionConflictError
from domain.escalation import Escalation
from domain.events import ALL_EVENT_TYPES, EscalationEvent, EscalationOpened
from domain.values import (
    DEFAULT_CADENCES,
    DEFAULT_CHANNEL_TEMPLATE,
    DEFAULT_OPENING_HORIZON,
    Severity,
    Stamp,
    UpdateCadence,
    parse_choice,
)

Clock = Callable[[], datetime]
Action = Callable[..., str | None]

# The one dispatch table: which aggregate method checks and records each command.
ACTIONS: dict[type[c.Command], Action] = {
    c.CompletePreparation: Escalation.complete_preparation,
    c.AssignLeadEngineer: Escalation.assign_lead_engineer,
    c.AssignProductDri: Escalation.assign_product_dri,
    c.DefineScope: Escalation.define_scope,
    c.MeetExitCriterion: Escalation.meet_exit_criterion,
    c.RaiseUncertainty: Escalation.raise_uncertainty,
    c.DefineRisk: Escalation.define_risk,
    c.AnswerUncertainty: Escalation.answer_uncertainty,
    c.PostUpdate: Escalation.post_update,
    c.MarkStalled: Escalation.mark_stalled,
    c.ResumeProgress: Escalation.resume_progress,
    c.EscalateToSpecialistTeam: Escalation.escalate_to_specialist_team,
    c.RaiseEmergency: Escalation.raise_emergency,
    c.ReviewEmergencyWork: Escalation.review_emergency_work,
    c.AgreeSyncCadence: Escalation.agree_sync_cadence,
    c.StartMonitoring: Escalation.start_monitoring,
    c.PauseUpdates: Escalation.pause_updates,
    c.InterruptMonitoring: Escalation.interrupt_monitoring,
    c.CloseEscalation: Escalation.close,
    c.OpenRetrospective: Escalation.open_retrospective,
    c.RecordCorrection: Escalation.record_correction,
    c.ChangeSeverity: Escalation.change_severity,
    c.HandOverRole: Escalation.hand_over_role,
    c.AddHelper: Escalation.add_helper,
    c.RemoveHelper: Escalation.remove_helper,
    c.RecordRisk: Escalation.record_risk,
    c.SettleRisk: Escalation.settle_risk,
    c.AddFollowUpAction: Escalation.add_follow_up_action,
    c.SettleFollowUpAction: Escalation.settle_follow_up_action,
    c.CompleteRetrospective: Escalation.complete_retrospective,
    c.RecordUpdateOverdue: Escalation.record_update_overdue,
    c.NoticeStall: Escalation.notice_stall,
    c.EndMonitoringPeriod: Escalation.end_monitoring_period,
    c.RecordRetrospectiveDue: Escalation.record_retrospective_due,
    c.RecordFollowUpActionOverdue: Escalation.record_follow_up_action_overdue,
}


class EscalationService(Application[UUID]):
    name = "Escalations"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock,
        cadences: Mapping[Severity, UpdateCadence] = DEFAULT_CADENCES,
        channel_template: str = DEFAULT_CHANNEL_TEMPLATE,
        opening_horizon: timedelta = DEFAULT_OPENING_HORIZON,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.cadences = dict(cadences)
        self.channel_template = channel_template
        self.opening_horizon = opening_horizon

    # -- Commands ----------------------------------------------------------------------------------

    def handle(self, command: c.Command, *, actor: str, expected_version: int | None = None) -> c.CommandResult:
        """Check the command against the escalation at `expected_version` (any, if None) and record it."""
        stamp = self._stamp(actor, command.occurred_at)
        try:
            return self._decide(command, stamp, expected_version, fresh=False)
        except EscalationError:
            # Judged on what this process last saw, which another writer may have moved on since.
            return self._decide(command, stamp, expected_version, fresh=True)

    def _decide(
        self, command: c.Command, stamp: Stamp, expected_version: int | None, *, fresh: bool
    ) -> c.CommandResult:
        if isinstance(command, c.OpenEscalation):
            return self._open(command, stamp, fresh=fresh)
        assert isinstance(command, c.EscalationCommand)
        escalation = self._load_expected(command.escalation_id, expected_version, fresh=fresh)
        corrected = isinstance(command, c.WATCHER_COMMANDS) and bool(escalation.corrections)
        if corrected:
            escalation = self._as_corrected(escalation)
        settings = {"cadences": self.cadences} if isinstance(command, c.ChangeSeverity) else {}
        created = ACTIONS[type(command)](escalation, stamp, **command.facts(), **settings)
        released = (
            self._released_channel(escalation, stamp, fresh=fresh) if isinstance(command, c.CloseEscalation) else ()
        )
        result = self._save(escalation, *released, created=created)
        if corrected and self.repository.cache is not None:
            # The store just cached what it saved: the escalation as corrected, not as recorded.
            self.repository.cache.get(escalation.id, evict=True)
        return result

    # -- Queries -----------------------------------------------------------------------------------

    def state(self, escalation_id: UUID, version: int | None = None) -> dict[str, Any]:
        """The escalation as plain data, at its latest version or at `version`."""
        return self._load(escalation_id, version).as_data()

    def engineers_on(self, escalation_id: UUID, version: int | None = None) -> frozenset[str]:
        """The engineers who may act on this escalation: its lead, backups and helpers; at `version` if given
        (answered without a read when this process has that version: a command expecting it is decided on it)."""
        cache = self.repository.cache
        if version is not None and cache is not None:
            try:
                cached = cache.get(escalation_id)
            except KeyError:
                cached = None
            if isinstance(cached, Escalation) and cached.version == version:
                return cached.engineers_on  # read only: cached aggregates are replaced, never changed
        return self._load(escalation_id).engineers_on

    def history(self, escalation_id: UUID) -> list[EscalationEvent]:
        """Every event of one escalation, oldest first: what an auditor replays."""
        events = [e for e in self.repository.event_store.get(escalation_id) if isinstance(e, EscalationEvent)]
        if not events:
            self._load(escalation_id)  # raises the not-found error
        return events

    def state_as_of(self, escalation_id: UUID, moment: datetime) -> dict[str, Any]:
        """The escalation as the ledger knew it at `moment` (by recording time)."""
        recorded = [e for e in self.history(escalation_id) if e.timestamp <= moment]
        if not recorded:
            msg = f"escalation {escalation_id} was not yet recorded at {moment.isoformat()}; give a later time"
            raise EscalationNotFoundError(msg)
        return self.state(escalation_id, version=recorded[-1].originator_version)

    def state_as_occurred(
        self, escalation_id: UUID, occurred: datetime, known_at: datetime | None = None
    ) -> dict[str, Any]:
        """The escalation as it was at `occurred` (when things happened), as the ledger knows it now
        or, with `known_at`, as it knew it then (by recording time): corrections known by then apply.
        """
        known = [e for e in self.history(escalation_id) if known_at is None or e.timestamp <= known_at]
        happened = [e for e in corrected_history(known) if e.occurred_at <= occurred]
        if not happened or not isinstance(happened[0], EscalationOpened):
            when = f" as known at {known_at.isoformat()}" if known_at else ""
            msg = f"escalation {escalation_id} was not yet open at {occurred.isoformat()}{when}; give a later time"
            raise EscalationNotFoundError(msg)
        return replay(happened).as_data()

    @staticmethod
    def event_topics() -> list[str]:
        """The topics of escalation events, as the event store names them (for the relay's filter)."""
        from eventsourcing.utils import get_topic  # noqa: PLC0415 - only needed here

        return [get_topic(cls) for cls in ALL_EVENT_TYPES]

    # -- Plumbing ----------------------------------------------------------------------------------

    def _open(self, command: c.OpenEscalation, stamp: Stamp, *, fresh: bool = True) -> c.CommandResult:
        channels = self._channels_of(command.customer, stamp.recorded_at, fresh=fresh)
        facts = command.facts()
        escalation = Escalation.open(
            stamp,
            escalation_id=command.escalation_id or uuid4(),
            channel=channels.name_channel(self.channel_template, command.reason),
            cadence=self.cadences[parse_choice(Severity, command.severity, "severity")],
            opening_horizon=self.opening_horizon,
            **facts,
        )
        channels.claim(escalation.id, escalation.reason, stamp.recorded_at)
        return self._save(escalation, channels)

    def _released_channel(self, escalation: Escalation, stamp: Stamp, *, fresh: bool) -> tuple[CustomerChannels]:
        channels = self._channels_of(escalation.customer, stamp.recorded_at, fresh=fresh)
        channels.release(escalation.id, stamp.recorded_at)
        return (channels,)

    def _stamp(self, actor: str, occurred_at: datetime | None) -> Stamp:
        now = self.clock()
        return Stamp(actor=actor, occurred_at=occurred_at or now, recorded_at=now)

    def _as_corrected(self, escalation: Escalation) -> Escalation:
        """The escalation with its corrections applied, to judge a deadline on: the watcher computes each
        deadline from the corrected facts (a back-dated update moves the overdue one earlier), so a
        deadline checked against the facts as first recorded would look not yet due and be dropped.
        Only the new event is saved; the stored history stays as it was recorded."""
        known = [e for e in self.history(escalation.id) if e.originator_version <= escalation.version]
        return replay(corrected_history(known))

    def _load(self, escalation_id: UUID, version: int | None = None, *, fresh: bool = True) -> Escalation:
        try:
            found: object = self._get(escalation_id, version=version, fresh=fresh)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, Escalation):
            msg = f"no escalation has id {escalation_id}; check the id (list escalations to find it)"
            raise EscalationNotFoundError(msg)
        return found

    def _get(self, aggregate_id: UUID, *, version: int | None = None, fresh: bool = True) -> Any:
        """A private copy of an aggregate: as this process last saw it, or (`fresh`) with whatever other
        writers saved since. The cache never fast-forwards by itself (see `Settings.event_store_env`):
        commands write first and refresh only when refused, so the reading is done here, for queries
        and for a command's second attempt. Cached aggregates are never changed in place, only replaced,
        so threads can share the cache without a lock."""
        aggregate: Any = self.repository.get(aggregate_id, version=version)
        cache = self.repository.cache
        if fresh and version is None and cache is not None:
            newer = list(self.repository.event_store.get(aggregate_id, gt=aggregate.version))
            if newer:
                aggregate = project_aggregate(aggregate, newer)
                cache.put(aggregate_id, copy.deepcopy(aggregate))
        return aggregate

    def _load_expected(self, escalation_id: UUID, expected_version: int | None, *, fresh: bool) -> Escalation:
        escalation = self._load(escalation_id, fresh=fresh)
        if expected_version is not None and escalation.version != expected_version:
            msg = (
                f"escalation {escalation_id} is at version {escalation.version}, "
                f"not the expected {expected_version}; read it again and retry"
            )
            raise VersionConflictError(msg)
        return escalation

    def _channels_of(self, customer: str, at: datetime, *, fresh: bool) -> CustomerChannels:
        channels_id = CustomerChannels.id_for(customer)
        cache = self.repository.cache
        if not fresh and cache is not None:
            try:
                cached: CustomerChannels = copy.deepcopy(cache.get(channels_id))  # type: ignore[assignment]
            except KeyError:
                # A customer not seen here is written as new: if another writer has registered it,
                # the store refuses the write and the command is decided again on the stored registry.
                return CustomerChannels.register(customer, at)
            return cached
        try:
            channels: object = self._get(channels_id, fresh=fresh)
        except AggregateNotFoundError:
            return CustomerChannels.register(customer, at)
        assert isinstance(channels, CustomerChannels)
        return channels

    @staticmethod
    def _collected(*aggregates: Aggregate) -> ProcessingEvent[UUID]:
        """What `Application.save` collects, without its checks of each object against the library's runtime
        protocols: on Python 3.11 those `isinstance` checks cost a sixth of a command. This service saves only
        its own aggregates (no snapshots, no notify hooks), so recording what they collected is all of it."""
        collected: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            collected.events.extend(aggregate.collect_events())
            collected.aggregates[aggregate.id] = aggregate
        return collected

    def _save(self, escalation: Escalation, *others: Any, created: str | None = None) -> c.CommandResult:
        try:
            recordings = self._record(self._collected(escalation, *others))
        except IntegrityError:
            msg = f"escalation {escalation.id} was changed by someone else at the same time; read it again and retry"
            raise VersionConflictError(msg) from None
        # The escalation's own last position: what its read models will show once they have it.
        positions = [r.notification.id for r in recordings if r.domain_event.originator_id == escalation.id]
        return c.CommandResult(escalation.id, escalation.version, max(positions) if positions else None, created)
