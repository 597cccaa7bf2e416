"""`escalations` commands as real subprocesses, configured through ESCALATIONS_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.settings import Settings


def escalations_process(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `escalations ARGS...` with these settings, its output appended to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "infra", *args],
        env={**os.environ, **settings.as_env()},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def escalations_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `escalations ARGS...` to the end with these settings; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
