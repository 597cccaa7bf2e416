"""/readyz tells the truth within seconds: the broker stopped and restarted (same port, same data) under a live API."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from consumers.reporting import GROUP
from infra.bootstrap import broker_check, build_service, lag_check, prepare_topics
from infra.http.app import create_app
from infra.local.brokers import ApacheKafka
from infra.settings import Settings
from projections.tables import create_schema
from tests.integration.test_http_api import MANAGER, OPENING, TOKENS

pytestmark = pytest.mark.kafka


def wait_for(condition: Callable[[], bool], within: float, what: str, why: Callable[[], str] = str) -> float:
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > within:
            pytest.fail(f"timed out after {within}s waiting for {what}; {why()}")
        time.sleep(0.05)
    return time.monotonic() - began


def test_readiness_follows_the_broker_down_and_back_while_commands_are_accepted(tmp_path: Path) -> None:
    with ApacheKafka(work_dir=tmp_path / "kafka") as broker:
        settings = Settings(data_dir=tmp_path, kafka_bootstrap_servers=broker.bootstrap_servers, topic_partitions=1)
        prepare_topics(settings)
        read_model = sa.create_engine(settings.read_model)
        create_schema(read_model)
        checks = {"broker": broker_check(settings), "lag": lag_check(settings, read_model, [GROUP], 10_000)}
        app = create_app(build_service(settings), read_model, TOKENS, readiness=checks)
        api = _SyncAsgi(app)

        def why() -> str:
            return api.get("/readyz").text

        def ready() -> bool:
            return api.get("/readyz").status_code == 200

        wait_for(ready, 30, "/readyz to say ready with the broker up", lambda: api.get("/readyz").text)
        port = broker.port

        broker.stop()
        down = wait_for(lambda: not ready(), 5, "/readyz to say not ready after the broker stopped", why)
        opened = api.post("/escalations", json=OPENING, headers=MANAGER)
        assert opened.status_code == 201, opened.text
        broker.start()
        back = wait_for(ready, 5, "/readyz to say ready again after the broker returned", why)

    assert broker.port == port
    assert (down, back) < (5, 5)


class _SyncAsgi:
    """Blocking requests to an ASGI app in a private event loop thread (the test itself is synchronous)."""

    def __init__(self, app: object) -> None:
        import asyncio  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger")  # type: ignore[arg-type]

    def _run(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        import asyncio  # noqa: PLC0415

        future = asyncio.run_coroutine_threadsafe(self._client.request(method, url, **kwargs), self._loop)  # type: ignore[arg-type]
        return future.result(timeout=30)

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self._run("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self._run("POST", url, **kwargs)
