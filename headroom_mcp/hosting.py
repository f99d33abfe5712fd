"""``serve --transport sse|http``: the MCP server inside the process that owns the store.

The process takes the data dir's lock and runs the daemon in itself, so local hooks, the
CLI and stdio servers keep reaching the same store through its socket while MCP clients
use HTTP. When a daemon already owns the store (started on demand by an agent), the HTTP
server forwards its tools to that daemon instead of failing.

Team mode is this server with bearer tokens (``auth.Gate``), which is the default: only a
loopback server with an explicit ``no_auth`` and ``trust_local_users`` runs without them.
Connections are bounded in number and in the time to send a request (``connections``). Several replicas can serve
one team when they share a Chroma server (``chroma_url``) and a tokens file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__
from .auth import PUBLIC_PATHS, SESSION_IDLE, Gate
from .client import DaemonClient
from .config import LOOPBACK, Settings
from .connections import MIN_CONNECTIONS, guarded_protocol
from .daemon import Daemon
from .errors import HeadroomError, StoreLocked
from .methods import HTTP_METHODS, METHODS
from .metrics import Metrics
from .owner import StoreOwner
from .server import Backend, MemoryTools, build_server
from .tokens import TokenFile

log = logging.getLogger("headroom_mcp.hosting")

DEFAULT_PORT = 8765
_WILDCARDS = ("0.0.0.0", "::", "")


@dataclass
class Limits:
    """What one request and one token may do (see ``serve --help``)."""

    #: Largest HTTP request body, bytes (a tool call with the largest memory is ~10 KB).
    max_body: int = 256 * 1024
    #: Requests per minute per token (0: unlimited).
    rate_per_minute: float = 600.0
    #: Open MCP sessions per token (an agent run holds one).
    sessions_per_token: int = 64
    #: Host header values accepted besides the bound address, loopback and this machine's
    #: names; ``*`` turns the Host/Origin check off (behind a proxy that does it).
    allowed_hosts: list[str] = field(default_factory=list)
    #: Origin header values accepted besides http(s):// of the allowed hosts.
    allowed_origins: list[str] = field(default_factory=list)
    #: Open HTTP connections (``connections``): each is a file descriptor, and the process has a limit.
    max_connections: int = 512
    #: Seconds a client has to send a whole request, headers and body (``connections``).
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_body < 16 * 1024:
            raise HeadroomError(f"--max-body must be at least 16384 bytes (a memory alone can be 8 KB), got {self.max_body}")
        if self.rate_per_minute < 0:
            raise HeadroomError(f"--rate-limit must be 0 (none) or more, got {self.rate_per_minute:g}")
        if self.sessions_per_token < 1:
            raise HeadroomError(f"--sessions-per-token must be at least 1, got {self.sessions_per_token}")
        if self.max_connections < MIN_CONNECTIONS:
            raise HeadroomError(f"--max-connections must be at least {MIN_CONNECTIONS}, got {self.max_connections}")
        if not self.read_timeout > 0:
            raise HeadroomError(f"--read-timeout must be more than 0 seconds, got {self.read_timeout:g}")


def transport_security(host: str, limits: Limits) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host (and any Origin) must name this server.

    A browser page on another site that resolves its name to this server still sends its
    own name as Host, so checking Host stops it even before the token check does.
    """
    if "*" in limits.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = {*LOOPBACK, *limits.allowed_hosts}
    names |= {socket.gethostname(), socket.getfqdn()} if host in _WILDCARDS else {host}
    hosts = []
    for name in sorted(names):
        name = f"[{name}]" if ":" in name and not name.startswith("[") else name
        hosts += [name, f"{name}:*"]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")] + list(limits.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class Uvicorn(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once its graceful shutdown is done, which kills the
    process before ``serve_http`` stops the daemon, drains the store's threads and releases the
    lock. Here a signal only asks the server to stop; the process then exits 0."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refusal(status: int, error: str, description: str) -> JSONResponse:
    """An error answer of our own routes, shaped like the gate's (``auth.answer``)."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _tokens_for(settings: Settings, host: str, no_auth: bool, trust_local_users: bool = False) -> TokenFile | None:
    """The tokens to check, or None when serving without auth: on loopback, and only when
    told twice, since a loopback port (unlike the daemon's 0600 socket) is open to every
    user of the machine."""
    if no_auth:
        if host not in LOOPBACK:
            raise HeadroomError(f"refusing --no-auth on {host}: without tokens anyone who reaches the port reads and "
                                f"writes every memory; bind to {' or '.join(LOOPBACK)}, or create tokens and drop --no-auth")
        if not trust_local_users:
            raise HeadroomError(f"refusing --no-auth without --trust-local-users: on {host} every user of this machine, not "
                                f"only you, can reach the port and read and write every memory (the local socket is "
                                f"private to you, a TCP port is not). Add --trust-local-users if you are the machine's only "
                                f"user, or drop --no-auth and use a token (`headroom-mcp token create --user NAME --project '*'`)")
        return None
    tokens = TokenFile(settings.tokens_file)
    if not tokens:
        raise HeadroomError(f"no tokens in {settings.tokens_file}: create one with "
                            f"`headroom-mcp token create --user NAME --project '*'` (or, on loopback on a machine only "
                            f"you use, serve with --no-auth --trust-local-users)")
    return tokens


#: Where a team server serves the memory browser (``headroom_mcp.ui``).
UI_PREFIX = "/ui"


def ui_public_paths(prefix: str) -> frozenset[str]:
    """The browser's page and scripts, which hold no data: served without a token."""
    from .ui.app import public_paths

    return public_paths(prefix)


def _with_browser(app: ASGIApp, backend: Backend, settings: Settings, team: bool, security: TransportSecuritySettings,
                  limits: Limits) -> ASGIApp:
    """``app`` with the memory browser at ``UI_PREFIX``: the same pages as ``headroom-mcp ui``,
    as each request's token (behind the gate, which checks it, its project and its rate)."""
    from .ui.access import TeamAccess
    from .ui.app import create_app

    browser = create_app(backend, TeamAccess(settings, team), security, prefix=UI_PREFIX, max_body=limits.max_body)

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        target = browser if path == UI_PREFIX or path.startswith(UI_PREFIX + "/") else app
        await target(scope, receive, send)
    return routed


def _memory_count(backend: Backend, settings: Settings) -> Callable[..., int | None]:
    """The store's record count (None: no answer), at most ``max_age`` seconds old (health
    checks are public and frequent)."""
    count: int | None = None
    counted_at = -1.0

    def memories(max_age: float = 0.0) -> int | None:
        nonlocal count, counted_at
        if counted_at < 0 or time.monotonic() - counted_at >= max_age:
            try:
                count = int(backend.call("ping", {}, settings.context().to_mapping())["records"])
            except Exception:
                count = None
            counted_at = time.monotonic()
        return count
    return memories


Handler = Callable[[Request], Awaitable[Response]]


def _route(server: MCPServer, path: str, method: str) -> Callable[[Handler], Handler]:
    """``server.custom_route``, typed: the SDK leaves its decorator unannotated."""
    register: Callable[[Handler], Handler] = server.custom_route(path, methods=[method])
    return register


def _add_routes(server: MCPServer, backend: Backend, settings: Settings, metrics: Metrics, transport: str,
                tokens: TokenFile | None, security: TransportSecuritySettings, limits: Limits) -> None:
    """Our own routes beside the MCP transport: ``/healthz``, ``/api/call`` and ``/metrics``."""
    memories = _memory_count(backend, settings)
    # Our own routes get the transports' Host/Origin and content-type checks too.
    guard = TransportSecurityMiddleware(security)

    @_route(server, "/healthz", "GET")
    async def healthz(request: Request) -> Response:
        """Liveness and readiness for load balancers: 200 once the store answers, else 503.
        Public (no token), but behind the Host check like every route: a page that rebinds
        its name to this server learns nothing, not even that it runs."""
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        count = await anyio.to_thread.run_sync(memories, 1.0)
        body = {"status": "ok" if count is not None else "unavailable", "version": __version__, "transport": transport,
                "auth": tokens is not None, "store": "chroma-server" if settings.chroma_url else "embedded"}
        return JSONResponse(body, status_code=200 if count is not None else 503)

    api = MemoryTools(backend, settings, metrics, team=tokens is not None)

    @_route(server, "/api/call", "POST")
    async def api_call(request: Request) -> Response:
        """``{"method": "context"|"recall", "params": {...}}`` as the token's identity: what
        ``headroom-mcp hook --url`` asks, so team agents get memory context too. No browser
        needs it, so a request carrying an Origin is refused."""
        refused = await guard.validate_request(request, is_post=True)
        if refused is not None:
            return refused
        if request.headers.get("origin"):
            return _refusal(403, "forbidden", "not for browsers")
        raw = await bounded_body(request, limits.max_body)
        if raw is None:
            return _refusal(413, "too_large", f"body over {limits.max_body} bytes")
        try:
            body = json.loads(raw)
            method, params = body["method"], body.get("params") or {}
            if not isinstance(method, str) or method not in HTTP_METHODS or not isinstance(params, dict):
                raise ValueError(f"method must be one of {', '.join(sorted(HTTP_METHODS))} with object params")
        except (ValueError, KeyError, TypeError) as exc:
            return _refusal(400, "invalid_request", str(exc))
        params = METHODS[method].bounded(params)  # the same caps as the tools'
        try:
            return JSONResponse(await api.run(method, params, lambda: api.context_of(request, ""), HeadroomError))
        except HeadroomError as exc:
            return _refusal(400, "invalid_request", str(exc))

    @_route(server, "/metrics", "GET")
    async def metrics_route(request: Request) -> Response:
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        text = await anyio.to_thread.run_sync(metrics.render, memories)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@contextlib.contextmanager
def _owned_or_forwarded(settings: Settings) -> Iterator[Daemon | DaemonClient]:
    """The daemon run in this process over the store it now owns; or, when another process
    owns the store already (a daemon an agent started), a client that forwards to it."""
    try:
        owner = StoreOwner(settings)
    except StoreLocked:
        log.warning("a daemon already owns %s: forwarding to it", settings.data_dir)
        yield DaemonClient(settings)
        return
    with owner:
        yield Daemon(owner, idle_exit=False)


def serve_http(settings: Settings, transport: Literal["sse", "http"], host: str = "127.0.0.1", port: int = DEFAULT_PORT,
               no_auth: bool = False, limits: Limits | None = None, trust_local_users: bool = False) -> int:
    """Serve MCP over SSE or streamable HTTP until interrupted."""
    limits = limits or Limits()
    tokens = _tokens_for(settings, host, no_auth, trust_local_users)
    protocol = guarded_protocol(limits.max_connections, limits.read_timeout)
    with _owned_or_forwarded(settings) as backend:
        daemon = backend if isinstance(backend, Daemon) else None
        metrics = Metrics()
        server = build_server(backend, settings, metrics, team=tokens is not None)
        security = transport_security(host, limits)
        _add_routes(server, backend, settings, metrics, transport, tokens, security, limits)
        if transport == "sse":
            app = server.sse_app(transport_security=security, max_request_body_size=limits.max_body, host=host)
        else:
            app = server.streamable_http_app(transport_security=security, max_request_body_size=limits.max_body, host=host,
                                             session_idle_timeout=SESSION_IDLE)
        gated = Gate(_with_browser(app, backend, settings, tokens is not None, security, limits), tokens, metrics,
                     limits.rate_per_minute, limits.sessions_per_token, public=PUBLIC_PATHS | ui_public_paths(UI_PREFIX))

        async def run() -> None:
            if daemon is not None:
                await daemon.start()
            try:
                # On SIGTERM, open streams (SSE, streamable HTTP GETs) get a few seconds, not forever.
                config = uvicorn.Config(gated, host=host, port=port, log_level="warning", lifespan="on",
                                        timeout_graceful_shutdown=5, http=protocol)
                await Uvicorn(config).serve()
            finally:
                if daemon is not None:
                    await daemon.stop()

        anyio.run(run)
    return 0
