"""The HTTP API alone, without relay or consumers, for the benchmark's HTTP stage.

python -m bench.api_server PORT [--no-domain-work] [--workers N]     (settings from ESCALATIONS_* variables)

With `--no-domain-work` the very same app (middleware, bearer auth, If-Match, JSON body validation
into the command, the response and its ETag) answers every command without handling it: the
HTTP stage's baseline, so that what the API costs beyond the stack it runs on is measured alone.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, cast
from uuid import UUID, uuid4

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from domain import commands as c
from domain.service import EscalationService
from infra.bootstrap import build_service, read_model_engine
from infra.http.app import create_app
from infra.settings import Settings


class NoDomainWork:
    """Stands in for the application service: every command is accepted at once, nothing is read or stored."""

    def __init__(self, service: EscalationService) -> None:
        self._service = service  # readiness and the pages still reach the real one

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def handle(self, command: c.Command, *, actor: str, expected_version: int | None = None) -> c.CommandResult:
        del actor
        escalation_id = getattr(command, "escalation_id", None) or uuid4()
        return c.CommandResult(escalation_id, (expected_version or 0) + 1, None, None)

    def engineers_on(self, escalation_id: UUID, version: int | None = None) -> frozenset[str]:
        del escalation_id, version
        return EVERYONE


class _Everyone(frozenset[str]):
    def __contains__(self, item: object) -> bool:
        return True


EVERYONE = _Everyone()


def app_from_env() -> FastAPI:
    """The app as configured by ESCALATIONS_* (and BENCH_NO_DOMAIN_WORK): one per uvicorn worker."""
    settings = Settings()
    service = build_service(settings)
    if os.environ.get("BENCH_NO_DOMAIN_WORK"):
        service = cast("EscalationService", NoDomainWork(service))
    return create_app(service, read_model_engine(settings), settings.api_tokens)


def main() -> None:
    flags = sys.argv[2:]
    if "--no-domain-work" in flags:
        os.environ["BENCH_NO_DOMAIN_WORK"] = "1"
    workers = int(flags[flags.index("--workers") + 1]) if "--workers" in flags else 1
    port = int(sys.argv[1])
    if workers == 1:
        uvicorn.run(app_from_env(), host="127.0.0.1", port=port, log_level="warning")
        return
    config = uvicorn.Config(
        "bench.api_server:app_from_env", factory=True, workers=workers, host="127.0.0.1", port=port, log_level="warning"
    )
    # uvicorn's own shared socket has protocol 0, so asyncio never sets TCP_NODELAY on what it
    # accepts, and every response written in two parts waits out a delayed ACK (about 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
