"""The one process that owns a store.

Embedded Chroma is not safe for several processes writing one directory (stale HNSW per
process, long SQLite lock waits, compaction wedged by SIGKILL), and agents kill their
stdio servers at every session end. So one daemon per data dir owns the store
(``owner.StoreOwner``: the exclusive ``daemon.lock``, the Chroma client, the warm embedder
and the derived indexes), and serves every other process over a unix socket that only the
OS user can open. Writes run one at a time on the owner's single worker thread, which
makes dedup decisions race-free (``remember`` requests queued behind one another share one
commit); reads run beside it on threads of their own. The daemon exits after ``idle_timeout`` seconds with no connected client.

Wire protocol: one JSON object per line each way.
request  ``{"id": 1, "method": "remember", "params": {...}, "context": {"user_id": ...}}``
response ``{"id": 1, "result": {...}}`` or ``{"id": 1, "error": {"type": "InvalidInput", "message": "..."}}``
A connection whose first request is ``{"method": "mcp-session", "context": {...}, "agent": ...}``
carries one MCP session from then on: a stdio front door's, served by the real MCP server
in this process (``sessions``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import json
import logging
import os
import signal
import threading
import time
from typing import Any

from . import methods
from .config import Settings
from .errors import HeadroomError, StoreLocked
from .frontdoor import SESSION
from .owner import StoreOwner, release_memory
from .paths import DaemonPaths

log = logging.getLogger("headroom_mcp.daemon")

#: Largest request line (an ``import`` batch), bytes.
MAX_MESSAGE = 32 * 1024 * 1024
#: The requests that change nothing (``ping`` and the reads of ``methods.METHODS``): they run
#: beside each other and beside the one write at a time (writes stay serialised, which keeps
#: dedup decisions race-free).
READS = methods.READS | {"ping"}
#: Most ``remember`` requests written in one commit (``store.staging``).
GROUP = 32
#: How often the daemon purges old tombstones and expired turn memories, seconds.
PURGE_EVERY = 600.0
#: A daemon whose store failed to open waits this long for a client to tell, then exits.
FAILED_LINGER = 2.0
#: Freed memory is handed back to the OS once store calls have paused this long, seconds.
TRIM_AFTER = 1.0


class Reopen(Exception):
    """The store retired its Chroma client: drop the connection unanswered, so the client
    (or front door) sends the request again to a fresh daemon (one that reopened the store)."""


def error_payload(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, HeadroomError):
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "HeadroomError", "message": f"internal error: {type(exc).__name__}: {exc}"}


class Daemon:
    """Serves one store on a unix socket until idle."""

    def __init__(self, owner: StoreOwner, idle_exit: bool = True):
        """``idle_exit``: exit when idle, and make way for a fresh daemon when the store breaks;
        off when an MCP HTTP server in this process is the real client."""
        self.owner = owner
        self.settings = owner.settings
        self.paths = owner.paths
        self.idle_exit = idle_exit
        #: ``remember`` requests waiting for the next group commit: (params, context, future).
        self._remembers: list[tuple[Any, Any, concurrent.futures.Future[dict[str, Any]]]] = []
        self._group_lock = threading.Lock()
        self.clients = 0
        self.last_activity = time.monotonic()
        self.started = time.time()
        self.requests = 0
        #: Store calls run (socket and in-process ones) and when the last began: freed
        #: memory is released once they pause, and not again until there were more.
        self._handled = 0
        self._handled_at = 0.0
        self._released = 0
        self._stop: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._housekeeper: asyncio.Task[None] | None = None

    # -- store work (owner's threads) --

    def _submit(self, method: Any, params: Any, context: Any) -> concurrent.futures.Future[dict[str, Any]]:
        """Queue one request: a read on the readers, a ``remember`` in the next group commit,
        anything else on the one writer."""
        if method == "remember":
            future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
            with self._group_lock:
                self._remembers.append((params, context, future))
                if len(self._remembers) == 1:  # else a group already queued will take it
                    self.owner.worker.submit(self._remember_group)
            return future
        executor = self.owner.readers if method in READS else self.owner.worker
        return executor.submit(self._handle, method, params, context)

    def _remember_group(self) -> None:
        """Run the ``remember`` requests queued by now as one commit (``store.staging``), on the
        writer: decided one by one, written together, answered only once written."""
        with self._group_lock:
            group, self._remembers = self._remembers[:GROUP], self._remembers[GROUP:]
            more = bool(self._remembers)
        group = [entry for entry in group if entry[2].set_running_or_notify_cancel()]  # a caller gone is not run
        answers: dict[concurrent.futures.Future[dict[str, Any]], tuple[Any, BaseException | None]] = {}
        try:
            with self._commit([p.get("content") for p, _, _ in group if isinstance(p, dict)]):
                for params, context, future in group:
                    try:
                        answers[future] = (self._handle("remember", params, context), None)
                    except Exception as exc:
                        answers[future] = (None, exc)
        except Exception as exc:
            # The commit failed. When its first write was stored and the client then retired
            # (the second write refused), what is stored is not what was answered: drop the
            # requests unanswered, so each is sent again to a fresh daemon (and merges there).
            retired = self.owner.store is not None and exc is self.owner.store.retired
            failure = Reopen() if retired and self.idle_exit else exc
            answers = {future: (None, failure) for _, _, future in group}
        finally:
            for _, _, future in group:
                result, error = answers.get(future, (None, HeadroomError("internal error: the write was not finished")))
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            if more:
                try:
                    self.owner.worker.submit(self._remember_group)
                except RuntimeError:  # the daemon is shutting down: answer what waits
                    with self._group_lock:
                        left, self._remembers = self._remembers, []
                    for _, _, future in left:
                        if future.set_running_or_notify_cancel():
                            future.set_exception(HeadroomError("the store daemon is shutting down; nothing was stored"))

    def _commit(self, contents: list[Any]) -> contextlib.AbstractContextManager[Any]:
        """The store's ``one_commit``, or nothing when there is no usable store (every request
        then fails in ``_handle`` with the reason)."""
        self.owner.opened.wait()
        store = self.owner.store
        if store is None or store.retired is not None:
            return contextlib.nullcontext()
        return store.one_commit(contents)

    def _handle(self, method: Any, params: Any, context: Any) -> dict[str, Any]:
        from .service import dispatch

        store = self.owner.ready()
        self._handled += 1
        self._handled_at = time.monotonic()
        if store.retired is not None:
            raise Reopen() if self.idle_exit else store.retired
        if method == "ping":
            return {"pid": os.getpid(), "data_dir": str(self.paths.data_dir), "uptime": round(time.time() - self.started, 3),
                    "clients": self.clients, "requests": self.requests, "records": store.count()}
        return dispatch(store, method, params, context)

    # -- asyncio side --

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(json.dumps({"id": None, "error": {"type": "InvalidInput", "message": "message too large"}}).encode() + b"\n")
                    await writer.drain()
                    return
                if not line:
                    return
                self.last_activity = time.monotonic()
                response: dict[str, Any]
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                except ValueError as exc:
                    response = {"id": None, "error": {"type": "InvalidInput", "message": f"bad request: {exc}"}}
                else:
                    if request.get("method") == SESSION:
                        await self._host_session(request, reader, writer)
                        return
                    try:
                        result = await asyncio.wrap_future(
                            self._submit(request.get("method"), request.get("params"), request.get("context") or {}))
                        response = {"id": request.get("id"), "result": result}
                    except Reopen:
                        self._exit_soon("the store retired its Chroma client after a failed write: exiting to reopen it")
                        return
                    except Exception as exc:  # every failure becomes an answer; the daemon keeps serving
                        if not isinstance(exc, HeadroomError):
                            log.exception("request %s failed", request.get("method"))
                        response = {"id": request.get("id"), "error": error_payload(exc)}
                    self.requests += 1
                writer.write(json.dumps(response, ensure_ascii=False).encode("utf-8", "replace") + b"\n")
                await writer.drain()
                self.last_activity = time.monotonic()
                if self.exit_if_broken():
                    return
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            self.clients -= 1
            self.last_activity = time.monotonic()
            with contextlib.suppress(Exception):
                writer.close()

    async def _host_session(self, hello: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve a front door's MCP session on this connection (see ``sessions``)."""
        loop = asyncio.get_running_loop()
        try:
            # Imported on the worker, after the store opened: the SDK and Chroma share
            # dependencies, and importing them in two threads at once is not safe.
            sessions = await loop.run_in_executor(self.owner.worker, importlib.import_module, "headroom_mcp.sessions")
            await sessions.host(self, hello, reader, writer)
        except HeadroomError as exc:
            writer.write(json.dumps({"id": hello.get("id"), "error": error_payload(exc)}).encode() + b"\n")
            await writer.drain()
        self.exit_if_broken()  # a session ended unanswered (Reopen) by a store that broke

    def exit_if_broken(self) -> bool:
        """Must this daemon make way for a fresh one (only when it runs on its own)? If so, it
        starts exiting, so that the next call reopens the store in a new process. Called on
        the event loop once an answer is written (an exit cancels what is not written yet)."""
        store = self.owner.store
        broken = self.owner.open_error or (store.retired if store is not None else None)
        if not (self.idle_exit and broken is not None):
            return False
        self._exit_soon(f"the store is not usable ({broken}): exiting so that the next call reopens it")
        return True

    def _exit_soon(self, why: str) -> None:
        if self._stop is not None and not self._stop.is_set():
            log.warning(why)
            self._stop.set()

    def _idle_limit(self) -> float:
        return FAILED_LINGER if self.owner.open_error is not None else self.settings.idle_timeout

    async def _housekeeping(self) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        last_purge = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(min(5.0, max(0.2, self._idle_limit() / 4)))
            idle = time.monotonic() - self.last_activity
            if self.idle_exit and self.clients == 0 and idle >= self._idle_limit():
                log.info("idle for %.0fs with no clients: exiting", idle)
                self._stop.set()
            elif self.owner.store is not None and time.monotonic() - last_purge >= PURGE_EVERY:
                last_purge = time.monotonic()
                with contextlib.suppress(Exception):
                    purged = await loop.run_in_executor(self.owner.worker, self.owner.store.purge)
                    if purged:
                        log.info("purged %d retired records", purged)
            elif self._handled != self._released and time.monotonic() - self._handled_at >= TRIM_AFTER:
                # On the worker, so it never runs in the middle of a write (malloc_trim takes
                # the allocator's locks, so a read beside it only waits a moment).
                self._released = self._handled
                await loop.run_in_executor(self.owner.worker, release_memory)

    async def start(self) -> None:
        """Open the store and serve the socket."""
        self._stop = self._stop or asyncio.Event()
        # The store opens on the worker first; requests queue behind it, so the socket can
        # accept connections at once and nobody sees a half-open store.
        opening = asyncio.wrap_future(self.owner.open())
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()  # stale: we hold the lock, so nobody serves it
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve_client, path=str(self.paths.socket), limit=MAX_MESSAGE)
        finally:
            os.umask(old_umask)
        log.info("daemon %d serving %s on %s", os.getpid(), self.paths.data_dir, self.paths.socket)
        try:
            await opening
        except Exception:
            log.exception("could not open the store")
            if not self.idle_exit:  # an HTTP server in this process: it cannot serve without a store
                self._server.close()
                raise
        self._housekeeper = asyncio.create_task(self._housekeeping())

    async def stop(self) -> None:
        """Stop serving the socket (the store closes with its owner)."""
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()

    def call(self, method: str, params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """Run one request on the store's threads from another thread of this process (an MCP
        session hosted here, or the HTTP server)."""
        self.last_activity = time.monotonic()
        try:
            return self._submit(method, params, context).result()
        finally:
            self.requests += 1
            self.last_activity = time.monotonic()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        await self.start()
        await self._stop.wait()
        await self.stop()

    @classmethod
    def serve(cls, settings: Settings, verbose: bool = False) -> int:
        """Own the store and serve it until idle or signalled, logging to the data dir's
        ``daemon.log``. Returns 0, or 3 when another daemon owns the store."""
        configure_logging(DaemonPaths.for_data_dir(settings.data_dir), verbose)
        try:
            owner = StoreOwner(settings)
        except StoreLocked:
            log.info("another daemon owns %s; exiting", settings.data_dir)
            return 3
        with owner:
            asyncio.run(cls(owner)._run())
        return 0


def configure_logging(paths: DaemonPaths, verbose: bool = False) -> None:
    """Log to the data dir's daemon.log (stderr is not seen by anyone once detached)."""
    paths.prepare()
    handler = logging.FileHandler(paths.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("chromadb", "httpx", "onnxruntime"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
