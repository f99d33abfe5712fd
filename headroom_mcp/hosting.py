"""``serve --transport sse|http``: the MCP server inside the process that owns the store.

The process takes the data dir's lock and runs the daemon in itself, so local hooks, the
CLI and stdio servers keep reaching the same store through its socket while MCP clients
use HTTP. When a daemon already owns the store (started on demand by an agent), the HTTP
server forwards its tools to that daemon instead of failing.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio

from .config import Settings
from .daemon import Daemon
from .errors import HeadroomError, StoreLocked
from .server import Backend, build_server

log = logging.getLogger("headroom_mcp.hosting")

DEFAULT_PORT = 8765


#: The loopback names the MCP SDK's DNS-rebinding protection covers.
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve_http(settings: Settings, transport: Literal["sse", "http"], host: str = "127.0.0.1", port: int = DEFAULT_PORT,
               no_auth: bool = False) -> int:
    """Serve MCP over SSE or streamable HTTP until interrupted.

    Without bearer tokens (team mode, not in this version) anyone who can reach the port
    can read and write the memories, so the server needs ``no_auth`` said explicitly and
    binds to loopback only.
    """
    if host not in LOOPBACK:
        raise HeadroomError(
            f"refusing to serve on {host}: beyond loopback the server needs bearer-token auth "
            f"(team mode), which this version does not have yet; use --host {' or '.join(LOOPBACK)}"
        )
    if not no_auth:
        raise HeadroomError(
            "serving over HTTP without authentication lets any local user read and write these memories; "
            "this version has no tokens yet, so say --no-auth to accept that on loopback"
        )
    daemon = Daemon(settings)
    daemon.idle_exit = False
    daemon.paths.prepare()
    try:
        daemon.lock.acquire()
        owner = True
    except StoreLocked:
        owner = False
    backend: Backend
    if owner:
        backend = daemon
    else:
        from .client import DaemonClient

        log.warning("a daemon already owns %s: forwarding to it", settings.data_dir)
        backend = DaemonClient(settings)
    server = build_server(backend, settings)

    async def run() -> None:
        if owner:
            await daemon.start()
        try:
            if transport == "sse":
                await server.run_sse_async(host=host, port=port)
            else:
                await server.run_streamable_http_async(host=host, port=port)
        finally:
            if owner:
                await daemon.stop()

    try:
        anyio.run(run)
    finally:
        if owner:
            daemon.worker.shutdown(wait=True)
            daemon.lock.release()
    return 0
