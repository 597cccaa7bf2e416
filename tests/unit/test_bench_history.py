"""The benchmarks' generator records realistic escalations: every event type, the same for a seed."""

from __future__ import annotations

from bench import history
from domain.events import ALL_EVENT_TYPES, WATCHER_EVENT_TYPES
from domain.service import EscalationService
from tests.fakes import SteppingClock


def generated(escalations: int) -> list[tuple[list[str], str | None, str]]:
    """Per escalation: its event types, its lead and its region."""
    clock = SteppingClock()
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    recorded = [service.state(i) for i in history.record(service, escalations, now=clock.now)]
    return [
        ([type(e).__name__ for e in service.history(s["id"])], s["lead_engineer"], s["region"].value) for s in recorded
    ]


def test_the_generator_records_every_event_type_in_legal_orders() -> None:
    recorded = generated(20)

    # Every type people record; the watcher's own events come from its deadlines (tests/unit/test_watcher.py).
    people_record = set(ALL_EVENT_TYPES) - set(WATCHER_EVENT_TYPES)
    assert {name for names, _, _ in recorded for name in names} == {cls.__name__ for cls in people_record}
    assert all(names[0] == "EscalationOpened" for names, _, _ in recorded)
    assert len({lead for _, lead, _ in recorded}) > 5  # many leads


def test_the_same_seed_gives_the_same_escalations() -> None:
    assert generated(12) == generated(12)
