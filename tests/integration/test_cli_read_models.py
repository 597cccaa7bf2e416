"""The command line on read models that were never built, and the read models every command names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from domain import commands as c
from infra.bootstrap import build_service
from infra.settings import Settings


def escalations(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        env={**os.environ, **settings.as_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_audit_verify_on_a_store_without_timelines_says_so_and_exits_7(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    build_service(settings).handle(
        c.OpenEscalation(
            customer="Globex",
            region="EMEA",
            account_owner="dana.owner",
            dri_manager="mia.manager",
            source="customer_success",
            severity="high",
            summary="Sign-in fails",
        ),
        actor="mia.manager",
    )

    verified = escalations(settings, "audit", "verify")

    assert verified.returncode == 7, verified.stdout + verified.stderr
    assert "holds no timelines" in verified.stdout
    assert "Traceback" not in verified.stderr


def test_every_read_model_command_names_every_read_model_in_its_help(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    helps = {name: escalations(settings, name, "--help").stdout for name in ("consume", "rebuild", "status")}

    for name in ("consume", "rebuild"):
        assert all(model in helps[name] for model in ("reporting", "timeline", "notifier")), helps[name]
    assert all(model in helps["status"] for model in ("reporting", "timeline", "notifier", "watcher")), helps["status"]
