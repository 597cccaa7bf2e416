"""Test-only crash points: a process that kills itself where a real crash would hurt most.

Off unless `ESCALATIONS_FAULT_POINT` names a point; production never sets it. The relay and the
consumer runner call `fault(point)` at each named point; the hook built here answers by SIGKILLing
its own process on the `ESCALATIONS_FAULT_AFTER`-th pass through the chosen point. SIGKILL, not an
exception: no `finally`, no producer flush, no transaction rollback by us, exactly like `kill -9`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Literal

FaultPoint = Literal[
    "relay.after_produce_before_flush",
    "relay.after_flush_before_checkpoint",
    "consumer.after_apply_before_commit",
    "consumer.between_batches",
]
Fault = Callable[[str], None]


def no_fault(_point: str) -> None:
    """The production hook: every point passes."""


def fault_at(point: FaultPoint | None, after: int = 1) -> Fault:
    """A hook that kills this process on the `after`-th pass through `point`; `no_fault` when None."""
    if point is None:
        return no_fault
    passes = 0

    def fault(reached: str) -> None:
        nonlocal passes
        if reached != point:
            return
        passes += 1
        if passes >= after:
            # Written straight to stderr, so a test's log shows where the process died.
            sys.stderr.write(f"fault: killing process {os.getpid()} at {point} (pass {passes})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return fault
