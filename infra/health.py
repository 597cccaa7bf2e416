"""Readiness that tells the truth within seconds, and never makes an HTTP request wait for it.

Each check runs on its own daemon thread, every `interval` seconds, so a check that hangs (a broker
that does not answer) delays neither the others nor the event loop. `/readyz` reads the latest
answers; an answer older than `stale_after` counts as "no answer", so a check that hangs is
reported instead of its last "ok".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

Check = Callable[[], str]  # "ok", or why not


class ReadinessMonitor:
    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        interval: float = 1.0,
        stale_after: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = dict(checks)
        self.interval = interval
        self.stale_after = stale_after
        self._clock = clock
        self._answers: dict[str, tuple[float, str]] = {}
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Idempotent: the app starts it on start-up and, for clients that skip the lifespan, on first use."""
        with self._lock:
            if self._started.is_set():
                return
            self._started.set()
        for name in self.checks:
            threading.Thread(target=self._keep_checking, args=(name,), name=f"ready-{name}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def __call__(self) -> dict[str, str]:
        """The latest answer of every check: never blocks."""
        self.start()
        now = self._clock()
        answers = dict(self._answers)
        report = {}
        for name in self.checks:
            if name not in answers:
                report[name] = "not checked yet"
                continue
            at, answer = answers[name]
            age = now - at
            report[name] = answer if age <= self.stale_after else f"no answer for {age:.0f}s"
        return report

    def wait_until_checked(self, timeout: float) -> bool:
        """True once every check has answered at least once (for start-up and tests)."""
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self._answers) >= set(self.checks):
                return True
            time.sleep(0.05)
        return False

    def _keep_checking(self, name: str) -> None:
        check = self.checks[name]
        while not self._stopping.is_set():
            try:
                answer = check()
            except Exception as error:  # noqa: BLE001 - any failure means not ready; the reason is reported
                answer = f"unavailable: {type(error).__name__}: {error}"
            self._answers[name] = (self._clock(), answer)
            self._stopping.wait(self.interval)
