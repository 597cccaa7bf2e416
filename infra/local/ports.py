"""Small helpers shared by the launchers of local servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `ready` until it holds; a clear TimeoutError names what never became ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(interval)
    msg = f"{what} was not ready after {timeout:.0f}s"
    raise TimeoutError(msg)
