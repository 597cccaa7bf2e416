"""A correction to a closed escalation, on real Kafka: the reports, the timeline, the retrospective and
`escalations audit verify` all tell the corrected story."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from uuid import UUID

import pytest

from domain import commands as c
from infra.bootstrap import (
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    prepare_topics,
    read_model_engine,
)
from infra.local.stories import ldap_proxy_story
from infra.settings import Settings
from projections.reports import REPORTS
from projections.retro import retrospective
from projections.tables import load_events
from projections.timeline_tables import entries_of
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up
from tests.integration.test_timeline_consumer import escalations_cli

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(tmp_path: str) -> Settings:
    return Settings(data_dir=tmp_path)


def test_a_corrected_lead_assignment_time_reaches_every_read_model(
    kafka_settings: Settings, clock: SteppingClock
) -> None:
    service = build_service(kafka_settings, clock=clock)
    start = clock.now - timedelta(days=14)
    story = ldap_proxy_story(service, start)
    (lead,) = [e for e in service.history(story) if type(e).__name__ == "LeadEngineerAssigned"]
    service.handle(
        c.RecordCorrection(
            escalation_id=story,
            corrects_version=lead.originator_version,
            reason="the lead was assigned half an hour earlier",
            correction="assigned at 09:30",
            corrected_facts={"occurred_at": (start + timedelta(hours=1, minutes=30)).isoformat()},
        ),
        actor="mia.manager",
    )
    prepare_topics(kafka_settings)
    total = publish_until_caught_up(kafka_settings, service)
    engine = read_model_engine(kafka_settings)
    runners = [build_reporting_consumer(kafka_settings, engine), build_timeline_consumer(kafka_settings, engine)]
    threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 90
    while any(r.stats.applied < total for r in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    for runner, thread in zip(runners, threads, strict=True):
        runner.stop()
        thread.join(timeout=30)
    assert [r.stats.applied for r in runners] == [total, total], f"the consumers did not apply all {total} events"

    with engine.connect() as conn:
        (durations,) = REPORTS["durations"](conn, clock.now)
        events, entries = load_events(conn, [str(story)])[str(story)], entries_of(conn, str(story))
    retro = retrospective(events, clock.now, entries)
    verified = escalations_cli(kafka_settings, "audit", "verify", str(story))

    assert durations["hours_to_lead_median"] == 1.5
    assert retro["marks"]["hours_to_lead"] == 1.5
    assert entries[-1].event_type == "CorrectionRecorded"
    assert entries[-1].position == max(e.position for e in events) > 0
    assert "assigned at 09:30" in retro["timeline"][-1]["summary"]
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert UUID(entries[0].escalation_id) == story
