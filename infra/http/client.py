"""A client of the HTTP API that handles commands the way the application service does.

The demo tells its stories through this, so they travel the same path a support manager's tools
would: bearer token, If-Match with the version the caller last saw, problem documents on errors.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx

from domain.commands import Command, CommandResult, EscalationCommand
from domain.errors import (
    EscalationError,
    EscalationNotFoundError,
    IllegalTransitionError,
    InvalidCommandError,
    VersionConflictError,
)
from infra.http.app import PATHS

ERRORS: dict[int, type[EscalationError]] = {
    404: EscalationNotFoundError,
    409: IllegalTransitionError,
    412: VersionConflictError,
    422: InvalidCommandError,
}


class ApiCommands:
    """`client.handle(PostUpdate(...), actor=..., expected_version=...)`, over HTTP."""

    def __init__(self, http: httpx.Client, tokens: dict[str, str]) -> None:
        """`tokens`: each actor's bearer token; the API records the token's name as the actor."""
        self.http = http
        self.tokens = tokens

    def handle(self, command: Command, *, actor: str, expected_version: int | None = None) -> CommandResult:
        headers = {"Authorization": f"Bearer {self.tokens[actor]}"}
        if isinstance(command, EscalationCommand):
            path = f"/escalations/{command.escalation_id}/{PATHS[type(command)]}"
            if expected_version is not None:
                headers["If-Match"] = f'"{expected_version}"'
        else:
            path = "/escalations"
        return self._result(self.http.post(path, json=body_of(command), headers=headers))

    @staticmethod
    def _result(response: httpx.Response) -> CommandResult:
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text)
            raise ERRORS.get(response.status_code, EscalationError)(detail)
        body = response.json()
        return CommandResult(UUID(body["escalation_id"]), body["version"], body["position"], body.get("created"))


def body_of(command: Command) -> dict[str, Any]:
    """The command's JSON body: its facts and when it happened (the escalation id travels in the path)."""
    return {
        field.name: _jsonable(getattr(command, field.name))
        for field in fields(command)
        if field.name != "escalation_id" and getattr(command, field.name) is not None
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value
