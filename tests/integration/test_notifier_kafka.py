"""The notifier on a real topic: it posts each step once, and `escalations rebuild notifier` posts nothing."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from infra.bootstrap import (
    build_delivery_loop,
    build_notifier_consumer,
    build_service,
    prepare_topics,
)
from infra.local.receiver import LocalReceiver
from infra.local.stories import ldap_proxy_story
from infra.notify.delivery import delivery_counts
from infra.settings import Settings
from tests.fakes import SteppingClock
from tests.integration.test_relay import publish_until_caught_up
from tests.support.processes import escalations_cli

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def wait(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_the_notifier_posts_the_story_once_and_a_rebuild_from_offset_zero_posts_nothing(
    kafka_settings: Settings,
) -> None:
    clock = SteppingClock(datetime.now(UTC))
    service = build_service(kafka_settings, clock=clock)
    ldap_proxy_story(service, clock.now - timedelta(days=14))
    prepare_topics(kafka_settings)
    total = publish_until_caught_up(kafka_settings, service)
    with LocalReceiver() as receiver:
        settings = kafka_settings.but(
            notify_slack_token=SecretStr(receiver.token), notify_slack_base_url=receiver.slack_base_url
        )
        engine = sa.create_engine(settings.read_model)
        runner = build_notifier_consumer(settings, engine, join_group=False)
        loop = build_delivery_loop(settings, engine)
        threads = [threading.Thread(target=part, daemon=True) for part in (runner.run, loop.run)]
        for thread in threads:
            thread.start()
        try:
            wait(lambda: runner.stats.applied == total, f"the notifier to apply all {total} events")
            wait(lambda: delivery_counts(engine).get("pending", 0) == 0, "every delivery to be sent")
        finally:
            runner.stop()
            loop.stop()
            for thread in threads:
                thread.join(timeout=30)
        sent = len(receiver.received.slack)

        rebuilt = escalations_cli(settings, "rebuild", "notifier")
        build_delivery_loop(settings, engine).run_once()
    status = escalations_cli(settings, "status")

    assert (
        sent == delivery_counts(engine)["sent"] == 12
    )  # opened, 4 updates, stall, resumed, further, emergency, monitoring, closed, retro
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"Rebuilt notifier: {total} events applied" in rebuilt.stdout
    assert delivery_counts(engine) == {"sent": sent}
    assert len(receiver.received.slack) == sent
    assert status.returncode == 0, status.stdout + status.stderr
    lags = [re.findall(r"\d+", line) for line in status.stdout.splitlines() if " notifier " in line]
    assert [lag for *_, lag in lags] == ["0", "0", "0"], status.stdout  # one row per partition, caught up
    lines = status.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " pending " in line and " dead " in line)  # header, rule, counts
    assert dict(zip(lines[at].split(), lines[at + 2].split(), strict=True))["dead"] == "0", status.stdout
