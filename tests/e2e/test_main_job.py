"""The main job, as a new user runs it: `make run` on the embedded default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tansu
ROOT = Path(__file__).resolve().parents[2]


def test_make_run_walks_the_ldap_proxy_story_through_the_api_and_prints_reports_and_retro() -> None:
    result = subprocess.run(
        ["make", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # As a user types it: not as a sub-make of `make test` (which would add directory lines).
        env={k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        | {"PYTHON": sys.executable},
    )

    assert result.returncode == 0, result.stderr
    out, notifications = result.stdout.split("The notifier's messages", 1)
    assert "EscalationOpened" in out
    assert "EscalatedToSpecialistTeam" in out
    assert "RetrospectiveOpened" in out
    assert "#a_globex_escalation" in out
    assert "U1: answered, U2: risk" in out
    # 34 of the story, 6 of each quiet escalation, and what the ledger noticed (which depends on today's weekday).
    assert re.search(r"Published (\d+) events to topic escalations.events.v1", out)
    noticed = out.split("What the ledger noticed by itself (the watcher):")[1].split("Update compliance")[0]
    assert "Hooli: Update overdue since" in noticed
    assert "Hooli: Progress stalled (noticed by escalation-ledger)" in noticed
    assert "Update compliance (the reporting read model)" in out
    active = out.split("Active escalations (the reporting read model)")[1]
    assert "Initech" in active
    assert "Umbrella" in active
    assert "Globex" not in active.split("# Retrospective")[0]  # closed after its retrospective
    retro = out.split("# Retrospective: Globex account escalation")[1]
    assert "answered after 49.0 hours: An LDAP proxy, misconfigured after an upgrade" in retro
    assert out.rstrip().endswith("## Follow-up actions\n\n- [ ]\n\nRetrospective not completed yet.")
    assert "Traceback" not in result.stderr
    # What Slack would have received, from a local stand-in: each step in the channel, and the digest.
    assert "#a_globex_escalation: Daily update #1: Globex" in notifications
    assert "*Blockers*" in notifications
    assert "#a_globex_escalation: Escalated further to a specialist team: Globex" in notifications
    assert "#a_globex_escalation: Retrospective opened: Globex" in notifications
    assert "#support-managers: Active escalations" in notifications
