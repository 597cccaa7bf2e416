"""Random command sequences never break an invariant, and replaying the record rebuilds the escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.errors import EscalationError
from domain.escalation import Escalation
from domain.events import EscalationEvent, RetrospectiveOpened
from domain.service import EscalationService
from domain.values import DEFAULT_CADENCES, Phase, Severity, Stamp

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PEOPLE = st.sampled_from(["priya", "kenji", "ana", "dana.owner", "mia.manager", " "])
TICKETS = st.lists(st.sampled_from(["ZD-1", "ZD-2", "ZD-3", "ZD-4"]), max_size=3)
MOSTLY_TRUE = st.sampled_from([True, True, True, False])
OWNER_MOSTLY = st.sampled_from(["dana.owner", "dana.owner", "dana.owner", "bob"])
CRITERIA = st.lists(
    st.builds(
        lambda i, d: {"id": i, "description": d},
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["A", "B", "C", ""]),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda c: c["id"],
) | st.just([])
TEXT = st.sampled_from(["some words", "", "  ", "a reason"])


class EscalationLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mapper = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: START).mapper
        self.now = START
        self.escalation = Escalation.open(
            self.stamp("mia.manager"),
            escalation_id=uuid4(),
            customer="Globex",
            region="EMEA",
            account_owner="dana.owner",
            dri_manager="mia.manager",
            source="customer_success",
            severity="high",
            summary="s",
            channel="#a_globex_escalation",
            cadence=DEFAULT_CADENCES[Severity.HIGH],
        )
        self.recorded: list[EscalationEvent] = list(self.escalation.collect_events())  # type: ignore[arg-type]
        self.closed_at_version: int | None = None

    def stamp(self, actor: str) -> Stamp:
        return Stamp(actor=actor, occurred_at=self.now, recorded_at=self.now)

    def attempt(self, command: str, actor: str, **kwargs: Any) -> None:
        version_before = self.escalation.version
        try:
            getattr(self.escalation, command)(self.stamp(actor), **kwargs)
        except EscalationError:
            assert self.escalation.version == version_before
            assert not self.escalation.pending_events
            return
        self.recorded.extend(self.escalation.collect_events())  # type: ignore[arg-type]
        if self.escalation.is_closed and self.closed_at_version is None:
            self.closed_at_version = self.escalation.version

    @initialize(steps=st.integers(min_value=0, max_value=4))
    def start_somewhere_along_the_handbook(self, steps: int) -> None:
        valid: list[tuple[str, dict[str, Any]]] = [
            ("complete_preparation", {"cs_process_followed": True, "tickets_reviewed": ["ZD-1"]}),
            ("assign_lead_engineer", {"engineer": "priya", "engineer_region": "EMEA"}),
            (
                "define_scope",
                {
                    "exit_criteria": [{"id": "a", "description": "A"}, {"id": "b", "description": "B"}],
                    "related_tickets": ["ZD-1"],
                    "unrelated_tickets": [],
                    "agreed_with": "dana.owner",
                    "customer_acknowledged_delays": True,
                },
            ),
            ("start_monitoring", {"period_days": 1, "agreed_with": "dana.owner"}),
        ]
        for command, kwargs in valid[:steps]:
            self.attempt(command, "mia.manager", **kwargs)

    @rule(hours=st.integers(min_value=0, max_value=60))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(followed=st.booleans(), tickets=TICKETS)
    def complete_preparation(self, followed: bool, tickets: list[str]) -> None:
        self.attempt("complete_preparation", "mia.manager", cs_process_followed=followed, tickets_reviewed=tickets)

    @rule(
        engineer=PEOPLE,
        region=st.sampled_from(["EMEA", "EMEA", "APAC", "MARS"]),
        override=st.sampled_from([None, "", "follow the sun"]),
    )
    def assign_lead(self, engineer: str, region: str, override: str | None) -> None:
        self.attempt(
            "assign_lead_engineer",
            "mia.manager",
            engineer=engineer,
            engineer_region=region,
            region_override_reason=override,
        )

    @rule(
        criteria=CRITERIA,
        related=st.lists(st.sampled_from(["ZD-1", "ZD-2"]), max_size=2),
        unrelated=st.lists(st.sampled_from(["ZD-3", "ZD-4", "ZD-1"]), max_size=2),
        agreed=OWNER_MOSTLY,
        ack=MOSTLY_TRUE,
    )
    def define_scope(self, criteria: Any, related: list[str], unrelated: list[str], agreed: str, ack: bool) -> None:
        self.attempt(
            "define_scope",
            "mia.manager",
            exit_criteria=criteria,
            related_tickets=related,
            unrelated_tickets=unrelated,
            agreed_with=agreed,
            customer_acknowledged_delays=ack,
        )

    @rule(criterion=st.sampled_from(["a", "b", "c"]), evidence=TEXT)
    def meet_criterion(self, criterion: str, evidence: str) -> None:
        self.attempt("meet_exit_criterion", "priya", criterion_id=criterion, evidence=evidence)

    @rule(author=PEOPLE, steps=st.lists(TEXT, max_size=2), blockers=st.lists(TEXT, max_size=2))
    def post_update(self, author: str, steps: list[str], blockers: list[str]) -> None:
        self.attempt(
            "post_update",
            author,
            progress="p",
            status="s",
            current_tasks=[],
            next_steps=steps,
            next_steps_owner="priya",
            blockers=blockers,
        )

    @rule(question=TEXT)
    def raise_uncertainty(self, question: str) -> None:
        self.attempt("raise_uncertainty", "mia.manager", question=question)

    @rule(uncertainty=st.sampled_from(["U1", "U2", "U3"]), likelihood=st.sampled_from(["low", "high", "huge"]))
    def define_risk(self, uncertainty: str, likelihood: str) -> None:
        self.attempt(
            "define_risk",
            "mia.manager",
            uncertainty_id=uncertainty,
            description="d",
            likelihood=likelihood,
            impact="high",
            mitigation="m",
        )

    @rule(uncertainty=st.sampled_from(["U1", "U2", "U3"]), answer=TEXT)
    def answer_uncertainty(self, uncertainty: str, answer: str) -> None:
        self.attempt("answer_uncertainty", "mia.manager", uncertainty_id=uncertainty, answer=answer)

    @rule(reason=TEXT)
    def mark_stalled(self, reason: str) -> None:
        self.attempt("mark_stalled", "mia.manager", reason=reason, noticed_by="mia.manager")

    @rule(note=TEXT)
    def resume(self, note: str) -> None:
        self.attempt("resume_progress", "mia.manager", note=note)

    @rule(team=TEXT)
    def escalate_further(self, team: str) -> None:
        self.attempt("escalate_to_specialist_team", "mia.manager", team=team, reference="INFRA-1", reason="r")

    @rule(out_of_hours=st.booleans(), handler=PEOPLE)
    def raise_emergency(self, out_of_hours: bool, handler: str) -> None:
        self.attempt("raise_emergency", "dana.owner", ticket="ZD-9", out_of_hours=out_of_hours, handled_by=handler)

    @rule(emergency=st.sampled_from(["E1", "E2"]))
    def review_emergency(self, emergency: str) -> None:
        self.attempt("review_emergency_work", "priya", emergency_id=emergency, reviewed_by="priya", notes="n")

    @rule(days=st.integers(min_value=-1, max_value=3), agreed=OWNER_MOSTLY)
    def start_monitoring(self, days: int, agreed: str) -> None:
        self.attempt("start_monitoring", "mia.manager", period_days=days, agreed_with=agreed)

    @rule(reason=TEXT)
    def interrupt_monitoring(self, reason: str) -> None:
        self.attempt("interrupt_monitoring", "mia.manager", reason=reason)

    @rule(override=st.sampled_from([None, None, None, "customer withdrew"]), comfortable=MOSTLY_TRUE)
    def close(self, override: str | None, comfortable: bool) -> None:
        self.attempt(
            "close",
            "mia.manager",
            outcome="positive",
            exit_criteria_met=True,
            summary="s",
            closing_checklist_done=True,
            customer_comfortable=comfortable,
            agreed_with_account_owner=True,
            override_reason=override,
        )

    @precondition(lambda self: self.escalation.is_closed)
    @rule()
    def open_retrospective(self) -> None:
        self.attempt("open_retrospective", "mia.manager", retro_reference="retro#1")

    @invariant()
    def every_event_is_recorded_once_in_order(self) -> None:
        assert [e.originator_version for e in self.recorded] == list(range(1, self.escalation.version + 1))

    @invariant()
    def the_state_keeps_the_handbook_rules(self) -> None:
        e = self.escalation
        assert set(e.criteria_met) <= set(e.exit_criteria)
        assert not set(e.related_tickets) & set(e.unrelated_tickets)
        if e.phase in (Phase.LEAD_ASSIGNED, Phase.ACTIVE, Phase.MONITORING):
            assert e.lead_engineer is not None
        if e.phase in (Phase.ACTIVE, Phase.MONITORING):
            assert e.scope_version > 0
            assert e.exit_criteria
        if e.phase is Phase.MONITORING:
            assert not e.is_stalled
        for uncertainty in e.uncertainties.values():
            assert uncertainty["state"] in {"open", "risk", "answered"}

    @invariant()
    def nothing_but_the_retrospective_follows_closing(self) -> None:
        if self.closed_at_version is not None:
            after = [e for e in self.recorded if e.originator_version > self.closed_at_version]
            assert all(isinstance(e, RetrospectiveOpened) for e in after)
            assert len(after) <= 1

    @invariant()
    def replaying_the_stored_record_rebuilds_an_equal_escalation(self) -> None:
        rebuilt: Escalation | None = None
        for event in self.recorded:
            stored = self.mapper.to_domain_event(self.mapper.to_stored_event(event))
            rebuilt = stored.mutate(rebuilt)
        assert rebuilt == self.escalation


EscalationLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestEscalationLifecycle = EscalationLifecycle.TestCase
