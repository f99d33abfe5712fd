"""Team mode's front door: an ASGI middleware in front of the MCP transports.

Every request but ``/healthz`` must carry ``Authorization: Bearer <token>``. The token, not
anything the client says, decides who the request is (``Identity``): its user, role and
projects. A client names the project it works in with an ``X-Headroom-Project`` header (or
gets its token's only project); a project the token does not cover is refused. The
answers a client can act on:

| status | when |
|---|---|
| 401 | no token, or an unknown, revoked or malformed one |
| 403 | a project the token does not cover; ``/metrics`` without admin |
| 404 | an MCP session opened with another token (the SDK answers as if it did not exist) |
| 413 | a request body over the limit (enforced by the MCP SDK's transport) |
| 429 | the token's rate limit, or its number of open MCP sessions, is used up (``Retry-After``) |
| 421 / 403 | a Host / Origin header not allowed (DNS rebinding; the SDK's transport security) |

The gate hands the SDK the token's id as the authenticated principal, so the SDK's own
check pins every MCP session to the token that opened it, on the ids it routes by. Tools
see the identity through the HTTP request the SDK hands them (``identity_of``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import HeadroomError
from .metrics import Metrics
from .ours import PROJECT_HEADER
from .tokens import Grant, TokenFile

#: Where the gate leaves the identity in the ASGI scope (the request tools see shares it).
IDENTITY_KEY = "headroom.identity"
PUBLIC_PATHS = frozenset({"/healthz"})
#: Where MCP sessions are opened (streamable HTTP, SSE).
MCP_PATHS = frozenset({"/mcp", "/sse"})
#: A streamable HTTP session with no request for this long is closed by the SDK, seconds.
SESSION_IDLE = 1800.0
_SSE_SESSION = re.compile(rb"session_id=([0-9a-fA-F]{32})")

log = logging.getLogger("headroom_mcp.auth")


@dataclass(frozen=True)
class Identity:
    """Who a request is: the token's grant, the project it works in, its MCP session."""

    grant: Grant
    project: str
    session: str


def identity_of(request: Any) -> Identity | None:
    """The identity the gate attached to an HTTP request (None over stdio or without auth)."""
    scope = getattr(request, "scope", None)
    return scope.get(IDENTITY_KEY) if isinstance(scope, dict) else None


class RateLimiter:
    """A token bucket per key: ``per_minute`` sustained, bursts up to a tenth of a minute's worth."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.burst = max(5.0, per_minute / 10.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request; returns 0, or the seconds until one is available (nothing spent)."""
        t = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, t))
            level = min(self.burst, level + (t - last) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, t)
                return 0.0
            self._buckets[key] = (level, t)
            return (1.0 - level) / self.rate


class SessionBudget:
    """Open MCP sessions per token, so that one token cannot fill the server's session table.

    A session counts from the answer that opens it until the client ends it (a DELETE the
    SDK accepted, or the end of an SSE stream), the SDK no longer knows it (404), or it has
    been idle for ``SESSION_IDLE`` (the SDK closes it). The SDK's answer decides, never the
    request alone: a refused DELETE (wrong Host or Origin, another token) ends nothing, and
    a made-up session id counts against nobody.
    """

    def __init__(self, per_token: int):
        self.per_token = per_token
        self._open: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, token_id: str) -> dict[str, float]:
        sessions = self._open.setdefault(token_id, {})
        cutoff = time.monotonic() - SESSION_IDLE
        for sid in [sid for sid, seen in sessions.items() if seen < cutoff]:
            del sessions[sid]
        return sessions

    def may_open(self, token_id: str) -> bool:
        with self._lock:
            return len(self._live(token_id)) < self.per_token

    def seen(self, token_id: str, sid: str) -> None:
        with self._lock:
            self._live(token_id)[sid] = time.monotonic()

    def closed(self, token_id: str, sid: str) -> None:
        with self._lock:
            self._open.get(token_id, {}).pop(sid, None)

    def settle(self, token_id: str, sid: str, method: str, status: int | None) -> None:
        """Account for a request on an existing session by the status the SDK answered."""
        if status is None or (status >= 300 and status != 404):
            return  # no answer, or refused before reaching the session: it is as it was
        if status == 404 or method == "DELETE":
            self.closed(token_id, sid)
        else:
            self.seen(token_id, sid)


