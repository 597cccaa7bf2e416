"""A local stand-in for Slack's Web API (chat.postMessage) and for webhook receivers.

The demo points the notifier here so a new user sees the messages without a Slack workspace;
tests use it to misbehave on demand: 429 with Retry-After, 500, slow answers, or down altogether
(`stop()` then `start()` on the same port). Webhooks are verified with the Standard Webhooks
verifier, as a receiving team would, and deduplicated by webhook-id, as the spec asks them to.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from infra.local.ports import free_port


@dataclass(frozen=True)
class Misbehaviour:
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Received:
    slack: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # hook name -> accepted, in order
    webhook_ids: dict[str, list[str]] = field(default_factory=dict)  # hook name -> every id that arrived
    rejected_signatures: int = 0
    requests: int = 0


class LocalReceiver:
    def __init__(self, token: str = "xoxb-local-demo", port: int | None = None) -> None:  # noqa: S107 - a stand-in's token
        self.token = token
        self.port = port or free_port()
        self.received = Received()
        self.secrets: dict[str, str] = {}  # hook name -> Standard Webhooks secret
        self._plan: deque[Misbehaviour] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def slack_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def hook_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def misbehave(self, *answers: Misbehaviour) -> None:
        """The next requests get these answers, one each, before it behaves again."""
        with self._lock:
            self._plan.extend(answers)

    def start(self) -> LocalReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *_: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _next(self) -> Misbehaviour:
        with self._lock:
            self.received.requests += 1
            return self._plan.popleft() if self._plan else Misbehaviour()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("content-length") or 0))
        answer = self._next()
        if answer.delay:
            time.sleep(answer.delay)
        if answer.status != 200:
            extra = {"Retry-After": f"{answer.retry_after:g}"} if answer.retry_after is not None else {}
            error = "ratelimited" if answer.status == 429 else "internal_error"
            self._reply(request, answer.status, {"ok": False, "error": error}, extra)
            return
        if request.path == "/api/chat.postMessage":
            self._slack(request, body)
        elif request.path.startswith("/hooks/"):
            self._webhook(request, request.path.removeprefix("/hooks/"), body)
        else:
            self._reply(request, 404, {"ok": False, "error": "unknown_method"})

    def _slack(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            self._reply(request, 200, {"ok": False, "error": "invalid_auth"})
            return
        if (request.headers.get("content-type") or "").startswith("application/json"):
            message = json.loads(body or b"{}")
        else:
            message = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if isinstance(message.get("blocks"), str):
                message["blocks"] = json.loads(message["blocks"])
        if not message.get("channel"):
            self._reply(request, 200, {"ok": False, "error": "channel_not_found"})
            return
        with self._lock:
            self.received.slack.append(message)
        self._reply(request, 200, {"ok": True, "channel": message["channel"], "ts": f"{time.time():.6f}"})

    def _webhook(self, request: BaseHTTPRequestHandler, name: str, body: bytes) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = self.secrets.get(name)
        try:
            Webhook(secret or "whsec_").verify(body, headers) if secret else _unverifiable()
        except WebhookVerificationError:
            with self._lock:
                self.received.rejected_signatures += 1
            self._reply(request, 401, {"error": "bad signature"})
            return
        msg_id = headers["webhook-id"]
        with self._lock:
            ids = self.received.webhook_ids.setdefault(name, [])
            if msg_id not in ids:  # a receiver drops duplicates by webhook-id
                self.received.webhooks.setdefault(name, []).append(json.loads(body))
            ids.append(msg_id)
        self._reply(request, 204, None)

    def _reply(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            request.send_response(status)
            for key, value in (headers or {}).items():
                request.send_header(key, value)
            request.send_header("content-type", "application/json")
            request.send_header("content-length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (a timeout): what it missed is what the test is about


def _unverifiable() -> None:
    msg = "no secret registered for this hook"
    raise WebhookVerificationError(msg)
