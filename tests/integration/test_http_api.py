"""The HTTP API, driven over HTTP in-process: commands, concurrency, errors as problem documents, roles."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from domain import commands as c
from domain.service import EscalationService
from infra.bootstrap import build_service
from infra.http.app import OPENING_ROLES, ROLES, ROUTES, create_app
from infra.messaging.envelope import as_recorded
from infra.settings import Settings
from projections.tables import create_schema
from tests.fakes import SteppingClock, project

TOKENS = {
    "m-token": "manager:mia.manager",
    "e-token": "engineer:priya.lead",
    "a-token": "auditor:ada.audit",
    "n-token": "analyst:nat.analyst",
}
TOKEN_OF = {"manager": "m-token", "engineer": "e-token", "auditor": "a-token", "analyst": "n-token"}
NAME_OF = {role: TOKENS[token].split(":")[1] for role, token in TOKEN_OF.items()}
MANAGER = {"Authorization": "Bearer m-token"}
ENGINEER = {"Authorization": "Bearer e-token"}
AUDITOR = {"Authorization": "Bearer a-token"}
OPENING = {
    "customer": "Globex",
    "region": "EMEA",
    "account_owner": "dana.owner",
    "dri_manager": "mia.manager",
    "source": "customer_success",
    "severity": "critical",
    "summary": "Sign-in fails",
}
SCOPE = {
    "exit_criteria": [{"id": "auth", "description": "All users sign in"}],
    "related_tickets": ["ZD-1"],
    "unrelated_tickets": [],
    "agreed_with": "dana.owner",
    "customer_acknowledged_delays": True,
}
UPDATE = {
    "progress": "Reproduced",
    "status": "investigating",
    "current_tasks": [{"description": "Trace", "tickets": ["ZD-1"]}],
    "next_steps": ["Read the proxy config"],
    "next_steps_owner": "priya.lead",
    "blockers": [],
}


@pytest.fixture(params=["sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def service(store_settings: Settings, clock: SteppingClock) -> EscalationService:
    return build_service(store_settings, clock=clock)


@pytest.fixture
def read_model(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    create_schema(engine)
    return engine


@pytest.fixture
async def api(service: EscalationService, read_model: sa.Engine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, read_model, TOKENS, max_body_bytes=8 * 1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger") as client:
        yield client


async def until_ready(api: httpx.AsyncClient, within: float = 10.0) -> httpx.Response:
    """/readyz once its checks (on their own threads) have answered; the last answer if they never do."""
    deadline = asyncio.get_running_loop().time() + within
    ready = await api.get("/readyz")
    for _ in range(int(within / 0.05)):
        if ready.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
        ready = await api.get("/readyz")
    return ready


async def opened(api: httpx.AsyncClient) -> tuple[str, str]:
    response = await api.post("/escalations", json=OPENING, headers=MANAGER)
    assert response.status_code == 201, response.text
    return response.json()["escalation_id"], response.headers["ETag"]


async def command(
    api: httpx.AsyncClient,
    escalation_id: str,
    path: str,
    body: dict[str, Any],
    etag: str,
    headers: dict[str, str] = MANAGER,
) -> httpx.Response:
    return await api.post(f"/escalations/{escalation_id}/{path}", json=body, headers=headers | {"If-Match": etag})


async def test_an_escalation_walks_through_the_api_with_etags(api: httpx.AsyncClient) -> None:
    escalation_id, etag = await opened(api)

    for path, body, headers in [
        ("preparation", {"cs_process_followed": True, "tickets_reviewed": ["ZD-1"]}, MANAGER),
        ("lead", {"engineer": "priya.lead", "engineer_region": "EMEA"}, MANAGER),
        ("scope", SCOPE, MANAGER),
        ("updates", UPDATE, ENGINEER),
        ("uncertainties", {"question": "Is there a proxy?"}, ENGINEER),
    ]:
        response = await command(api, escalation_id, path, body, etag, headers)
        assert response.status_code == 200, response.text
        etag = response.headers["ETag"]

    state = await api.get(f"/escalations/{escalation_id}", headers=AUDITOR)
    assert state.status_code == 200
    assert state.headers["ETag"] == etag == '"6"'
    assert state.json()["phase"] == "active"
    assert state.json()["channel"] == "#a_globex_escalation"
    assert state.json()["uncertainties"]["U1"]["state"] == "open"
    history = await api.get(f"/escalations/{escalation_id}/history", headers=AUDITOR)
    assert [e["type"] for e in history.json()][-1] == "UncertaintyRaised"
    assert history.json()[-1]["actor"] == "priya.lead"  # the actor is the authenticated caller


async def test_a_stale_version_is_412_and_records_nothing(api: httpx.AsyncClient, service: EscalationService) -> None:
    escalation_id, etag = await opened(api)
    await command(api, escalation_id, "preparation", {"cs_process_followed": True, "tickets_reviewed": []}, etag)

    response = await command(api, escalation_id, "lead", {"engineer": "priya", "engineer_region": "EMEA"}, etag)

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 412
    assert "read it again and retry" in problem["detail"]
    assert len(service.history(UUID(escalation_id))) == 2


async def test_two_concurrent_commands_with_the_same_if_match_one_wins(
    api: httpx.AsyncClient, service: EscalationService
) -> None:
    escalation_id, etag = await opened(api)
    body = {"cs_process_followed": True, "tickets_reviewed": []}

    responses = await asyncio.gather(
        command(api, escalation_id, "preparation", body, etag), command(api, escalation_id, "preparation", body, etag)
    )

    assert sorted(r.status_code for r in responses) == [200, 412]
    assert len(service.history(UUID(escalation_id))) == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "detail"),
    [
        ("updates", UPDATE, 409, "illegal-transition", "define scope first"),
        (
            "lead",
            {"engineer": "kenji", "engineer_region": "APAC"},
            409,
            "illegal-transition",
            "complete preparation first",
        ),
        (
            "preparation",
            {"cs_process_followed": "maybe", "tickets_reviewed": []},
            422,
            "invalid-request",
            "cs_process_followed",
        ),
        ("preparation", {"tickets_reviewed": []}, 422, "invalid-request", "cs_process_followed: Field required"),
        (
            "preparation",
            {"cs_process_followed": True, "tickets_reviewed": [], "extra": 1},
            422,
            "invalid-request",
            "extra",
        ),
    ],
)
async def test_errors_are_problem_documents_that_name_the_fix(
    api: httpx.AsyncClient,
    service: EscalationService,
    path: str,
    body: dict[str, Any],
    status: int,
    kind: str,
    detail: str,
) -> None:
    escalation_id, etag = await opened(api)

    response = await command(api, escalation_id, path, body, etag)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(kind)
    assert detail in response.json()["detail"]
    assert len(service.history(UUID(escalation_id))) == 1


async def test_an_unknown_escalation_is_404(api: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    response = await api.get(f"/escalations/{missing}", headers=AUDITOR)
    command_response = await command(
        api, missing, "preparation", {"cs_process_followed": True, "tickets_reviewed": []}, '"1"'
    )

    assert response.status_code == 404
    assert command_response.status_code == 404
    assert "no escalation has id" in response.json()["detail"]


async def test_a_command_without_if_match_is_428(api: httpx.AsyncClient) -> None:
    escalation_id, _ = await opened(api)

    response = await api.post(
        f"/escalations/{escalation_id}/preparation",
        headers=MANAGER,
        json={"cs_process_followed": True, "tickets_reviewed": []},
    )

    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]


async def test_a_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/escalations", headers=MANAGER, json=OPENING | {"summary": "x" * 9000})

    assert response.status_code == 413
    assert "more than the 8192 allowed" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "method", "path", "status"),
    [
        ({}, "post", "/escalations", 401),
        ({"Authorization": "Bearer wrong"}, "get", "/reports/active", 401),
        (ENGINEER, "post", "/escalations", 403),
        (AUDITOR, "post", "/escalations", 403),
        ({"Authorization": "Bearer n-token"}, "post", "/escalations", 403),
        (AUDITOR, "get", "/reports/active", 200),
        ({"Authorization": "Bearer n-token"}, "get", "/escalations", 200),
        (ENGINEER, "get", "/reports/workload", 200),
    ],
)
async def test_each_role_can_do_what_it_may_and_nothing_more(
    api: httpx.AsyncClient, headers: dict[str, str], method: str, path: str, status: int
) -> None:
    response = await api.request(method.upper(), path, headers=headers, json=OPENING if method == "post" else None)

    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_engineer_posts_updates_but_cannot_close(api: httpx.AsyncClient) -> None:
    escalation_id, etag = await opened(api)

    response = await command(
        api,
        escalation_id,
        "closing",
        {
            "outcome": "positive",
            "exit_criteria_met": True,
            "summary": "s",
            "closing_checklist_done": True,
            "customer_comfortable": True,
            "agreed_with_account_owner": True,
            "override_reason": "x",
        },
        etag,
        ENGINEER,
    )

    assert response.status_code == 403
    assert "priya.lead is engineer" in response.json()["detail"]


async def test_health_readiness_metrics_and_the_openapi_document(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await until_ready(api)
    assert ready.status_code == 200
    assert ready.json()["checks"]["event_store"] == "ok"
    assert "escalations_http_requests" in (await api.get("/metrics")).text
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert "/escalations/{escalation_id}/scope" in paths
    assert "/escalations/{escalation_id}/updates" in paths


async def test_read_your_writes_waits_and_then_says_the_read_model_is_behind(api: httpx.AsyncClient) -> None:
    response = await api.get("/escalations", params={"after": 5, "timeout": 0.2}, headers=AUDITOR)

    assert response.status_code == 503
    assert "has not reached position 5" in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"


async def test_the_timeline_and_retrospective_come_from_the_read_models_once_they_caught_up(
    api: httpx.AsyncClient, service: EscalationService, read_model: sa.Engine
) -> None:
    escalation_id, _ = await opened(api)
    quick = {"timeout": 0.1}

    behind = await api.get(f"/escalations/{escalation_id}/timeline", params=quick, headers=AUDITOR)
    retro_behind = await api.get(f"/escalations/{escalation_id}/retrospective", params=quick, headers=AUDITOR)
    (event,) = service.history(UUID(escalation_id))
    project(read_model, [as_recorded(event, 41)])
    entries = (await api.get(f"/escalations/{escalation_id}/timeline", headers=AUDITOR)).json()
    markdown = await api.get(f"/escalations/{escalation_id}/retrospective", headers=AUDITOR)
    as_json = await api.get(f"/escalations/{escalation_id}/retrospective", params={"format": "json"}, headers=AUDITOR)

    assert (behind.status_code, behind.headers["Retry-After"]) == (503, "1")
    assert "holds 0 of this escalation's 1 events" in behind.json()["detail"]
    assert retro_behind.status_code == 503
    assert [e["summary"] for e in entries] == ["Escalation opened for Globex (EMEA, critical): Sign-in fails"]
    assert entries[0]["position"] == 41  # the stored entry's real position in the log
    assert len(entries[0]["hash"]) == 64
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Retrospective: Globex account escalation")
    assert as_json.json()["customer"] == "Globex"


async def test_a_streamed_body_over_the_limit_is_413_too(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 1024  # whitespace is valid JSON padding, but far too much of it

    response = await api.post("/escalations", headers=MANAGER | {"Content-Type": "application/json"}, content=chunks())

    assert response.status_code == 413
    assert "more than the 8192 allowed" in response.json()["detail"]


# A well-formed body for each command, so a role that may post it gets past authorisation and
# validation to the domain (which may still refuse it for the escalation's state: 409 or 422).
BODIES: dict[type[c.Command], dict[str, Any]] = {
    c.OpenEscalation: OPENING,
    c.CompletePreparation: {"cs_process_followed": True, "tickets_reviewed": ["ZD-1"]},
    c.AssignLeadEngineer: {"engineer": "priya.lead", "engineer_region": "EMEA"},
    c.AssignProductDri: {"product_dri": "pat.product"},
    c.DefineScope: SCOPE,
    c.MeetExitCriterion: {"criterion_id": "auth", "evidence": "all users sign in"},
    c.RaiseUncertainty: {"question": "Is there a proxy?"},
    c.DefineRisk: {
        "uncertainty_id": "U1",
        "description": "the proxy drops binds",
        "likelihood": "low",
        "impact": "high",
        "mitigation": "bypass it",
    },
    c.AnswerUncertainty: {"uncertainty_id": "U1", "answer": "yes"},
    c.PostUpdate: UPDATE,
    c.MarkStalled: {"reason": "no progress", "noticed_by": "mia.manager"},
    c.ResumeProgress: {"note": "unblocked"},
    c.EscalateToSpecialistTeam: {"team": "infra", "reference": "INFRA-1", "reason": "stalled"},
    c.RaiseEmergency: {"ticket": "ZD-9", "out_of_hours": True, "handled_by": "kenji"},
    c.ReviewEmergencyWork: {"emergency_id": "E1", "notes": "reviewed"},
    c.AgreeSyncCadence: {"cadence": "daily", "agreed_with": "dana.owner"},
    c.StartMonitoring: {"period_days": 3, "agreed_with": "dana.owner"},
    c.PauseUpdates: {"resume_on": date(2026, 12, 1).isoformat(), "reason": "stable"},
    c.InterruptMonitoring: {"reason": "sign-in fails again"},
    c.CloseEscalation: {
        "outcome": "positive",
        "exit_criteria_met": True,
        "summary": "s",
        "closing_checklist_done": True,
        "customer_comfortable": True,
        "agreed_with_account_owner": True,
        "override_reason": "customer withdrew",
    },
    c.OpenRetrospective: {"retro_reference": "retro#1"},
    c.RecordCorrection: {"corrects_version": 1, "reason": "typo", "correction": "Sign-in fails for all"},
    c.ChangeSeverity: {"severity": "high", "reason": "a workaround holds", "product_dri": "pat.product"},
    c.HandOverRole: {"role": "dri_manager", "successor": "sam.manager", "reason": "on leave"},
    c.AddHelper: {"engineer": "kenji", "engineer_region": "APAC", "kind": "helper", "reason": "follow the sun"},
    c.RemoveHelper: {"engineer": "kenji", "reason": "no longer needed"},
    c.RecordRisk: {"description": "the proxy drops binds", "likelihood": "low", "impact": "high", "mitigation": "m"},
    c.SettleRisk: {"risk_id": "R1", "outcome": "retired", "note": "gone"},
    c.AddFollowUpAction: {"what": "document the proxy", "owner": "priya.lead", "due_on": "2026-12-01"},
    c.SettleFollowUpAction: {"action_id": "A1", "outcome": "done", "note": "documented"},
    c.CompleteRetrospective: {"completed_on": "2026-11-02"},
}
# Every command's HTTP path and the roles that may post it, straight from the API's route table.
ROLE_TABLE: dict[str, tuple[str, frozenset[str]]] = {
    "OpenEscalation": ("/escalations", OPENING_ROLES),
    **{route.command.__name__: (f"/escalations/{{id}}/{route.path}", route.roles) for route in ROUTES},
}
COMMANDS = [c.OpenEscalation, *(route.command for route in ROUTES)]


def test_every_command_has_a_body_for_the_role_matrix() -> None:
    missing = [command.__name__ for command in COMMANDS if command not in BODIES]

    assert not missing, f"add a well-formed body to BODIES for {missing}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("command_type", COMMANDS, ids=lambda command: command.__name__)
async def test_each_role_may_post_exactly_the_commands_the_role_table_gives_it(
    api: httpx.AsyncClient, service: EscalationService, command_type: type[c.Command], role: str
) -> None:
    escalation_id, etag = await opened(api)
    for setup_path, body in [("preparation", BODIES[c.CompletePreparation]), ("lead", BODIES[c.AssignLeadEngineer])]:
        etag = (await command(api, escalation_id, setup_path, body, etag)).headers["ETag"]  # the engineer is on it
    path, allowed = ROLE_TABLE[command_type.__name__]
    headers = {"Authorization": f"Bearer {TOKEN_OF[role]}", "If-Match": etag}

    response = await api.post(path.replace("{id}", escalation_id), json=BODIES[command_type], headers=headers)

    if role in allowed:
        assert response.status_code not in (401, 403), f"{role} may post {command_type.__name__}: {response.text}"
    else:
        assert response.status_code == 403, f"{role} may not post {command_type.__name__}: {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:escalation-ledger:problem:forbidden"
        assert problem["detail"] == f"{NAME_OF[role]} is {role}; this needs: {', '.join(sorted(allowed))}"
        assert len(service.history(UUID(escalation_id))) == 3


def test_the_readme_role_table_is_the_api_route_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `POST (\S+)` \| ([^|]+) \|$", readme, flags=re.MULTILINE)

    documented = {name: (path, frozenset(role.strip() for role in roles.split(","))) for name, path, roles in rows}

    assert len(rows) == len(documented), "the README's role table lists a command twice"
    assert documented == ROLE_TABLE, "the README's role table differs from ROUTES in infra/http/app.py; update it"
