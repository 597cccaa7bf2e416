"""The aggregate cache holds each escalation as recorded, whatever view a command was judged on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from domain import commands as c
from domain.service import EscalationService
from tests.unit.test_watcher import FRIDAY, Watched, local


def test_a_deadline_judged_on_corrected_facts_leaves_the_escalation_cached_as_recorded(tmp_path: Path) -> None:
    watched = Watched(tmp_path)
    cached = {"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": "10"}
    watched.service = watched.watcher.handler = EscalationService(
        cached | {"AGGREGATE_CACHE_FASTFORWARD": "n"}, clock=watched.clock
    )  # type: ignore[assignment]
    escalation = watched.open(FRIDAY)
    update = c.PostUpdate(
        escalation_id=escalation,
        progress="p",
        status="on track",
        current_tasks=[],
        next_steps=["n"],
        next_steps_owner="li",
        blockers=[],
    )
    watched.handle(update, at=local(date(2026, 11, 11), 17))
    posted = watched.service.state(escalation)["version"]
    watched.step_to(local(date(2026, 11, 11), 17, 5))
    correction = c.RecordCorrection(
        escalation_id=escalation,
        corrects_version=posted,
        reason="posted late",
        correction="the update went out on Tuesday morning",
        corrected_facts={"occurred_at": local(date(2026, 11, 10), 9).isoformat()},
    )
    watched.handle(correction, at=local(date(2026, 11, 11), 18))

    fired = watched.step_to(local(date(2026, 11, 13), 0, 1))  # due on the corrected facts only

    assert fired == ["UpdateOverdue"]
    replayed_from_the_store = watched.service.state(escalation, version=len(watched.service.history(escalation)))
    assert watched.service.state(escalation) == replayed_from_the_store
