"""Routes of the dashboard: sign-in and -out, the active list, one escalation, the team view, live updates."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode
from uuid import UUID

import sqlalchemy as sa
from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from swagger_ui_bundle import swagger_ui_path

from domain.errors import EscalationError
from domain.service import EscalationService
from infra.audit import history_as_recorded
from infra.http.pages import charts
from projections import queries
from projections.reports import REPORTS
from projections.retro import retrospective
from projections.tables import escalations
from projections.timeline import Zones, timeline

HERE = Path(__file__).parent
SESSION_COOKIE = "ledger_session"
SIGNIN_COOKIE = "ledger_signin"
# Pages run no inline script or style; SVG is inline markup, styled from the stylesheet.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI sets inline styles on its widgets; its scripts still come only from here.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LIVE_SECONDS = 15.0  # an event stream ends after this; the browser reconnects, and shutdown never waits long
LIVE_POLL = 0.5
SORTABLE = ("severity", "customer", "region", "lead_engineer", "days_open", "status", "next_update_due")
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
MILESTONES = {
    "hours_to_lead": "Open to lead",
    "hours_to_scope": "Open to scope",
    "hours_to_monitoring": "Open to monitoring",
    "hours_to_close": "Open to close",
}


class Principal(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str


class Sessions:
    """Sessions of this process, by an unguessable id; the token itself never goes into a cookie."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def start(self, principal: Principal) -> str:
        session_id = secrets.token_urlsafe(32)
        self._by_id[session_id] = Session(principal, secrets.token_urlsafe(24))
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        return self._by_id.get(session_id or "")

    def end(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)


class _SignInRequired(Exception):  # noqa: N818 - a redirect, not an error
    pass


