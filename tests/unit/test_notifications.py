"""What the notifier says for each event, and which subscriptions want it (pure, no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.local.stories import ldap_proxy_story
from projections.facts import RecordedEvent
from projections.notifications import EscalationContext, Subscription, digest, fold_context, matches, render
from tests.fakes import SteppingClock

MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONTEXT = EscalationContext("e-1", "Globex", "EMEA", "critical", "#a_globex_escalation", lead="priya.lead")


@pytest.fixture
def story() -> list[RecordedEvent]:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    return history_as_recorded(service, ldap_proxy_story(service, MONDAY))


def rendered(events: list[RecordedEvent]) -> list[tuple[str, str, dict[str, Any]]]:
    context, out = None, []
    for event in events:
        context = fold_context(context, event)
        message = render(event, context)
        if message is not None:
            out.append((message.kind, message.channel, {"text": message.text, "blocks": message.blocks}))
    return out


def block_text(blocks: object) -> str:
    return "\n".join(str(b.get("text", b.get("elements", ""))) for b in blocks)  # type: ignore[attr-defined]


def test_the_story_posts_each_handbook_step_in_the_escalations_channel(story: list[RecordedEvent]) -> None:
    messages = rendered(story)

    kinds = [kind for kind, _, _ in messages]
    assert kinds[0] == "opened"
    assert kinds.count("update") == 4
    for kind in ("stalled", "escalated_further", "emergency", "monitoring_started", "closed", "retrospective"):
        assert kind in kinds, kind
    assert {channel for _, channel, _ in messages} == {"#a_globex_escalation"}


def test_a_daily_update_carries_the_handbooks_five_parts(story: list[RecordedEvent]) -> None:
    update = next(m for kind, _, m in rendered(story) if kind == "update")

    text = block_text(update["blocks"])
    assert "Progress toward exit criteria" in text
    assert "exit criteria met" in text
    for part in ("*Status*", "*Current tasks*", "*Next steps* (owner:", "*Blockers*"):
        assert part in text
    assert "ZD-" in text  # the tasks' tickets


def test_the_watchers_events_render_from_hand_made_data() -> None:
    def event(name: str, **data: object) -> RecordedEvent:
        return RecordedEvent(name, "e-1", 9, 9, {"occurred_at": "2026-11-05T09:00:00Z", "actor": "watcher", **data})

    overdue = render(
        event(
            "UpdateOverdue",
            deadline_id="d-1",
            due_at="2026-11-05T08:00:00Z",
            gap_started_at="2026-11-02T10:00:00Z",
            working_days_overdue=2,
            allowed_working_days=1,
            severity="critical",
            lead_engineer="priya.lead",
        ),
        CONTEXT,
    )
    ended = render(event("MonitoringPeriodEnded", deadline_id="d-2", ended_at="2026-11-04T08:00:00Z"), CONTEXT)
    retro = render(
        event("RetrospectiveDue", deadline_id="d-3", closed_at="2026-10-28T08:00:00Z", working_days_since_closing=5),
        CONTEXT,
    )
    follow_up = render(
        event("FollowUpActionOverdue", deadline_id="d-4", action_id="A1", owner="tom.backup", due_on="2026-11-04"),
        CONTEXT,
    )

    assert overdue is not None
    assert "@priya.lead" in block_text(overdue.blocks)
    assert "2026-11-05T08:00:00Z: 2 working day(s) past the critical cadence" in block_text(overdue.blocks)
    assert ended is not None
    assert ended.kind == "monitoring_ended"
    assert "ended at 2026-11-04T08:00:00Z" in block_text(ended.blocks)
    assert retro is not None
    assert "Closed 5 working day(s) ago" in block_text(retro.blocks)
    assert follow_up is not None
    assert "@tom.backup" in block_text(follow_up.blocks)
    assert "A1" in block_text(follow_up.blocks)


def test_events_the_channel_does_not_need_post_nothing(story: list[RecordedEvent]) -> None:
    context = fold_context(None, story[0])

    assert render(replace(story[0], name="HelperRemoved"), context) is None


def test_the_digest_lists_every_active_escalation_and_marks_a_stall() -> None:
    stalled = replace(CONTEXT, escalation_id="e-2", customer="Initech", stalled=True)

    message = digest([CONTEXT, stalled], "#support-managers", "2026-11-05", NOW)

    text = block_text(message.blocks)
    assert message.channel == "#support-managers"
    assert "Globex" in text
    assert "Initech" in text
    assert text.count(":warning: stalled") == 1


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        (Subscription("s", "u"), True),
        (Subscription("s", "u", event_types=frozenset({"UpdatePosted"})), True),
        (Subscription("s", "u", event_types=frozenset({"EscalationClosed"})), False),
        (Subscription("s", "u", customers=frozenset({"globex"})), True),
        (Subscription("s", "u", regions=frozenset({"AMER"})), False),
        (Subscription("s", "u", severities=frozenset({"critical", "high"})), True),
        (Subscription("s", "u", paused=True), False),
    ],
)
def test_a_subscription_chooses_event_types_customers_regions_and_severities(
    subscription: Subscription, wanted: bool
) -> None:
    assert matches(subscription, "UpdatePosted", CONTEXT) is wanted


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        (Subscription("s", "u"), True),
        (Subscription("s", "u", event_types=frozenset({"UpdatePosted"})), True),
        (Subscription("s", "u", event_types=frozenset({"EscalationClosed"})), False),
        (Subscription("s", "u", customers=frozenset({"Globex"})), False),
        (Subscription("s", "u", regions=frozenset({"EMEA"})), False),
        (Subscription("s", "u", severities=frozenset({"critical"})), False),
        (Subscription("s", "u", paused=True), False),
    ],
)
def test_an_event_without_an_escalation_context_goes_only_where_no_escalation_filter_is_set(
    subscription: Subscription, wanted: bool
) -> None:
    assert matches(subscription, "UpdatePosted", None) is wanted


@pytest.mark.parametrize(
    ("chosen", "wanted"),
    [
        ({"customers": frozenset({"Initech"})}, False),
        ({"customers": frozenset({"Initech", "GLOBEX"})}, True),
        ({"regions": frozenset({"emea"})}, True),
        ({"severities": frozenset({"high"})}, False),
        ({"severities": frozenset({"Critical"})}, True),
        ({"customers": frozenset({"globex"}), "regions": frozenset({"APAC"})}, False),
        ({"customers": frozenset({"globex"}), "regions": frozenset({"EMEA"}), "severities": frozenset({"low"})}, False),
    ],
)
def test_each_escalation_filter_must_hold_ignoring_case(chosen: dict[str, frozenset[str]], wanted: bool) -> None:
    assert matches(Subscription("s", "u", **chosen), "UpdatePosted", CONTEXT) is wanted
