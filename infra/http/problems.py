"""Errors as RFC 9457 problem documents: each names the problem and the fix."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from domain.errors import (
    EscalationError,
    EscalationNotFoundError,
    IllegalTransitionError,
    InvalidCommandError,
    VersionConflictError,
)

PROBLEM = "application/problem+json"
# What the framework's own refusals (before any endpoint runs) mean, and what to do instead.
FRAMEWORK_FIXES = {
    400: "the body could not be read as JSON (invalid UTF-8, or nested too deeply); send a valid JSON object",
    404: "no such resource; see /openapi.json for the API's paths",
    405: "this path does not take that method; the Allow header lists those it takes",
}
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


async def framework_error(request: Request, error: Exception) -> JSONResponse:
    """The framework's own refusals (unreadable body, unknown path, wrong method) as problem documents."""
    assert isinstance(error, HTTPException)
    phrase = HTTPStatus(error.status_code).phrase
    detail = FRAMEWORK_FIXES.get(error.status_code) or f"{error.detail}"
    response = problem(error.status_code, phrase.lower().replace(" ", "-"), phrase, detail)
    response.headers.update(error.headers or {})
    if error.status_code == 405:
        # The router names only the first route on the path; a path can have one route per method.
        response.headers["Allow"] = ", ".join(sorted(_methods_on(request)))
    return response


def _methods_on(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods
