"""`escalations` commands as real subprocesses, configured through ESCALATIONS_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    env = {}
    for key, value in settings.model_dump(exclude_none=True).items():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        text = json.dumps(raw) if isinstance(raw, dict | list | tuple) else str(raw)
        env[f"ESCALATIONS_{key.upper()}"] = text
    return env


def escalations_process(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `escalations ARGS...` with these settings, its output appended to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "infra", *args],
        env={**os.environ, **settings_env(settings)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
