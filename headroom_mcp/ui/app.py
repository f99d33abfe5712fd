"""The memory browser's web app: one Starlette app for ``headroom-mcp ui`` and a team server's ``/ui``.

``create_app`` takes what differs between the two as parameters: the backend that runs the
store's methods (a ``DaemonClient``, or the team server's own daemon), the ``Access``
policy that says who a request is, the Host/Origin rules (``hosting.transport_security``,
the HTTP transports' own) and a path prefix. The routes are the same code for both.

Security model, for every request:

- The Host header must name this server and a browser Origin must be its own (the MCP
  SDK's ``TransportSecurityMiddleware``, as the transports check): a page on another site
  that rebinds its name to 127.0.0.1 is refused before anything else.
- The page and its scripts are public (they hold no data); every API call needs the token
  in an ``Authorization: Bearer`` header (``access``), never a cookie, so another site
  cannot make the browser send it. A POST must be JSON (a form from another site cannot be).
- Answers carry a strict Content-Security-Policy (scripts only from this server, no inline
  script, no framing), ``nosniff``, no referrer, and ``Cache-Control: no-store``.
- Memory contents are text written by agents, so the page renders them with
  ``textContent`` only (no HTML is ever built from data).
- Refusals are JSON ``{"error", "error_description"}`` (as ``auth.answer`` shapes the
  gate's), with a sentence the page shows; a refused request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..agents import CLIENTS
from ..errors import DaemonUnavailable, Forbidden, HeadroomError, InvalidInput, NotFound, StoreFull
from ..hosting import bounded_body
from ..server import Backend
from . import views
from .access import Access, Caller, Refused

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: The page may load and run only what this server sends; nothing inline, nothing framed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
           (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]
#: The transport security check's plain-text refusals, said as sentences a person can act on.
GUARD_REFUSALS = {
    400: ("invalid_request", "send the request as JSON (Content-Type: application/json)"),
    421: ("misdirected_request", "this server does not answer to that address (Host header): open the URL it printed"),
    403: ("forbidden", "requests from another site (Origin header) are refused"),
}


def assets() -> dict[str, tuple[bytes, str]]:
    """The page's files by name, read once: served from memory, so no path reaches the disk."""
    return {p.name: (p.read_bytes(), MEDIA_TYPES[p.suffix]) for p in sorted(STATIC.iterdir()) if p.suffix in MEDIA_TYPES}


def public_paths(prefix: str) -> frozenset[str]:
    """The paths served without a token (the page and its scripts): for ``auth.Gate``."""
    return frozenset({prefix or "/", f"{prefix}/", *(f"{prefix}/{name}" for name in assets())})


class _SecurityHeaders:
    """Adds ``HEADERS`` to every answer of the wrapped app (errors and redirects too)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


def refusal(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _status_of(exc: HeadroomError) -> tuple[int, str]:
    for cls, status, error in ((NotFound, 404, "not_found"), (Forbidden, 403, "forbidden"), (views.Stale, 409, "conflict"),
                               (InvalidInput, 400, "invalid_request"), (DaemonUnavailable, 503, "unavailable"),
                               (StoreFull, 507, "store_full")):
        if isinstance(exc, cls):
            return status, error
    return 400, "invalid_request"


@dataclass
class Call:
    """What a route's view is given from the request."""

    query: dict[str, str]
    memory_id: str = ""
    body: dict[str, Any] = field(default_factory=dict)


View = Callable[[Backend, Caller, Call], Any]

#: (method, path under the prefix, view): every API route.
API: list[tuple[str, str, View]] = [
    ("GET", "/api/whoami", lambda b, c, r: {**c.public(), "agents": list(CLIENTS)}),
    ("GET", "/api/memories", lambda b, c, r: views.memories(b, c, r.query)),
    ("GET", "/api/search", lambda b, c, r: views.search(b, c, r.query)),
    ("GET", "/api/memory/{memory_id}", lambda b, c, r: views.memory(b, c, r.memory_id)),
    ("POST", "/api/memory/{memory_id}/edit", lambda b, c, r: views.edit(b, c, r.memory_id, r.body)),
    ("POST", "/api/memory/{memory_id}/forget", lambda b, c, r: views.forget(b, c, r.memory_id)),
    ("POST", "/api/memory/{memory_id}/update", lambda b, c, r: views.update(b, c, r.memory_id, r.body)),
    ("POST", "/api/restore", lambda b, c, r: views.restore(b, c, r.body)),
    ("POST", "/api/unmerge", lambda b, c, r: views.unmerge(b, c, r.body)),
    ("GET", "/api/forgotten", lambda b, c, r: views.forgotten(b, c)),
    ("GET", "/api/preview", lambda b, c, r: views.preview(b, c, r.query)),
    ("GET", "/api/activity", lambda b, c, r: views.activity(b, c)),
]


async def _body(request: Request, max_body: int) -> dict[str, Any]:
    raw = await bounded_body(request, max_body)
    if raw is None:
        raise Refused(413, "too_large", f"the request is over {max_body} bytes (a memory is at most 8 KB); nothing was changed")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise Refused(400, "invalid_request", "the request body is not JSON; nothing was changed") from None
    if not isinstance(body, dict):
        raise Refused(400, "invalid_request", "the request body must be a JSON object; nothing was changed")
    return body


def create_app(backend: Backend, access: Access, security: TransportSecuritySettings, prefix: str = "",
               max_body: int = 256 * 1024) -> ASGIApp:
    """The browser's pages and API under ``prefix`` ("" or "/ui"), for ``backend`` as ``access`` says."""
    guard = TransportSecurityMiddleware(security)
    files = assets()

    async def checked(request: Request) -> Response | None:
        refused = await guard.validate_request(request, is_post=request.method == "POST")
        if refused is None:
            return None
        error, description = GUARD_REFUSALS.get(refused.status_code, ("forbidden", "refused"))
        return refusal(refused.status_code, error, description)

    def api(method: str, view: View) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await checked(request)
            if refused is not None:
                return refused
            try:
                caller = access.caller(request)
                call = Call(dict(request.query_params), request.path_params.get("memory_id", ""),
                            await _body(request, max_body) if method == "POST" else {})
                result = await anyio.to_thread.run_sync(view, backend, caller, call)
            except Refused as exc:
                return refusal(exc.status, exc.error, exc.description)
            except HeadroomError as exc:
                return refusal(*_status_of(exc), str(exc))
            return JSONResponse(result)
        return endpoint

    async def page(request: Request) -> Response:
        refused = await checked(request)
        if refused is not None:
            return refused
        name = request.path_params.get("name", "index.html")
        if name not in files:
            return refusal(404, "not_found", f"no such page: {request.url.path}")
        body, media_type = files[name]
        return Response(body, media_type=media_type)

    async def unknown_api(request: Request) -> Response:
        return (await checked(request)) or refusal(404, "not_found", f"no API route {request.method} {request.url.path}")

    routes = [Route(f"{prefix}{path}", api(method, view), methods=[method]) for method, path, view in API]
    routes += [Route(prefix + "/api/{rest:path}", unknown_api, methods=["GET", "POST"]),
               Route(f"{prefix}/", page, methods=["GET"]), Route(prefix + "/{name}", page, methods=["GET"])]
    if prefix:
        routes.append(Route(prefix, lambda request: RedirectResponse(f"{prefix}/"), methods=["GET"]))
    return _SecurityHeaders(Starlette(routes=routes))
