"""`serve` keeps its parts running: a part that fails or ends is restarted until the server stops."""

from __future__ import annotations

import threading

from infra.cli.serve import supervised


def test_a_failing_part_is_restarted_until_the_server_stops() -> None:
    stopping = threading.Event()
    calls: list[int] = []

    def part() -> None:
        calls.append(1)
        if len(calls) < 3:
            msg = "the broker went away"
            raise RuntimeError(msg)
        stopping.set()  # the third run lasts until the server stops

    restarts = supervised("relay", part, stopping, backoff=0.01)

    assert len(calls) == 3
    assert restarts == 2


def test_a_stopped_server_starts_nothing() -> None:
    stopping = threading.Event()
    stopping.set()

    assert supervised("relay", lambda: None, stopping) == 0
