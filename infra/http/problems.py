"""Errors as RFC 9457 problem documents: each names the problem and the fix."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from domain.errors import (
    EscalationError,
    EscalationNotFoundError,
    IllegalTransitionError,
    InvalidCommandError,
    VersionConflictError,
)

PROBLEM = "application/problem+json"
STATUS_BY_ERROR: dict[type[EscalationError], tuple[int, str]] = {
    EscalationNotFoundError: (404, "escalation-not-found"),
    VersionConflictError: (412, "stale-version"),
    IllegalTransitionError: (409, "illegal-transition"),
    InvalidCommandError: (422, "invalid-command"),
}


def problem(status: int, kind: str, title: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": f"urn:escalation-ledger:problem:{kind}", "title": title, "status": status, "detail": detail}
    return JSONResponse(body | extra, status_code=status, media_type=PROBLEM)


async def domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EscalationError)
    status, kind = next(
        (found for cls, found in STATUS_BY_ERROR.items() if isinstance(error, cls)), (422, "invalid-command")
    )
    return problem(status, kind, kind.replace("-", " ").capitalize(), str(error))


async def validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in e["loc"] if part != "body"), "problem": e["msg"]}
        for e in error.errors()
    ]
    detail = "; ".join(f"{e['field'] or 'body'}: {e['problem']}" for e in errors)
    return problem(
        422, "invalid-request", "Invalid request", f"{detail}; fix the request body and retry", errors=errors
    )
