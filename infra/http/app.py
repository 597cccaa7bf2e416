"""The HTTP API: one endpoint per command of the handbook, queries over the read models, health, metrics.

Every escalation response carries its version as an ETag; commands on an escalation require
`If-Match` with it (412 when stale, 428 when missing; `*` for whatever version is current). Every
error, the framework's own included, is an RFC 9457 problem document. Command endpoints are plain
functions, so FastAPI runs the blocking store calls in its thread pool; a reader waiting for
read-your-writes waits on the event loop instead (`waiting.py`), so no reader holds a thread a
command needs. Readiness is read from checks that run on their own threads (`infra/health.py`).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain import commands as c
from domain.errors import EscalationError
from domain.service import EscalationService
from infra.health import Check, ReadinessMonitor
from infra.http import bodies
from infra.http.contract import IF_MATCH_PATTERN, document
from infra.http.notifications import mount_notifications
from infra.http.pages import mount_pages
from infra.http.problems import domain_error, framework_error, problem, validation_error
from infra.http.waiting import NotCaughtUpError, PositionWaiters, TooManyWaitersError
from infra.messaging.schemas import bundled_asyncapi
from projections import queries
from projections.reports import REPORTS
from projections.retro import render_markdown, retrospective
from projections.tables import load_events
from projections.timeline import TimelineEntry, Zones
from projections.timeline_tables import entries_of, timeline_entries

MANAGER, ENGINEER, AUDITOR, ANALYST = "manager", "engineer", "auditor", "analyst"
ROLES = (MANAGER, ENGINEER, AUDITOR, ANALYST)
READERS = frozenset(ROLES)
REQUESTS = Counter("escalations_http_requests", "HTTP requests", ["method", "status"])


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


@dataclass(frozen=True)
class Route:
    """Where a command is posted (`/escalations/{id}/<path>`) and which roles may post it."""

    path: str
    command: type[c.EscalationCommand]
    roles: frozenset[str]

    @property
    def body(self) -> type[bodies.CommandBody]:
        return BODIES[self.command]


ENGINEERS = frozenset({MANAGER, ENGINEER})
MANAGERS = frozenset({MANAGER})
OPENING_ROLES = MANAGERS
ROUTES = (
    Route("preparation", c.CompletePreparation, MANAGERS),
    Route("lead", c.AssignLeadEngineer, MANAGERS),
    Route("product-dri", c.AssignProductDri, MANAGERS),
    Route("scope", c.DefineScope, MANAGERS),
    Route("exit-criteria-met", c.MeetExitCriterion, MANAGERS),
    Route("uncertainties", c.RaiseUncertainty, ENGINEERS),
    Route("risks", c.DefineRisk, ENGINEERS),
    Route("answers", c.AnswerUncertainty, ENGINEERS),
    Route("updates", c.PostUpdate, ENGINEERS),
    Route("stalls", c.MarkStalled, MANAGERS),
    Route("resumptions", c.ResumeProgress, MANAGERS),
    Route("specialist-escalations", c.EscalateToSpecialistTeam, MANAGERS),
    Route("emergencies", c.RaiseEmergency, ENGINEERS),
    Route("emergency-reviews", c.ReviewEmergencyWork, ENGINEERS),
    Route("sync-cadence", c.AgreeSyncCadence, MANAGERS),
    Route("monitoring", c.StartMonitoring, MANAGERS),
    Route("update-pauses", c.PauseUpdates, MANAGERS),
    Route("monitoring-interruptions", c.InterruptMonitoring, MANAGERS),
    Route("closing", c.CloseEscalation, MANAGERS),
    Route("retrospective", c.OpenRetrospective, MANAGERS),
    Route("corrections", c.RecordCorrection, MANAGERS),
    Route("severity", c.ChangeSeverity, MANAGERS),
    Route("handovers", c.HandOverRole, MANAGERS),
    Route("helpers", c.AddHelper, MANAGERS),
    Route("helper-removals", c.RemoveHelper, MANAGERS),
    Route("recorded-risks", c.RecordRisk, ENGINEERS),
    Route("risk-settlements", c.SettleRisk, ENGINEERS),
    Route("follow-up-actions", c.AddFollowUpAction, MANAGERS),
    Route("follow-up-settlements", c.SettleFollowUpAction, MANAGERS),
    Route("retrospective-completion", c.CompleteRetrospective, MANAGERS),
)
PATHS: dict[type[c.Command], str] = {route.command: route.path for route in ROUTES}
COMMAND_TYPES: tuple[type[c.Command], ...] = (c.OpenEscalation, *PATHS)
BODIES: dict[type[c.Command], type[bodies.CommandBody]] = {
    command: bodies.body_of(command) for command in COMMAND_TYPES
}


class BodySizeLimit:
    """Refuses bodies over the limit, declared (Content-Length) or streamed (chunked), with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        # Read the (small) body first, so a streamed one over the limit is refused before any parsing.
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(scope, receive, send, len(body))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                REQUESTS.labels(scope["method"], str(message["status"])).inc()
            await send(message)

        await self.app(scope, replay, counted)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        detail = f"the body has {size} bytes or more, more than the {self.limit} allowed; send less"
        await problem(413, "body-too-large", "Body too large", detail)(scope, receive, send)


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version If-Match names; None for `*`, which matches whatever version is current."""
    if if_match is None:
        raise _Precondition("commands need If-Match with the escalation's ETag; GET it first and send its ETag")
    if if_match.strip() == "*":
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise _Precondition(f'If-Match {if_match!r} is not an ETag of this API (a quoted version, e.g. "3")') from None


def _named_version(if_match: str | None) -> int | None:
    try:
        return expected_version(if_match)
    except _Precondition:
        return None


class _Precondition(Exception):  # noqa: N818 - an HTTP condition, not an error of the domain
    pass


class _Unauthorised(Exception):  # noqa: N818
    pass


class _Forbidden(Exception):  # noqa: N818
    def __init__(self, principal: "Principal", roles: frozenset[str]) -> None:
        self.principal = principal
        self.roles = roles


class _NotOnEscalation(Exception):  # noqa: N818
    """An engineer acts only on the escalations they work on (lead, backup or helper)."""

    def __init__(self, principal: "Principal", escalation_id: UUID, engineers: frozenset[str]) -> None:
        self.principal = principal
        self.escalation_id = escalation_id
        self.engineers = engineers


def create_app(  # noqa: C901, PLR0915 - the endpoints are closures over the app's collaborators
    service: EscalationService,
    read_model: sa.Engine,
    tokens: dict[str, str],
    *,
    max_body_bytes: int = 64 * 1024,
    readiness: Mapping[str, Check] | None = None,
    max_waiters: int = 256,
    notify_allow_plain_http: bool = False,
    zones: Zones | None = None,
) -> FastAPI:
    """`tokens` maps a bearer token to "role:name" (the name becomes each event's actor); `zones` are the
    region calendars' zones, for the local times the pages show (UTC when not given).

    `readiness` adds checks (name: callable answering "ok" or why not) to the event store's; they
    run on their own threads, never in a request.
    """

    def event_store() -> str:
        service.recorder.max_notification_id()
        return "ok"

    monitor = ReadinessMonitor({"event_store": event_store, **(readiness or {})})
    waiters = PositionWaiters(read_model, limit=max_waiters)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        monitor.start()
        yield
        monitor.stop()

    # /docs is served by the pages from vendored assets (sites run air-gapped); ReDoc would need a CDN.
    app = FastAPI(
        title="Escalation Ledger",
        version="1.0.0",
        description=__doc__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)
    app.add_exception_handler(EscalationError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, framework_error)
    for condition, handler in HANDLERS.items():
        app.add_exception_handler(condition, handler)
    principals = {token: Principal(*reversed(value.split(":", 1))) for token, value in tokens.items()}
    bearer = HTTPBearer(auto_error=False, description="a token from ESCALATIONS_API_TOKENS")

    def authorised(roles: frozenset[str]) -> Callable[..., Awaitable[Principal]]:
        async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
            # The scheme is case-insensitive (RFC 9110); a token without it is refused.
            principal = principals.get(credentials.credentials.strip()) if credentials else None
            if principal is None:
                raise _Unauthorised
            if principal.role not in roles:
                raise _Forbidden(principal, roles)
            return principal

        return check

    def respond(result: c.CommandResult, status: int = 200) -> JSONResponse:
        body = {"escalation_id": str(result.escalation_id), "version": result.version, "position": result.position}
        if result.created:
            body["created"] = result.created
        return JSONResponse(
            body,
            status_code=status,
            headers={"ETag": etag(result.version), "Location": f"/escalations/{result.escalation_id}"},
        )

    def open_escalation(
        body: bodies.CommandBody, who: Annotated[Principal, Depends(authorised(OPENING_ROLES))]
    ) -> JSONResponse:
        return respond(service.handle(body.command(c.OpenEscalation), actor=who.name), 201)

    open_escalation.__annotations__["body"] = BODIES[c.OpenEscalation]
    app.post("/escalations", status_code=201, tags=["commands"], summary="OpenEscalation")(open_escalation)

    for route in ROUTES:
        _add_command(app, service, route, authorised(route.roles), respond)

    @app.get("/escalations/{escalation_id}", tags=["queries"])
    def get_escalation(escalation_id: UUID, _: Annotated[Principal, Depends(authorised(READERS))]) -> JSONResponse:
        state = service.state(escalation_id)
        return JSONResponse(jsonable_encoder(state), headers={"ETag": etag(state["version"])})

    @app.get("/escalations/{escalation_id}/as-of", tags=["queries"])
    def get_as_of(
        escalation_id: UUID,
        _: Annotated[Principal, Depends(authorised(READERS))],
        recorded: Annotated[datetime | None, Query(description="as the ledger knew it at this time")] = None,
        occurred: Annotated[datetime | None, Query(description="the state at this time of what happened")] = None,
    ) -> JSONResponse:
        if occurred is not None:
            known_at = _utc(recorded) if recorded else None
            state = service.state_as_occurred(escalation_id, _utc(occurred), known_at=known_at)
        elif recorded is not None:
            state = service.state_as_of(escalation_id, _utc(recorded))
        else:
            return problem(422, "as-of-needs-a-time", "A time is needed", "give recorded=TIME, occurred=TIME, or both")
        return JSONResponse(jsonable_encoder(state))

    @app.get("/escalations/{escalation_id}/history", tags=["queries"])
    def get_history(escalation_id: UUID, _: Annotated[Principal, Depends(authorised(READERS))]) -> JSONResponse:
        events = [{"type": type(e).__name__, **vars(e)} for e in service.history(escalation_id)]
        return JSONResponse(jsonable_encoder(events))

    @app.get("/escalations/{escalation_id}/timeline", tags=["queries"])
    async def get_timeline(
        escalation_id: UUID,
        _: Annotated[Principal, Depends(authorised(READERS))],
        timeout: Annotated[float, Query(ge=0, le=30, description="how long to wait for the read model")] = 5.0,  # noqa: ASYNC109 - the API's parameter
    ) -> JSONResponse:
        """The stored, hash-chained timeline, once it holds every event the store has recorded (else 503)."""
        entries = await caught_up_timeline(escalation_id, timeout)
        return JSONResponse([asdict(entry) for entry in entries])

    @app.get(
        "/escalations/{escalation_id}/retrospective",
        tags=["queries"],
        responses={200: {"content": {"application/json": {}, "text/markdown": {"schema": {"type": "string"}}}}},
    )
    async def get_retrospective(
        escalation_id: UUID,
        _: Annotated[Principal, Depends(authorised(READERS))],
        output: Annotated[str, Query(alias="format", pattern="^(md|json)$")] = "md",
        timeout: Annotated[float, Query(ge=0, le=30, description="how long to wait for the read models")] = 5.0,  # noqa: ASYNC109 - the API's parameter
    ) -> Response:
        """From the read models (the reporting model's events, the stored timeline), once both caught up."""
        entries = await caught_up_timeline(escalation_id, timeout)
        await waiters.wait(entries[-1].position, timeout, escalation_id)  # the reporting model has it too

        def events() -> list[Any]:
            with read_model.connect() as conn:
                return load_events(conn, [str(escalation_id)])[str(escalation_id)]

        document = retrospective(await run_in_threadpool(events), datetime.now(UTC), entries)
        if output == "json":
            return JSONResponse(jsonable_encoder(document))
        return PlainTextResponse(render_markdown(document), media_type="text/markdown")

    async def caught_up_timeline(escalation_id: UUID, timeout: float) -> list[TimelineEntry]:  # noqa: ASYNC109
        """The stored timeline once it holds the version the event store has now (read-your-writes for
        every writer), or 503 with Retry-After. Waits on the event loop, reading on the thread pool."""
        version = (await run_in_threadpool(service.state, escalation_id))["version"]
        key, deadline = str(escalation_id), time.monotonic() + timeout
        while True:
            entries = await run_in_threadpool(_stored_timeline, read_model, key)
            if entries and entries[-1].version >= version:
                return [e for e in entries if e.version <= version]
            if time.monotonic() >= deadline:
                have = entries[-1].version if entries else 0
                msg = (
                    f"the timeline read model holds {have} of this escalation's {version} events after {timeout}s "
                    "(is the timeline consumer running? `escalations status` shows its lag); retry shortly"
                )
                raise NotCaughtUpError(msg)
            await asyncio.sleep(0.05)

    @app.get("/escalations", tags=["queries"])
    async def list_escalations(
        _: Annotated[Principal, Depends(authorised(READERS))],
        status: str | None = None,
        customer: str | None = None,
        region: str | None = None,
        lead: str | None = None,
        after: Annotated[int | None, Query(description="wait until the read model has this position")] = None,
        after_escalation: Annotated[UUID | None, Query(description="the escalation of that position")] = None,
        timeout: Annotated[float, Query(ge=0, le=30)] = 5.0,  # noqa: ASYNC109 - the API's parameter
    ) -> JSONResponse:
        if after is not None:
            await waiters.wait(after, timeout, after_escalation)

        def rows() -> list[dict[str, Any]]:
            with read_model.connect() as conn:
                filters = {"status": status, "customer": customer, "region": region, "lead_engineer": lead}
                return queries.list_escalations(conn, **filters)

        return JSONResponse(jsonable_encoder(await run_in_threadpool(rows)))

    @app.get("/reports/{name}", tags=["queries"])
    async def get_report(
        name: str,
        _: Annotated[Principal, Depends(authorised(READERS))],
        after: int | None = None,
        after_escalation: UUID | None = None,
        timeout: Annotated[float, Query(ge=0, le=30)] = 5.0,  # noqa: ASYNC109 - the API's parameter
    ) -> JSONResponse:
        if name not in REPORTS:
            return problem(
                404, "unknown-report", "Unknown report", f"no report {name!r}; use one of: {', '.join(REPORTS)}"
            )
        if after is not None:
            await waiters.wait(after, timeout, after_escalation)

        def report() -> Any:
            with read_model.connect() as conn:
                return REPORTS[name](conn, datetime.now(UTC))

        return JSONResponse(jsonable_encoder(await run_in_threadpool(report)))

    mount_pages(
        app,
        service,
        read_model,
        principals,
        {route.command.__name__: route.roles for route in ROUTES},
        zones or {},
    )
    mount_notifications(app, read_model, authorised(MANAGERS), allow_plain_http=notify_allow_plain_http)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready; the checks say why"}})
    async def readyz() -> JSONResponse:
        """Ready when every latest answer (at most a few seconds old) is "ok" or "degraded: ..."; never waits."""
        checks = monitor()
        # A degraded part (a lost broker, with enough replicas left) still serves: ready, and said so.
        ready = all(value == "ok" or value.startswith("degraded") for value in checks.values())
        degraded = sorted(name for name, value in checks.items() if value.startswith("degraded"))
        body = {"ready": ready, "checks": checks} | ({"degraded": degraded} if degraded else {})
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["operations"])
    def asyncapi_document() -> JSONResponse:
        """The events this system publishes, as one self-contained AsyncAPI document."""
        return JSONResponse(bundled_asyncapi())

    app.state.readiness = monitor
    app.state.waiters = waiters
    app.openapi = lambda: document(app, [route.path for route in ROUTES])  # type: ignore[method-assign]
    return app


async def _precondition(_: Request, error: Exception) -> JSONResponse:
    return problem(428, "if-match-required", "If-Match required", str(error))


async def _not_caught_up(_: Request, error: Exception) -> JSONResponse:
    response = problem(503, "read-model-behind", "Read model behind", str(error))
    response.headers["Retry-After"] = "1"
    return response


async def _too_many_waiters(_: Request, error: Exception) -> JSONResponse:
    response = problem(503, "too-many-waiting-readers", "Too many waiting readers", str(error))
    response.headers["Retry-After"] = "1"
    return response


async def _unauthorised(_: Request, __: Exception) -> JSONResponse:
    detail = "send Authorization: Bearer <token> with a token from the API's configuration"
    response = problem(401, "unauthorised", "Unauthorised", detail)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _forbidden(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, _Forbidden)
    who = error.principal
    return problem(
        403, "forbidden", "Forbidden", f"{who.name} is {who.role}; this needs: {', '.join(sorted(error.roles))}"
    )


async def _not_on_escalation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, _NotOnEscalation)
    working = ", ".join(sorted(error.engineers)) or "nobody yet"
    detail = (
        f"{error.principal.name} is an engineer, and an engineer acts only on escalations where they are the lead, "
        f"a backup or a helper (on this one: {working}); ask a manager to add you "
        f"(POST /escalations/{error.escalation_id}/helpers) or to act instead"
    )
    return problem(403, "not-on-this-escalation", "Forbidden", detail)


