"""MCP sessions that the daemon hosts for the stdio front doors, and the handshake manifest.

An agent spawns ``headroom-mcp serve`` (``frontdoor``), a stdlib-only process that answers
the handshake at once from ``manifest.json`` and pipes every other message to the daemon
over its socket. The daemon runs the real MCP server (``server.build_server``, the SDK) on
each such connection, as the identity the front door resolved, and its tools call the
store directly. So the SDK is imported once per machine, in a process that stays warm,
instead of once per agent session in the process the agent waits for.

``manifest()`` asks that same server for the handshake answers, one per protocol version
it negotiates; ``python -m headroom_mcp.sessions --write`` stores them and a test checks that the
stored file is what the server answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.stdio import stdio_server

from . import __version__
from .config import Settings
from .frontdoor import MANIFEST, STATIC_METHODS
from .server import build_server
from .store.scopes import Context

if TYPE_CHECKING:
    from .daemon import Daemon

#: Protocol versions the manifest is asked for beyond the SDK's own: one nobody speaks, so
#: the manifest records the server's counter-offer too.
_UNKNOWN_VERSION = "1970-01-01"


class _Lines:
    """An async iterator of text lines over an asyncio reader (what ``stdio_server`` reads)."""

    def __init__(self, next_line: Callable[[], Awaitable[bytes]]):
        self._next_line = next_line

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._next_line()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class _Output:
    """The ``write``/``flush`` pair ``stdio_server`` writes to, over a callable taking bytes."""

    def __init__(self, write: Callable[[bytes], Any], drain: Callable[[], Awaitable[None]]):
        self._write, self._drain = write, drain

    async def write(self, text: str) -> None:
        self._write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._drain()


async def _serve(server: Any, lines: _Lines, output: _Output) -> None:
    """Run one MCP session of ``server`` over line streams until the input ends."""
    lowlevel = server._lowlevel_server  # the SDK runs a session on given streams only from here
    async with stdio_server(lines, output) as (read_stream, write_stream):  # type: ignore[arg-type]
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def _identity(daemon_settings: Settings, hello: dict[str, Any]) -> Settings:
    """The settings a session's tools run as: the daemon's store, the front door's identity."""
    context = Context.from_mapping(hello.get("context") or {})  # validated like every request's
    return dataclasses.replace(daemon_settings, user_id=context.user_id, project=context.project,
                               session_id=context.session_id, agent_id=str(hello.get("agent") or ""))


class _DaemonBackend:
    """The tools' backend inside the daemon: the store's threads, as a front door's session."""

    def __init__(self, daemon: Daemon, abort: Callable[[], object]):
        self.daemon, self.abort = daemon, abort
        #: A store call was made since the last answer went out (see ``host``).
        self.called = False

    def call(self, method: str, params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        from .daemon import Reopen

        self.called = True
        try:
            return self.daemon.call(method, params, context)
        except Reopen:
            # The store retired its client: end the session unanswered, so the front door
            # sends the request again to a fresh daemon that reopened the store.
            self.abort()
            raise


async def host(daemon: Daemon, hello: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve the MCP session a front door opened with ``hello`` on this connection: accepted
    (the front door sends nothing else before) once its identity is checked, or refused by
    the ``InvalidInput`` raised here."""
    loop = asyncio.get_running_loop()
    settings = _identity(daemon.settings, hello)
    backend = _DaemonBackend(daemon, lambda: loop.call_soon_threadsafe(writer.transport.abort))
    server = build_server(backend, settings)
    writer.write(json.dumps({"id": hello.get("id"), "result": {"session": True}}).encode() + b"\n")

    def write(data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    async def drain() -> None:
        if not writer.is_closing():
            await writer.drain()
        if backend.called:  # an answer from the store is out: a store that broke can make way now
            backend.called = False
            daemon.exit_if_broken()

    await _serve(server, _Lines(reader.readline), _Output(write, drain))


async def _answers(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The real server's answers to ``requests`` (sent one at a time), as a client reads them."""
    server = build_server(_NoStore(), Settings(data_dir=Path("."), user_id="manifest"))
    send, receive = anyio.create_memory_object_stream[bytes](len(requests) + 1)
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    buffer = bytearray()

    def write(data: bytes) -> None:
        buffer.extend(data)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            answers.put_nowait(json.loads(line))

    async def drain() -> None:
        return None

    async def lines() -> bytes:
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            return b""

    results: list[dict[str, Any]] = []

    async def ask() -> None:
        async with send:
            for request in requests:
                await send.send(json.dumps(request).encode() + b"\n")
                if "id" in request:
                    results.append(await answers.get())

    async with anyio.create_task_group() as group:
        group.start_soon(_serve, server, _Lines(lines), _Output(write, drain))
        await ask()
    return results


class _NoStore:
    """The backend of the server asked for the manifest: listing tools never calls it."""

    def call(self, method: str, params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"the manifest's server has no store (asked for {method})")


def manifest() -> dict[str, Any]:
    """The handshake answers of the real server: per offered protocol version, the version it
    agrees to, its ``initialize`` result and the result of each of ``STATIC_METHODS``."""
    from mcp_types.version import KNOWN_PROTOCOL_VERSIONS

    answers: dict[str, Any] = {}
    offers: dict[str, str] = {}
    for offered in (*KNOWN_PROTOCOL_VERSIONS, _UNKNOWN_VERSION):
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": offered, "capabilities": {}, "clientInfo": {"name": "manifest", "version": "0"}}}
        requests: list[dict[str, Any]] = [init, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
        requests += [{"jsonrpc": "2.0", "id": n, "method": method} for n, method in enumerate(sorted(STATIC_METHODS), 2)]
        replies = asyncio.run(_answers(requests))
        if "result" not in replies[0]:
            continue  # a version the handshake does not reach (per-request envelope)
        agreed = replies[0]["result"]["protocolVersion"]
        offers[offered] = agreed
        answers[agreed] = {"initialize": replies[0]["result"],
                           **{method: reply.get("result") for method, reply in zip(sorted(STATIC_METHODS), replies[1:])}}
    return {"server_version": __version__, "offers": {k: offers[k] for k in offers if k != _UNKNOWN_VERSION},
            "counter_offer": offers.get(_UNKNOWN_VERSION), "answers": answers}


def write_manifest(path: Path = MANIFEST) -> Path:
    """Store ``manifest()`` where the front door reads it."""
    path.write_text(json.dumps(manifest(), indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m headroom_mcp.sessions --write")
    print(write_manifest())
