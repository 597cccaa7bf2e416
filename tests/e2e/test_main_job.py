"""The main job, as a new user runs it: `escalations demo` on the embedded default."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.tansu


def test_the_demo_walks_the_ldap_proxy_story_and_publishes_it_to_the_embedded_broker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra", "demo"], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "EscalationOpened" in out
    assert "EscalatedToSpecialistTeam" in out
    assert "RetrospectiveOpened" in out
    assert "#a_globex_escalation" in out
    assert "U1: answered, U2: risk" in out
    assert "Published 34 events to topic escalations.events.v1" in out
    assert "Daily-update compliance (the reporting read model)" in out
    active = out.split("Active escalations (the reporting read model)")[1]
    assert "Initech" in active
    assert "Umbrella" in active
    assert "Globex" not in active.split("# Retrospective")[0]  # closed after its retrospective
    retro = out.split("# Retrospective: Globex account escalation")[1]
    assert "answered after 49.0 hours: An LDAP proxy, misconfigured after an upgrade" in retro
    assert out.rstrip().endswith("## Follow-up actions\n\n- [ ]")
    assert "Traceback" not in result.stderr