def secure(response: Response, csp: str = CSP) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def mount_pages(  # noqa: C901, PLR0915 - the routes are closures over the app's collaborators
    app: FastAPI,
    service: EscalationService,
    read_model: sa.Engine,
    principals: Mapping[str, Principal],
    commands: Mapping[str, frozenset[str]],
    zones: Zones,
) -> None:
    """Add the dashboard, its assets and a CDN-free `/docs` to the API's app.

    `commands` maps each command's name to the roles that may post it, so a page shows a person
    only the commands their role allows.
    """
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), auto_reload=False
    )
    sessions = Sessions()
    app.mount("/assets/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.mount("/assets", StaticFiles(directory=HERE / "static"), name="assets")

    async def sign_in_required(request: Request, _: Exception) -> Response:
        return RedirectResponse(f"/signin?{urlencode({'next': request.url.path})}", status_code=303)

    app.add_exception_handler(_SignInRequired, sign_in_required)

    def session_of(request: Request) -> Session:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise _SignInRequired
        return session

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        html = templates.get_template(name).render(request=request, session=session, path=request.url.path, **context)
        return secure(HTMLResponse(html, status_code=status))

    def position() -> int:
        with read_model.connect() as conn:
            return queries.position_seen(conn)

    @app.get("/signin", include_in_schema=False)
    def signin_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the conventional name
        nonce = secrets.token_urlsafe(24)
        response = page(request, "signin.html", next=_local(next), nonce=nonce, error=None)
        response.set_cookie(SIGNIN_COOKIE, nonce, httponly=True, samesite="strict", path="/signin")
        return response

    @app.post("/signin", include_in_schema=False)
    def signin(
        request: Request,
        token: Annotated[str, Form()],
        nonce: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",  # noqa: A002
    ) -> Response:
        expected = request.cookies.get(SIGNIN_COOKIE) or ""
        principal = principals.get(token.strip())
        if not expected or not hmac.compare_digest(expected, nonce) or principal is None:
            fresh = secrets.token_urlsafe(24)
            error = "That token is not one of this site's API tokens; paste the bearer token you use for the API."
            if not hmac.compare_digest(expected, nonce):
                error = "The sign-in form expired; sign in again."
            response = page(request, "signin.html", 401, next=_local(next), nonce=fresh, error=error)
            response.set_cookie(SIGNIN_COOKIE, fresh, httponly=True, samesite="strict", path="/signin")
            return response
        response = secure(RedirectResponse(_local(next), status_code=303))
        response.set_cookie(SESSION_COOKIE, sessions.start(principal), httponly=True, samesite="strict", path="/")
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    @app.post("/signout", include_in_schema=False)
    def signout(request: Request, csrf: Annotated[str, Form()]) -> Response:
        session = session_of(request)
        if not hmac.compare_digest(session.csrf, csrf):
            return page(request, "error.html", 403, message="The sign-out form is stale; reload the page and retry.")
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = secure(RedirectResponse("/signin", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/", include_in_schema=False)
    def active(
        request: Request,
        region: str = "",
        severity: str = "",
        lead: str = "",
        overdue: str = "",
        sort: str = "days_open",
        order: str = "desc",
    ) -> Response:
        session_of(request)
        now = datetime.now(UTC)
        with read_model.connect() as conn:
            rows = REPORTS["active"](conn, now)
            emergencies = {r["escalation_id"]: r for r in REPORTS["emergencies"](conn, now)}
            closed = queries.list_escalations(conn, status="closed")[-5:]
            seen = queries.position_seen(conn)
        choices = {
            key: sorted({str(r.get(key) or "") for r in rows} - {""}) for key in ("region", "severity", "lead_engineer")
        }
        marked = [
            # Overdue by the cadence in the customer's working days, or noticed so by the ledger's watcher.
            {
                **r,
                "emergency": emergencies.get(r["escalation_id"]),
                "overdue": bool(r.get("overdue_by_working_days") or r.get("update_overdue_since")),
            }
            for r in rows
        ]
        shown = [
            r
            for r in marked
            if (not region or r.get("region") == region)
            and (not severity or r.get("severity") == severity)
            and (not lead or r.get("lead_engineer") == lead)
            and (not overdue or r["overdue"])
        ]
        sort = sort if sort in SORTABLE else "days_open"
        shown.sort(key=lambda r: _sort_key(r, sort), reverse=order == "desc")
        filters = {"region": region, "severity": severity, "lead": lead, "overdue": overdue}
        return page(
            request,
            "active.html",
            rows=shown,
            total=len(rows),
            choices=choices,
            filters=filters,
            sort=sort,
            order=order,
            position=seen,
            closed=closed,
            sort_link=lambda column: _sort_link(filters, sort, order, column),
        )

    @app.get("/e/{escalation_id}", include_in_schema=False)
    def escalation(request: Request, escalation_id: UUID) -> Response:
        session = session_of(request)
        try:
            events = history_as_recorded(service, escalation_id)
        except EscalationError:
            events = []
        if not events:
            return page(request, "error.html", 404, message=f"No escalation {escalation_id}; pick one from the list.")
        now, entries = datetime.now(UTC), timeline(events, zones)
        with read_model.connect() as conn:
            seen = queries.position_seen(conn)  # the live stream compares with the overall position
            row = conn.execute(sa.select(escalations).where(escalations.c.escalation_id == str(escalation_id))).first()
        allowed = sorted(name for name, roles in commands.items() if session.principal.role in roles)
        return page(
            request,
            "escalation.html",
            retro=retrospective(events, now, entries),
            entries=entries,
            picture=charts.swimlane(events, now),
            scopes=[e for e in events if e.name == "ScopeDefined"],
            retro_opened=[e.data for e in events if e.name == "RetrospectiveOpened"],
            row=row,
            position=seen,
            commands=allowed,
            escalation_id=escalation_id,
        )

    @app.get("/team", include_in_schema=False)
    def team(request: Request) -> Response:
        session_of(request)
        now = datetime.now(UTC)
        with read_model.connect() as conn:
            compliance = REPORTS["compliance"](conn, now)
            workload = REPORTS["workload"](conn, now)
            durations = REPORTS["durations"](conn, now)
            everyone = conn.execute(sa.select(escalations)).mappings().all()
            seen = queries.position_seen(conn)
        series = {
            label: [(f"{e['customer']} ({e['region']})", e[key]) for e in everyone if e.get(key) is not None]
            for key, label in MILESTONES.items()
        }
        per_lead = [(f"{r['lead_engineer']} · {r['region']}", float(r["active_escalations"])) for r in workload]
        return page(
            request,
            "team.html",
            heatmap=charts.heatmap(compliance),
            workload=charts.bars(per_lead, "Active escalations per lead and region"),
            strips=charts.strips(series),
            durations=durations,
            compliance=compliance,
            position=seen,
        )

    @app.get("/live", include_in_schema=False)
    async def live(request: Request) -> Response:
        """Server-sent events: the read model's position whenever it moves (pages reload their data on it)."""
        session_of(request)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            last, deadline = -1, asyncio.get_running_loop().time() + LIVE_SECONDS
            while asyncio.get_running_loop().time() < deadline and not await request.is_disconnected():
                seen = await run_in_threadpool(position)
                if seen != last:
                    yield f"event: position\ndata: {seen}\n\n"
                    last = seen
                await asyncio.sleep(LIVE_POLL)

        response = StreamingResponse(stream(), media_type="text/event-stream")
        response.headers["X-Accel-Buffering"] = "no"
        return secure(response)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        return secure(HTMLResponse(templates.get_template("docs.html").render(request=request)), DOCS_CSP)


def _local(target: str) -> str:
    """Only same-site paths after sign-in: never an open redirect to another host."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _sort_key(row: dict[str, Any], column: str) -> tuple[int, Any]:
    value = row.get(column)
    if column == "severity":
        value = SEVERITY_ORDER.get(str(value), 9)
    return (value is None, value if value is not None else 0)


def _sort_link(filters: dict[str, str], sort: str, order: str, column: str) -> str:
    flipped = "asc" if sort == column and order == "desc" else "desc"
    return "/?" + urlencode({**{k: v for k, v in filters.items() if v}, "sort": column, "order": flipped})


Render = Callable[..., Response]
