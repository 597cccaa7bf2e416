"""The dashboard's pages over HTTP in-process: sign-in, session cookie, CSRF, CSP, roles, assets, live stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from domain import commands as c
from infra.bootstrap import build_service
from infra.http.app import create_app
from infra.http.pages import routes
from infra.local.stories import ldap_proxy_story
from infra.settings import Settings
from projections.reports import REPORTS
from projections.tables import create_schema
from tests.integration.test_http_api import OPENING

TOKENS = {"m-token": "manager:mia.manager", "n-token": "analyst:nat.analyst"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    read_model = sa.create_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    create_schema(read_model)
    app = create_app(build_service(Settings(data_dir=tmp_path)), read_model, TOKENS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger") as client:
        yield client


async def signed_in(site: httpx.AsyncClient, token: str, next_page: str = "/") -> httpx.Response:
    form = await site.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce, form.text
    return await site.post("/signin", data={"token": token, "nonce": nonce[1], "next": next_page})


async def test_a_page_without_a_session_sends_to_sign_in_and_back(site: httpx.AsyncClient) -> None:
    response = await site.get("/team")

    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fteam"


async def test_signing_in_sets_an_httponly_strict_session_cookie_without_the_token(site: httpx.AsyncClient) -> None:
    response = await signed_in(site, "m-token", "/team")

    assert response.status_code == 303
    assert response.headers["location"] == "/team"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("ledger_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "m-token" not in cookie
    assert (await site.get("/team")).status_code == 200


async def test_a_wrong_token_or_a_form_from_elsewhere_does_not_sign_in(site: httpx.AsyncClient) -> None:
    wrong = await signed_in(site, "not-a-token")
    forged = await site.post("/signin", data={"token": "m-token", "nonce": "guessed", "next": "/"})

    assert wrong.status_code == 401
    assert "token is not one of this site" in wrong.text
    assert forged.status_code == 401
    assert "ledger_session" not in forged.headers.get("set-cookie", "")


async def test_sign_in_never_redirects_to_another_site(site: httpx.AsyncClient) -> None:
    response = await signed_in(site, "m-token", "//evil.example/")

    assert response.headers["location"] == "/"


async def test_sign_out_needs_the_sessions_csrf_token(site: httpx.AsyncClient) -> None:
    await signed_in(site, "m-token")
    page = await site.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf

    refused = await site.post("/signout", data={"csrf": "forged"})
    still_in = await site.get("/")
    signed_out = await site.post("/signout", data={"csrf": csrf[1]})
    after = await site.get("/")

    assert refused.status_code == 403
    assert still_in.status_code == 200
    assert signed_out.status_code == 303
    assert after.status_code == 303


async def test_pages_carry_a_csp_without_inline_script_and_load_nothing_from_elsewhere(
    site: httpx.AsyncClient,
) -> None:
    await signed_in(site, "m-token")

    for path in ("/", "/team", "/docs", "/signin"):
        response = await site.get(path)
        csp = response.headers["content-security-policy"]
        script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
        assert script_src.strip() == "script-src 'self'", path
        assert not re.search(r'(src|href)="(https?:)?//', response.text), f"{path} loads from another site"
    assert (await site.get("/assets/swagger-ui/swagger-ui-bundle.js")).status_code == 200
    assert (await site.get("/assets/live.js")).status_code == 200


async def test_an_analyst_sees_no_commands_a_manager_sees_the_managers(site: httpx.AsyncClient) -> None:
    opened = await site.post("/escalations", json=OPENING, headers={"Authorization": "Bearer m-token"})
    page = f"/e/{opened.json()['escalation_id']}"

    await signed_in(site, "n-token")
    as_analyst = await site.get(page)
    site.cookies.clear()
    await signed_in(site, "m-token")
    as_manager = await site.get(page)

    assert as_analyst.status_code == 200
    assert "svg" in as_analyst.text
    assert "Commands your role may post" not in as_analyst.text
    assert 'href="/docs"' not in as_analyst.text
    assert "StartMonitoring" in as_manager.text


async def test_the_next_update_due_and_how_far_overdue_show_and_missing_ones_show_nothing(
    site: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {
        "escalation_id": "e1",
        "customer": "Initech",
        "region": "AMER",
        "severity": "high",
        "status": "active",
        "lead_engineer": "ana.lead",
        "dri_manager": "mia",
        "days_open": 2,
        "exit_criteria": "1/3",
        "stalled": False,
    }
    rows = [
        base,
        {
            **base,
            "escalation_id": "e2",
            "customer": "Hooli",
            "next_update_due": "2026-05-04T17:00:00+00:00",
            "overdue_by_working_days": 2,
        },
    ]
    monkeypatch.setitem(REPORTS, "active", lambda _conn, _now: rows)
    await signed_in(site, "m-token")

    everything = await site.get("/")
    overdue_only = await site.get("/", params={"overdue": "1"})

    assert "2026-05-04 17:00 UTC" in everything.text
    assert everything.text.count("⚠ overdue by 2 working days") == 1
    assert '<progress max="3" value="1"' in everything.text
    assert "Hooli" in overdue_only.text
    assert "Initech" not in overdue_only.text


async def test_the_live_stream_sends_the_read_models_position(
    site: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "LIVE_SECONDS", 0.2)
    await signed_in(site, "m-token")

    response = await site.get("/live")

    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: position\ndata: 0\n\n" in response.text


async def test_the_escalation_page_lists_the_retros_follow_up_actions_and_marks_the_overdue_one(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    service = build_service(Settings(data_dir=tmp_path))
    escalation_id = ldap_proxy_story(service, now - timedelta(days=20))
    for what, due in (("Pin the proxy config", now.date() - timedelta(days=2)), ("Alert on proxy changes", now.date())):
        service.handle(
            c.AddFollowUpAction(
                escalation_id=escalation_id,
                what=what,
                owner="priya.lead",
                due_on=due,
                ticket="ZD-77",
                occurred_at=now - timedelta(days=5),
            ),
            actor="mia.manager",
        )
    read_model = sa.create_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    create_schema(read_model)
    app = create_app(service, read_model, TOKENS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger") as site:
        await signed_in(site, "m-token")

        page = await site.get(f"/e/{escalation_id}")

    rows = re.findall(r'<tr class="action-open( overdue)?"><td>([^<]+)</td>', page.text)
    assert rows == [(" overdue", "Pin the proxy config"), ("", "Alert on proxy changes")]
    assert page.text.count('<span class="badge overdue">overdue</span>') == 1
