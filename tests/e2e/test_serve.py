"""`escalations serve` over a real socket: a command, then read-your-writes through relay and consumer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from infra.local.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.tansu


def test_serve_takes_a_command_and_the_read_model_reflects_it(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "serve.out"
    env = {**os.environ, "ESCALATIONS_DATA_DIR": str(tmp_path), "ESCALATIONS_API_TOKENS": '{"t0k": "manager:mia"}'}
    server = subprocess.Popen(
        [sys.executable, "-m", "infra", "serve", "--port", str(port)],
        env=env,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(f"{base}/readyz"), what=f"`escalations serve` to answer 200 on {base}/readyz")
        auth = {"Authorization": "Bearer t0k"}

        opened = httpx.post(
            f"{base}/escalations",
            headers=auth,
            json={
                "customer": "Initech",
                "region": "AMER",
                "account_owner": "ines.owner",
                "dri_manager": "mia",
                "source": "support_engineer",
                "severity": "high",
                "summary": "502s",
            },
        )
        body = opened.json()
        listed = httpx.get(
            f"{base}/escalations",
            headers=auth,
            params={"after": body["position"], "after_escalation": body["escalation_id"], "timeout": 20},
            timeout=30,
        )
        entries = httpx.get(
            f"{base}/escalations/{body['escalation_id']}/timeline", headers=auth, params={"timeout": 20}, timeout=30
        )
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)

    assert opened.status_code == 201, opened.text
    assert listed.status_code == 200, listed.text
    assert [row["customer"] for row in listed.json()] == ["Initech"]
    assert entries.status_code == 200, entries.text  # the timeline consumer runs in serve too
    assert [(e["event_type"], e["position"]) for e in entries.json()] == [("EscalationOpened", body["position"])]
    assert code == 0, out.read_text()
    assert re.search(r"Escalation Ledger API on http://127\.0\.0\.1:\d+", out.read_text())


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
