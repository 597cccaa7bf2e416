"""The LDAP-proxy story's reports and its retrospective tell the same numbers, the handbook's ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from domain.service import EscalationService
from domain.values import DEFAULT_CADENCES, Severity
from infra.audit import history_as_recorded
from infra.local.stories import ldap_proxy_story
from projections.reports import REPORTS
from projections.retro import retrospective
from projections.timeline import timeline
from tests.fakes import SteppingClock, project

MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = MONDAY + timedelta(days=18)


def test_the_ldap_story_reports_and_retrospective_agree() -> None:
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(NOW))
    events = history_as_recorded(service, ldap_proxy_story(service, MONDAY))
    events = [type(e)(e.name, e.escalation_id, e.version, n, e.data, e.event_id) for n, e in enumerate(events, 1)]
    engine = sa.create_engine("sqlite://")
    project(engine, events)

    with engine.connect() as conn:
        reports = {name: REPORTS[name](conn, NOW) for name in ("durations", "stalls", "uncertainty", "compliance")}
    retro = retrospective(events, NOW, timeline(events, {}))

    (durations,) = reports["durations"]
    (stalls,) = reports["stalls"]
    unknown = {r["uncertainty_id"]: r["hours_unknown"] for r in reports["uncertainty"]}
    (compliance,) = reports["compliance"]
    marks = retro["marks"]
    # The handbook's critical escalation: lead two hours in, scope at three, one five-hour stall that
    # went to the Authentication team an hour in, two days lost to the unknown LDAP proxy.
    assert (durations["hours_to_lead_median"], marks["hours_to_lead"]) == (2.0, 2.0)
    assert (durations["hours_to_scope_median"], marks["hours_to_scope"]) == (3.0, 3.0)
    assert durations["hours_to_close_median"] == marks["total_hours"] == 11 * 24 + 13
    assert stalls["hours_stalled"] == sum(p["hours"] for p in marks["stalled_periods"]) == 5.0
    assert stalls["specialist_teams"] == ", ".join(marks["further_escalations"]) == "Authentication"
    assert unknown == {u["id"]: u["hours_unknown"] for u in retro["uncertainties"]}
    assert unknown["U1"] == 49.0
    # Daily updates while critical: four windows from scope to monitoring, Thursday's missed.
    assert DEFAULT_CADENCES[Severity.CRITICAL].description == "daily"
    assert (compliance["due_windows"], compliance["met_windows"], compliance["share_met"]) == (4, 3, 0.75)
    assert len(marks["update_gaps_over_one_working_day"]) == 1