HANDLERS: dict[type[Exception], Callable[[Request, Exception], Any]] = {
    _Precondition: _precondition,
    NotCaughtUpError: _not_caught_up,
    TooManyWaitersError: _too_many_waiters,
    _Unauthorised: _unauthorised,
    _Forbidden: _forbidden,
    _NotOnEscalation: _not_on_escalation,
}


def _add_command(
    app: FastAPI,
    service: EscalationService,
    route: Route,
    authorise: Callable[..., Awaitable[Principal]],
    respond: Callable[[c.CommandResult], JSONResponse],
) -> None:
    command_type = route.command

    def endpoint(
        escalation_id: UUID,
        body: bodies.CommandBody,
        who: Annotated[Principal, Depends(authorise)],
        # Required in the OpenAPI document; optional here so that a missing one gets 428, not 422.
        if_match: Annotated[str | None, Header(pattern=IF_MATCH_PATTERN)] = None,
    ) -> JSONResponse:
        if who.role == ENGINEER:
            # At the version the command expects, the one it will be decided on (or refused with 412).
            engineers = service.engineers_on(escalation_id, _named_version(if_match))
            if who.name not in engineers:
                raise _NotOnEscalation(who, escalation_id, engineers)
        command = body.command(command_type, escalation_id=escalation_id)
        return respond(service.handle(command, actor=who.name, expected_version=expected_version(if_match)))

    endpoint.__annotations__["body"] = route.body  # FastAPI validates against the command's own body
    endpoint.__name__ = command_type.__name__
    path = f"/escalations/{{escalation_id}}/{route.path}"
    app.post(path, tags=["commands"], summary=command_type.__name__)(endpoint)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stored_timeline(read_model: sa.Engine, escalation_id: str) -> list[TimelineEntry]:
    if not sa.inspect(read_model).has_table(timeline_entries.name):
        return []  # no timeline consumer has run against this read model yet
    with read_model.connect() as conn:
        return entries_of(conn, escalation_id)
