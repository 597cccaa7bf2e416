"""The OpenAPI document as the API behaves: every status a route returns, as a problem document.

FastAPI documents what it can see (bodies, parameters, the bearer scheme); what happens in our
handlers and middleware (401/403, 404, 409, 412, 413, 428, 503, the framework's own 400) it cannot.
This adds it, once, from the same tables the handlers use, so a client generated from the document
(and the schema-based fuzzer in the tests) meets no status it was not told about.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from infra.http.problems import PROBLEM

# A quoted version (weak or strong), or `*` for whatever version is current.
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"[0-9]+")\s*$'

REASONS = {
    400: "The body could not be read (invalid UTF-8, or JSON nested too deeply)",
    401: "No valid bearer token",
    403: "The token's role may not do this (or an engineer not on this escalation)",
    404: "No such escalation, report or resource",
    409: "The escalation's state does not allow this command now",
    412: "If-Match names a version that is no longer current",
    413: "The body is larger than the API accepts",
    422: "The request is not valid: a field, a parameter or a rule of the handbook",
    428: "If-Match is missing",
    503: "Not available now (the read model is behind, or too many readers wait); retry after Retry-After",
}
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:escalation-ledger:problem:<kind>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what is wrong and what to do instead"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
SECURED = {401, 403}
WITH_BODY = {400, 413, 422}
ON_ESCALATION = {404, 409, 412, 422, 428, 503}
WAITING = {503}


def document(app: FastAPI, command_paths: Iterable[str]) -> dict[str, Any]:
    """The app's OpenAPI document, completed (built once, then cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    commands = {f"/escalations/{{escalation_id}}/{path}" for path in command_paths}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = _statuses(path, method, operation, commands)
            _document_errors(operation, statuses)
            if path in commands:
                _require_if_match(operation)
    app.openapi_schema = schema
    return schema


def _statuses(path: str, method: str, operation: dict[str, Any], commands: set[str]) -> set[int]:
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= SECURED | {413}
    if method == "post":
        statuses |= WITH_BODY
    if operation.get("parameters"):
        statuses.add(422)
    if "{" in path:  # a resource named in the path may not exist
        statuses.add(404)
    if path in commands:
        statuses |= ON_ESCALATION
    if path == "/escalations" and method == "post":
        statuses.add(409)  # an open escalation for this customer already exists
    if any(p["name"] in {"after", "timeout"} for p in operation.get("parameters", [])):
        statuses |= WAITING
    return statuses


def _document_errors(operation: dict[str, Any], statuses: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 503:
            responses[str(status)]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait before retrying"}
            }


def _require_if_match(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == "if-match":
            parameter["required"] = True
            parameter["description"] = "the escalation's ETag (from GET or the last command), or * for any version"
            parameter["schema"] = {"type": "string", "pattern": IF_MATCH_PATTERN}
