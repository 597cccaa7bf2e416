"""Golden files: what the ledger renders for three whole stories, compared with reviewed, checked-in output.

The retro issue, the audit timeline, the Slack messages, every report and the folded reporting facts
are documented, exact outputs; one changed word, number or order in any of them fails here. See
`tests/unit/golden_stories.py` for how to regenerate the files on purpose.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from projections import tables
from projections.facts import EscalationFacts, RecordedEvent, facts_to_json, fold
from projections.notifications import EscalationContext, digest, fold_context, render
from projections.reports import REPORTS
from projections.retro import render_markdown, retrospective
from projections.timeline import timeline
from tests.fakes import project
from tests.unit.golden_stories import NOW, Stories, as_text, check_golden, record_stories

# The customer regions' zones as the settings give them; APAC has none here, so its local time is UTC.
ZONES = {"EMEA": ZoneInfo("Europe/London"), "AMER": ZoneInfo("America/New_York")}
STORIES = ("ldap", "bumpy", "quiet", "clashing")
# Counted by the views up to the database's own clock, not the `now` a report is given: they grow
# while an escalation stays open, so the golden file leaves them out for open ones (other tests pin them).
DATABASE_CLOCK = (
    "overdue_by_working_days",
    "due_windows",
    "share_met",
    "rate",
    "longest_gap_working_days",
    "overdue_now",
)


# Per test, not per module: `make mutation` runs for a mutant only the tests during which the mutated
# code ran, and a fixture computed once for the module would run it during the first test alone.
@pytest.fixture
def stories() -> Stories:
    return record_stories()


@pytest.fixture
def engine(stories: Stories) -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    project(engine, stories.all, ZONES)
    return engine


@pytest.mark.parametrize("story", STORIES)
def test_the_retrospective_is_the_golden_one(stories: Stories, story: str) -> None:
    events = getattr(stories, story)
    retro = retrospective(events, NOW, timeline(events, ZONES))

    check_golden(f"retro-{story}.json", as_text(retro))
    check_golden(f"retro-{story}.md", render_markdown(retro))


def rare_story(stories: Stories) -> list[RecordedEvent]:
    """The quiet story, opened with its own escalation DRI, then what the recorded stories never hold.

    The watcher's events (a person's stall is not the ledger's), a second lead, helpers who stay, an
    open question, an in-hours emergency, a first-version correction (no `corrects_event`), a done
    follow-up with a ticket, and a '|' in a summary that would break the Markdown table. Hand-made
    with each event's documented fields."""
    opened, *rest = stories.quiet
    quiet = [replace(opened, data=opened.data | {"escalation_dri": "erin.dri"}), *rest]
    last = quiet[-1]
    ledger = "escalation-ledger"
    later: list[tuple[str, str, dict[str, object]]] = [
        (
            "LeadEngineerAssigned",
            "sam.manager",
            {
                "engineer": "lead10",
                "engineer_region": "EMEA",
                "handed_off_tickets": [],
                "region_override_reason": "Nobody in APAC knows the balancer",
            },
        ),
        (
            "HelperAdded",
            "sam.manager",
            {"engineer": "ann", "engineer_region": "EMEA", "kind": "backup", "reason": "nights"},
        ),
        (
            "HelperAdded",
            "sam.manager",
            {"engineer": "bob", "engineer_region": "AMER", "kind": "helper", "reason": "days"},
        ),
        ("HelperRemoved", "sam.manager", {"engineer": "carl", "reason": "never joined"}),
        ("HelperRemoved", "sam.manager", {"engineer": "ann", "reason": "back to days"}),
        (
            "ScopeDefined",
            "sam.manager",
            {
                "scope_version": 2,
                "exit_criteria": [{"id": "EC1", "description": "No timeouts for a week"}],
                "related_tickets": ["ZD-1"],
                "unrelated_tickets": ["ZD-7"],
                "agreed_with": "olive.owner",
                "customer_acknowledged_delays": True,
            },
        ),
        ("UncertaintyRaised", "sam.manager", {"uncertainty_id": "U1", "question": "Which balancer?"}),
        ("UncertaintyRaised", "sam.manager", {"uncertainty_id": "U2", "question": "Is it DNS?"}),
        ("UncertaintyAnswered", "sam.manager", {"uncertainty_id": "U2", "answer": "No", "minutes": 20}),
        (
            "EmergencyRaised",
            "lead10",
            {"emergency_id": "E1", "ticket": "ZD-9", "out_of_hours": False, "handled_by": "lead10"},
        ),
        ("EscalatedToSpecialistTeam", "sam.manager", {"team": "Net", "reference": "N-1", "reason": "L4 | L7"}),
        (
            "CorrectionRecorded",
            "sam.manager",
            {"corrects_version": 5, "reason": "typo", "correction": "Timeouts, not retries"},
        ),
        (
            "CorrectionRecorded",
            "sam.manager",
            {
                "corrects_version": 5,
                "corrects_event": "UpdatePosted",
                "reason": "wrong author",
                "correction": "By the helper",
                "corrected_facts": {"author": "bob", "lead": "lead10"},
            },
        ),
        (
            "FollowUpActionAdded",
            "sam.manager",
            {"action_id": "A1", "what": "Alert", "owner": "lead9", "due_on": "2026-11-12", "ticket": "ZD-10"},
        ),
        ("FollowUpActionSettled", "sam.manager", {"action_id": "A1", "outcome": "done", "note": "Live"}),
        (
            "UpdateOverdue",
            ledger,
            {
                "deadline_id": "update:1",
                "due_at": "2026-11-10T00:00:00Z",
                "gap_started_at": "2026-11-05T13:00:00Z",
                "working_days_overdue": 1,
                "allowed_working_days": 2,
                "severity": "high",
                "lead_engineer": "lead9",
            },
        ),
        ("ProgressStalled", "mia.manager", {"reason": "Stuck", "noticed_by": "mia.manager", "deadline_id": None}),
        ("ProgressResumed", "mia.manager", {"note": "Moving"}),
        ("ProgressStalled", ledger, {"reason": "No progress", "noticed_by": ledger, "deadline_id": "stall:1"}),
        ("MonitoringPeriodEnded", ledger, {"deadline_id": "m:1", "ended_at": "2026-11-15T08:00:00Z"}),
        ("RetrospectiveDue", ledger, {"deadline_id": "r:1", "working_days_since_closing": 3}),
        (
            "FollowUpActionOverdue",
            ledger,
            {"deadline_id": "a:1", "action_id": "A2", "owner": "lead9", "due_on": "2026-11-16"},
        ),
    ]
    moment = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    events = list(quiet)
    for n, (name, actor, data) in enumerate(later, 1):
        moment += timedelta(minutes=int(data.pop("minutes", 60)))  # type: ignore[call-overload]
        recorded = {"occurred_at": moment.isoformat().replace("+00:00", "Z"), "actor": actor, **data}
        events.append(RecordedEvent(name, last.escalation_id, last.version + n, last.position + n, recorded))
    return events


def test_the_retrospective_of_the_rarer_parts_is_the_golden_one(stories: Stories) -> None:
    events = rare_story(stories)
    retro = retrospective(events, NOW, timeline(events, ZONES))

    check_golden("retro-rare.json", as_text(retro))
    check_golden("retro-rare.md", render_markdown(retro))


def test_each_storys_escalation_ends_in_the_golden_state(stories: Stories) -> None:
    """The aggregate's own state: what commands are decided on, folded from the same events."""
    check_golden("aggregate-states.json", as_text(stories.states))


# Every column of the reporting tables the analysts query (the views are pinned by reports.json); the
# stored events and folded facts are pinned by facts.json.
REPORTING_TABLES = [t for t in tables.metadata.sorted_tables if t.name not in {"reporting_events", "reporting_state"}]


def table_rows(engine: sa.Engine) -> dict[str, list[object]]:
    with engine.connect() as conn:
        rows: dict[str, list[object]] = {
            t.name: [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
            for t in REPORTING_TABLES
        }
    # Hundreds of days: one line each keeps the file reviewable.
    rows["region_working_days"] = [" ".join(map(str, r.values())) for r in rows["region_working_days"]]  # type: ignore[attr-defined]
    return rows


def test_the_reporting_tables_hold_the_golden_rows(stories: Stories, engine: sa.Engine) -> None:
    rare = sa.create_engine("sqlite://")
    project(rare, rare_story(stories), ZONES)

    check_golden("reporting-tables.json", as_text({"stories": table_rows(engine), "rare": table_rows(rare)}))


def test_the_retrospective_of_an_escalation_only_just_opened(stories: Stories) -> None:
    opened = stories.quiet[:1]
    retro = retrospective(opened, NOW, timeline(opened, ZONES))

    check_golden("retro-opened.md", render_markdown(retro))


def test_the_timelines_are_the_golden_ones(stories: Stories) -> None:
    entries = {story: [asdict(e) for e in timeline(getattr(stories, story), ZONES)] for story in STORIES}

    check_golden("timelines.json", as_text(entries))


def test_the_timeline_of_the_rarer_events_is_the_golden_one() -> None:
    """Summaries and tickets the stories never record, from each event's documented fields.

    A corrected list or None shows as Python writes it (`['ZD-8']`, `None`): that is what stored
    timelines already hold and `escalations verify` compares, so it is pinned here, not changed."""
    cases: list[tuple[str, dict[str, object]]] = [
        ("EscalationOpened", {"customer": "Hooli", "region": "APAC", "severity": "low", "summary": "Slow"}),
        ("PreparationCompleted", {"cs_process_followed": False, "tickets_reviewed": ["ZD-1", "ZD-2"]}),
        (
            "EmergencyWorkReviewed",
            {"emergency_id": "E1", "reviewed_by": "sam", "reviewer_override_reason": "lead away"},
        ),
        ("MonitoringStarted", {"period_days": 3, "agreed_with": "owner", "override_reason": "customer asked"}),
        (
            "SeverityChanged",
            {
                "previous_severity": "low",
                "severity": "critical",
                "update_cadence": {"description": "daily"},
                "product_dri": "pat",
                "reason": "outage",
            },
        ),
        (
            "UpdateOverdue",
            {
                "due_at": "2026-11-10T00:00:00Z",
                "working_days_overdue": 2,
                "severity": "critical",
                "allowed_working_days": 1,
                "lead_engineer": None,
            },
        ),
        (
            "CorrectionRecorded",
            {
                "corrects_version": 2,
                "correction": "Other tickets",
                "reason": "typo",
                "corrected_facts": {"ticket": "ZD-7", "tickets_reviewed": ["ZD-8"], "related_tickets": None},
            },
        ),
        (
            "UpdatePosted",
            {
                "update_number": 1,
                "channel": "#a_hooli_escalation",
                "status": "on track",
                "progress": "Both",
                "current_tasks": [{"tickets": ["ZD-3"]}, {"tickets": ["ZD-4", "ZD-3"]}],
            },
        ),
        ("SomethingNew", {}),
    ]
    events = [
        RecordedEvent(name, "e-1", n, n, {"occurred_at": f"2026-11-0{n}T09:00:00Z", "actor": "sam", **data})
        for n, (name, data) in enumerate(cases, 1)
    ]
    entries = [{"summary": e.summary, "tickets": e.tickets, "actor": e.actor} for e in timeline(events, ZONES)]

    check_golden("timeline-rare.json", as_text(entries))


def test_the_slack_messages_are_the_golden_ones(stories: Stories) -> None:
    messages = []
    contexts: dict[str, EscalationContext] = {}
    for event in stories.all:
        context = fold_context(contexts.get(event.escalation_id), event)
        assert context is not None
        contexts[event.escalation_id] = context
        message = render(event, context)
        messages.append({"event": f"{event.name} v{event.version}", "message": message and asdict(message)})
    active = [c for c in contexts.values() if c.phase != "closed"]
    messages.append({"event": "digest", "message": asdict(digest(active, "#support-managers", "2026-11-20", NOW))})
    messages.append({"event": "empty digest", "message": asdict(digest([], "#support-managers", "2026-11-20", NOW))})

    check_golden("slack-messages.json", as_text(messages))
    check_golden("notify-contexts.json", as_text({k: asdict(v) for k, v in contexts.items()}))


def test_the_slack_messages_of_the_branches_the_stories_miss_are_the_golden_ones() -> None:
    """The watcher's events, a context without a lead or an update, and the rarer parts of a message."""
    bare = EscalationContext("e-9", "Hooli", "APAC", "high", "#a_hooli_escalation")
    staffed = EscalationContext(
        "e-8", "Globex", "EMEA", "critical", "#a_globex_escalation", lead="priya.lead", last_update_at="2026-11-04"
    )

    def event(name: str, **data: object) -> RecordedEvent:
        return RecordedEvent(name, "e-9", 9, 9, {"occurred_at": "2026-11-05T09:00:00Z", "actor": "watcher", **data})

    overdue = {
        "deadline_id": "d-1",
        "due_at": "2026-11-05T08:00:00Z",
        "working_days_overdue": 2,
        "allowed_working_days": 1,
        "severity": "high",
    }
    update = {
        "update_number": 3,
        "criteria_met": 1,
        "criteria_total": 3,
        "progress": "Half way",
        "status": "on track",
        "current_tasks": [{"description": "Read logs", "tickets": []}, {"description": "Fix", "tickets": ["ZD-1"]}],
        "next_steps": ["Deploy", "Watch"],
        "next_steps_owner": "priya.lead",
        "blockers": [],
        "exit_criteria_changed": True,
        "exit_criteria_change": "Added: no errors for a week",
    }
    cases = [
        (event("UpdateOverdue", **overdue), bare),
        (event("UpdateOverdue", **overdue), staffed),
        (event("ProgressStalled", reason="No progress for 3 working days", noticed_by="watcher"), bare),
        (event("MonitoringPeriodEnded", deadline_id="d-2", ended_at="2026-11-04T08:00:00Z"), bare),
        (event("RetrospectiveDue", deadline_id="d-3", working_days_since_closing=5), staffed),
        (event("FollowUpActionOverdue", deadline_id="d-4", action_id="A1", owner="tom", due_on="2026-11-04"), bare),
        (event("EscalationClosed", outcome="negative", summary="Customer left", exit_criteria_met=False), bare),
        (event("EmergencyRaised", ticket="ZD-7", handled_by="priya.lead", out_of_hours=False), staffed),
        (event("RetrospectiveCompleted", completed_on="2026-11-06", notes="Two lessons"), staffed),
        (event("UpdatePosted", **update), staffed),
        (event("UpdatePosted", **update | {"criteria_met": 2, "exit_criteria_change": None}), staffed),
        (event("UpdatePosted", **update | {"criteria_met": 0, "criteria_total": 0}), staffed),
        (RecordedEvent("ProgressResumed", "e-9", 9, 9, {"occurred_at": "2026-11-05T09:00:00Z", "note": "Back"}), bare),
        (event("HelperAdded", engineer="tom"), staffed),
    ]
    messages = [{"event": e.name, "message": (m := render(e, c)) and asdict(m)} for e, c in cases]
    stalled = replace(bare, stalled=True, phase="monitoring", criteria_met=1, criteria_total=2)
    twin = replace(staffed, escalation_id="e-1", lead=None)  # the same customer twice: then by escalation id
    messages.append({"event": "digest", "message": asdict(digest([staffed, stalled, twin], "#m", "2026-11-06", NOW))})

    check_golden("slack-branches.json", as_text(messages))


def test_the_reports_are_the_golden_ones(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        reports = {name: report(conn, NOW) for name, report in REPORTS.items()}
    open_leads = {row["lead_engineer"] for row in reports["active"]}
    assert open_leads == {"lead9", "lead11"}
    for name in ("active", "compliance"):
        for row in reports[name]:
            if row["lead_engineer"] in open_leads:
                row |= {column: "<database clock>" for column in DATABASE_CLOCK if column in row}

    check_golden("reports.json", as_text(reports))


def test_the_folded_facts_are_the_golden_ones(stories: Stories) -> None:
    folded = {}
    for story in STORIES:
        facts: EscalationFacts | None = None
        for event in getattr(stories, story):
            facts = fold(facts, event)
        assert facts is not None
        folded[story] = json.loads(facts_to_json(facts))

    check_golden("facts.json", as_text(folded))


def test_what_each_event_changes_in_the_facts_is_the_golden_one(stories: Stories) -> None:
    """Field by field, what every event of the stories changes: a value later overwritten counts too."""
    changes = []
    for story in STORIES:
        facts: EscalationFacts | None = None
        before: dict[str, object] = {}
        for event in getattr(stories, story):
            facts = fold(facts, event)
            after = json.loads(facts_to_json(facts))
            changed = {k: v for k, v in after.items() if before.get(k) != v and k not in ("version", "position")}
            changes.append({"event": f"{story} {event.name} v{event.version}", "changed": changed})
            before = after

    check_golden("facts-changes.json", as_text(changes))