def session_of(scope: Scope, headers: Headers) -> str:
    """The MCP session a request belongs to, where the SDK looks for it: streamable HTTP's
    header on ``/mcp``, the query of SSE's ``/messages/`` (its last value); else none."""
    if scope["path"] == "/mcp":
        return str(headers.get("mcp-session-id", ""))
    if scope["path"].startswith("/messages"):
        query: bytes = scope.get("query_string", b"")
        return (parse_qs(query.decode("latin-1")).get("session_id") or [""])[-1]
    return ""


async def answer(send: Send, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
    """A small JSON error answer (OAuth-style ``error`` code plus a sentence)."""
    body = json.dumps({"error": error, "error_description": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """Authenticate, authorise the project, rate-limit, budget sessions, count answers."""

    def __init__(self, app: ASGIApp, tokens: TokenFile | None, metrics: Metrics, rate_per_minute: float,
                 sessions_per_token: int, public: frozenset[str] = PUBLIC_PATHS):
        """``tokens`` None: no authentication (loopback with ``--no-auth``); ``rate_per_minute`` 0: no limit;
        ``public``: the paths served without a token (``/healthz``, the memory browser's page and scripts)."""
        self.app = app
        self.public = public
        self.tokens = tokens
        self.metrics = metrics
        self.rate = RateLimiter(rate_per_minute) if rate_per_minute > 0 else None
        self.sessions = SessionBudget(sessions_per_token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._counted(send)
        if self.tokens is None or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            grant = self.tokens.verify(bearer(headers.get("authorization", "")))
        except HeadroomError as exc:  # a broken tokens file: refuse everyone, say why in the log only
            log.error("refusing every request: %s", exc)
            await answer(send, 503, "server_error", "the server cannot read its tokens file; its operator must fix it")
            return
        if grant is None:
            await answer(send, 401, "invalid_token", "a valid bearer token is required (Authorization: Bearer hmcp_...)",
                         {"www-authenticate": 'Bearer realm="headroom-mcp", error="invalid_token"'})
            return
        if scope["path"] == "/metrics" and grant.role != "admin":
            await answer(send, 403, "insufficient_scope", "metrics need an admin token")
            return
        project = headers.get(PROJECT_HEADER, "").strip() or grant.default_project()
        if project and not grant.may_touch(project):
            await answer(send, 403, "insufficient_scope", f"the token of user {grant.user_id!r} does not cover project {project!r}")
            return
        wait = self.rate.take(grant.id) if self.rate else 0.0
        if wait:
            await answer(send, 429, "rate_limited", f"too many requests for this token; retry in {wait:.1f}s",
                         {"retry-after": str(max(1, math.ceil(wait)))})
            return
        session = session_of(scope, headers)
        opening = not session and scope["path"] in MCP_PATHS
        if opening and not self.sessions.may_open(grant.id):
            await answer(send, 429, "too_many_sessions", f"this token has {self.sessions.per_token} MCP sessions open; "
                         "close some (or wait for idle ones to expire)", {"retry-after": "60"})
            return
        scope[IDENTITY_KEY] = Identity(grant, project, session)
        # The SDK pins each session to the principal that opened it and compares on every use.
        scope["user"] = AuthenticatedUser(AccessToken(token=grant.id, client_id=grant.id, scopes=[grant.role]))
        opened: list[str] = []
        status: list[int] = []
        try:
            await self.app(scope, receive, self._learning(send, grant.id, opened) if opening else _status_into(send, status))
        finally:
            if session:
                self.sessions.settle(grant.id, session, scope["method"], status[0] if status else None)
            elif scope["path"] == "/sse" and opened:  # the SSE stream is the session
                self.sessions.closed(grant.id, opened[0])

    def _counted(self, send: Send) -> Send:
        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.http_answer(int(message["status"]))
            await send(message)
        return counted

    def _learning(self, send: Send, token_id: str, opened: list[str]) -> Send:
        """Count the session an answer opens: streamable HTTP names it in a response header,
        SSE in the first event of its stream."""

        async def learning(message: Message) -> None:
            if not opened:
                sid = b""
                if message["type"] == "http.response.start":
                    sid = dict(message.get("headers") or []).get(b"mcp-session-id", b"")
                elif message["type"] == "http.response.body":
                    found = _SSE_SESSION.search(message.get("body", b""))
                    sid = found.group(1) if found else b""
                if sid:
                    opened.append(sid.decode("latin-1"))
                    self.sessions.seen(token_id, opened[0])
            await send(message)
        return learning


def _status_into(send: Send, status: list[int]) -> Send:
    """``send``, noting the answer's status in ``status``."""

    async def noting(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        await send(message)
    return noting


def bearer(value: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value ("" for any other)."""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
