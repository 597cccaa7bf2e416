"""The API under readers that wait and bodies the framework refuses: no reader stalls a command, every error is a problem."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from infra.bootstrap import build_service
from infra.http.app import create_app
from infra.messaging.schemas import bundled_asyncapi
from infra.settings import Settings
from projections.tables import create_schema
from tests.integration.test_http_api import MANAGER, OPENING, TOKENS

PROBLEM = "application/problem+json"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    read_model = sa.create_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    create_schema(read_model)
    return create_app(build_service(Settings(data_dir=tmp_path)), read_model, TOKENS, max_waiters=150)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger", timeout=30) as c:
        yield c


async def until(condition: object, what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_hundred_waiting_readers_do_not_slow_a_command_beyond_200_ms(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await api.post("/escalations", json=OPENING | {"customer": "Warm-up"}, headers=MANAGER)
    readers = [
        asyncio.create_task(api.get("/escalations", params={"after": 10**9, "timeout": 30}, headers=MANAGER))
        for _ in range(100)
    ]
    await until(lambda: app.state.waiters.waiting == 100, "100 readers waiting for read-your-writes")

    timings = []
    for customer in ("Globex", "Initech", "Umbrella"):
        began = time.perf_counter()
        response = await api.post("/escalations", json=OPENING | {"customer": customer}, headers=MANAGER)
        timings.append(time.perf_counter() - began)
        assert response.status_code == 201, response.text
        assert not any(reader.done() for reader in readers), "a command waited until readers gave up"

    assert sorted(timings)[1] < 0.2, f"commands took {timings} with 100 readers waiting"
    for reader in readers:
        reader.cancel()


async def test_readers_past_the_bound_are_told_to_retry_later(app: FastAPI, api: httpx.AsyncClient) -> None:
    waiting = [
        asyncio.create_task(api.get("/escalations", params={"after": 10**9, "timeout": 5}, headers=MANAGER))
        for _ in range(150)
    ]
    await until(lambda: app.state.waiters.waiting == 150, "150 readers waiting")

    refused = await api.get("/escalations", params={"after": 10**9, "timeout": 5}, headers=MANAGER)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["type"].endswith("too-many-waiting-readers")
    for reader in waiting:
        reader.cancel()


@pytest.mark.parametrize(
    ("content", "status"),
    [(b'{"customer": "\xff\xfe"}', 400), (b"[" * 5000 + b"]" * 5000, 400), (b"{not json", 422)],
    ids=["invalid-utf8", "nested-5000-deep", "not-json"],
)
async def test_bodies_the_framework_refuses_get_problem_documents(
    api: httpx.AsyncClient, content: bytes, status: int
) -> None:
    response = await api.post("/escalations", content=content, headers=MANAGER | {"Content-Type": "application/json"})

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == response.status_code


async def test_unknown_paths_and_methods_get_problem_documents_with_allow(api: httpx.AsyncClient) -> None:
    missing = await api.get("/nowhere")
    wrong = await api.delete("/escalations", headers=MANAGER)

    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    assert (wrong.status_code, wrong.headers["content-type"]) == (405, PROBLEM)
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_the_bearer_scheme_is_case_insensitive_and_required(api: httpx.AsyncClient) -> None:
    lowercase = await api.get("/escalations", headers={"Authorization": "bearer m-token"})
    no_scheme = await api.get("/escalations", headers={"Authorization": "m-token"})

    assert lowercase.status_code == 200
    assert no_scheme.status_code == 401
    assert no_scheme.headers["content-type"] == PROBLEM


async def test_if_match_star_acts_on_whatever_version_is_current(api: httpx.AsyncClient) -> None:
    opened = (await api.post("/escalations", json=OPENING, headers=MANAGER)).json()

    response = await api.post(
        f"/escalations/{opened['escalation_id']}/preparation",
        json={"cs_process_followed": True, "tickets_reviewed": ["ZD-1"], "notes": "checked"},
        headers=MANAGER | {"If-Match": "*"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'


async def test_the_openapi_document_declares_security_statuses_problems_enums_and_if_match(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    scope = document["paths"]["/escalations/{escalation_id}/scope"]["post"]
    if_match = next(p for p in scope["parameters"] if p["name"].lower() == "if-match")
    opening = document["components"]["schemas"]["OpenEscalation"]["properties"]

    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from ESCALATIONS_API_TOKENS",
    }
    assert {"400", "401", "403", "404", "409", "412", "413", "422", "428", "503"} <= set(scope["responses"])
    assert list(scope["responses"]["428"]["content"]) == [PROBLEM]
    assert if_match["required"] is True
    assert document["components"]["schemas"]["Severity"]["enum"] == ["critical", "high", "medium", "low"]
    assert opening["region"] == {"$ref": "#/components/schemas/Region"}


async def test_the_api_serves_the_bundled_asyncapi_document(api: httpx.AsyncClient) -> None:
    served = await api.get("/asyncapi.json")

    assert served.status_code == 200
    assert served.json() == bundled_asyncapi()
