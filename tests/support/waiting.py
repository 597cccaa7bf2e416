"""Waiting on conditions, never on the clock: a wait that times out says what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 60, interval: float = 0.1) -> None:
    """Poll `condition` until it holds; fail the test naming `what` never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
