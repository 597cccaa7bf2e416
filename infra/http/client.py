"""A client of the HTTP API with the application service's command methods.

The demo tells its stories through this, so they travel the same path a support manager's tools
would: bearer token, If-Match with the version the caller last saw, problem documents on errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx

from domain.errors import (
    EscalationError,
    EscalationNotFoundError,
    IllegalTransitionError,
    InvalidCommandError,
    VersionConflictError,
)
from domain.service import CommandResult
from infra.http.app import COMMANDS

ERRORS: dict[int, type[EscalationError]] = {
    404: EscalationNotFoundError,
    409: IllegalTransitionError,
    412: VersionConflictError,
    422: InvalidCommandError,
}
PATHS = {command.method: command.path for command in COMMANDS}


class ApiCommands:
    """`client.post_update(escalation_id, version, **fields)` and so on, over HTTP."""

    def __init__(self, http: httpx.Client, tokens: dict[str, str]) -> None:
        """`tokens`: each actor's bearer token; the API records the token's name as the actor."""
        self.http = http
        self.tokens = tokens

    def open_escalation(self, *, actor: str, **fields: Any) -> CommandResult:
        return self._result(self.http.post("/escalations", json=_jsonable(fields), headers=self._auth(actor)))

    def _auth(self, actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor]}"}

    def __getattr__(self, method: str) -> Callable[..., CommandResult]:
        if method not in PATHS:
            raise AttributeError(method)

        def send(escalation_id: UUID, expected_version: int | None, *, actor: str, **fields: Any) -> CommandResult:
            headers = self._auth(actor) | ({} if expected_version is None else {"If-Match": f'"{expected_version}"'})
            response = self.http.post(
                f"/escalations/{escalation_id}/{PATHS[method]}", json=_jsonable(fields), headers=headers
            )
            return self._result(response)

        return send

    @staticmethod
    def _result(response: httpx.Response) -> CommandResult:
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text)
            raise ERRORS.get(response.status_code, EscalationError)(detail)
        body = response.json()
        return CommandResult(UUID(body["escalation_id"]), body["version"], body["position"], body.get("created"))


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime | date) else value for key, value in fields.items()}
