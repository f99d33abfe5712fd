"""The one process that owns a store.

Embedded Chroma is not safe for several processes writing one directory (stale HNSW per
process, long SQLite lock waits, compaction wedged by SIGKILL), and agents kill their
stdio servers at every session end. So one daemon per data dir holds an exclusive lock
(``daemon.lock``), the Chroma client, the warm embedder and the derived indexes, and serves
every other process over a unix socket that only the OS user can open. Writes run one at
a time on a single worker thread, which makes dedup decisions race-free (``remember``
requests queued behind one another share one commit); reads run beside it on threads of
their own. The daemon exits after ``idle_timeout`` seconds with no connected client.

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
import ctypes
import importlib
import json
import logging
import os
import signal
import threading
import time
from typing import Any, Callable

from . import methods
from .config import Settings
from .errors import HeadroomError, StoreLocked
from .frontdoor import SESSION
from .paths import DaemonPaths, StoreLock

log = logging.getLogger("headroom_mcp.daemon")

#: Largest request line (an ``import`` batch), bytes.
MAX_MESSAGE = 32 * 1024 * 1024
#: The requests that change nothing (``ping`` and the reads of ``methods.METHODS``): they run
#: beside each other and beside the one write at a time (writes stay serialised, which keeps
#: dedup decisions race-free).
READS = methods.READS | {"ping"}
#: Threads that run reads beside the writer: enough for the cores to stay busy while a
#: read waits on Chroma's SQLite.
READERS = 4
#: Most ``remember`` requests written in one commit (``store.staging``).
GROUP = 32
#: How often the daemon purges old tombstones and expired turn memories, seconds.
PURGE_EVERY = 600.0
#: A daemon whose store failed to open waits this long for a client to tell, then exits.
FAILED_LINGER = 2.0
#: Freed memory is handed back to the OS once store calls have paused this long, seconds.
TRIM_AFTER = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Return the C heap's free pages to the OS.

    glibc keeps freed memory for reuse, and the daemon's heaps are shared by onnxruntime,
    Chroma's Rust core, the Go secret scanner and Python: after a store opens (the model's
    weights are folded from int8 to float32 through temporary copies) or a burst of writes,
    tens to hundreds of MB sit free inside them, fragmented, and count against the
    daemon's RSS for as long as it lives (bench/results/rss.md). ``malloc_trim`` gives
    them back; it takes 5-40 ms at 10,000 memories, so it runs once the daemon has gone quiet.
    """
    if _TRIM is not None:
        _TRIM(0)


class Reopen(Exception):
    """The store retired its Chroma client: drop the connection unanswered, so the client
    (or front door) sends the request again to a fresh daemon (one that reopened the store)."""


def open_store(settings: Settings):
    """Open the store the settings describe (the caller must hold the lock); concurrent
    requests' texts are embedded together (``batching``)."""
    from .store.batching import Coalescing
    from .store.embedder import embedder_from_env
    from .store.memory_store import MemoryStore

    embedder = Coalescing(embedder_from_env(dict(settings.env) or None))
    return MemoryStore.open(embedder, data_dir=settings.data_dir, chroma_url=settings.chroma_url or None,
                            turn_ttl=settings.turn_ttl, secrets_policy=settings.secrets,
                            forget_retention=settings.forget_retention, min_free=settings.min_free)


def error_payload(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, HeadroomError):
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "HeadroomError", "message": f"internal error: {type(exc).__name__}: {exc}"}


class Daemon:
    """Serves one store on a unix socket until idle."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.paths = DaemonPaths.for_data_dir(settings.data_dir)
        self.lock = StoreLock(self.paths.lock)
        # One writer: every write is serialised, so merges of the same fact cannot race. Reads
        # run beside it on their own threads (the indexes and onnxruntime release the GIL).
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.readers = concurrent.futures.ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read")
        #: Set once the store is open, or failed to: reads wait for it (writes queue behind it).
        self._opened = threading.Event()
        #: ``remember`` requests waiting for the next group commit: (params, context, future).
        self._remembers: list[tuple[Any, Any, concurrent.futures.Future]] = []
        self._group_lock = threading.Lock()
        self.store: Any = None
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
        self._housekeeper: asyncio.Task | None = None
        #: Exit when idle; off when an MCP HTTP server in this process is the real client.
        self.idle_exit = True
        #: Why the store did not open: every request is answered with it, then the daemon
        #: exits, so the next call tries again in a fresh process (the cause may be gone).
        self.open_error: HeadroomError | None = None

    # -- store work (worker thread) --

    def _open(self) -> None:
        """Open the store; on failure, record why before any queued request runs (same worker)."""
        t = time.perf_counter()
        try:
            store = open_store(self.settings)
            store.embedder.embed(["warm up"])
            health = store.check()  # derived indexes match the collection, or are rebuilt
        except Exception as exc:
            self.open_error = exc if isinstance(exc, HeadroomError) else HeadroomError(
                f"could not open the store in {self.paths.data_dir}: {type(exc).__name__}: {exc} (see {self.paths.log})")
            raise
        else:
            self.store = store
            release_memory()
        finally:
            self._opened.set()
        log.info("store open in %.2fs: %s", time.perf_counter() - t, health)

    def _submit(self, method: Any, params: Any, context: Any) -> concurrent.futures.Future:
        """Queue one request: a read on the readers, a ``remember`` in the next group commit,
        anything else on the one writer."""
        if method == "remember":
            future: concurrent.futures.Future = concurrent.futures.Future()
            with self._group_lock:
                self._remembers.append((params, context, future))
                if len(self._remembers) == 1:  # else a group already queued will take it
                    self.worker.submit(self._remember_group)
            return future
        executor = self.readers if method in READS else self.worker
        return executor.submit(self._handle, method, params, context)

    def _remember_group(self) -> None:
        """Run the ``remember`` requests queued by now as one commit (``store.staging``), on the
        writer: decided one by one, written together, answered only once written."""
        with self._group_lock:
            group, self._remembers = self._remembers[:GROUP], self._remembers[GROUP:]
            more = bool(self._remembers)
        group = [entry for entry in group if entry[2].set_running_or_notify_cancel()]  # a caller gone is not run
        answers: dict[concurrent.futures.Future, tuple[Any, BaseException | None]] = {}
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
            retired = self.store is not None and exc is self.store.retired
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
                    self.worker.submit(self._remember_group)
                except RuntimeError:  # the daemon is shutting down: answer what waits
                    with self._group_lock:
                        left, self._remembers = self._remembers, []
                    for _, _, future in left:
                        if future.set_running_or_notify_cancel():
                            future.set_exception(HeadroomError("the store daemon is shutting down; nothing was stored"))

    def _commit(self, contents: list[Any]) -> contextlib.AbstractContextManager:
        """The store's ``one_commit``, or nothing when there is no usable store (every request
        then fails in ``_handle`` with the reason)."""
        self._opened.wait()
        if self.store is None or self.store.retired is not None:
            return contextlib.nullcontext()
        return self.store.one_commit(contents)

    def _handle(self, method: Any, params: Any, context: Any) -> dict[str, Any]:
        from .service import dispatch

        self._opened.wait()
        self._handled += 1
        self._handled_at = time.monotonic()
        if self.open_error is not None:
            raise self.open_error
        if self.store.retired is not None:
            raise Reopen() if self.idle_exit else self.store.retired
        if method == "ping":
            return {"pid": os.getpid(), "data_dir": str(self.paths.data_dir), "uptime": round(time.time() - self.started, 3),
                    "clients": self.clients, "requests": self.requests, "records": self.store.count()}
        return dispatch(self.store, method, params, context)

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
            sessions = await loop.run_in_executor(self.worker, importlib.import_module, "headroom_mcp.sessions")
            await sessions.host(self, hello, reader, writer)
        except HeadroomError as exc:
            writer.write(json.dumps({"id": hello.get("id"), "error": error_payload(exc)}).encode() + b"\n")
            await writer.drain()
        self.exit_if_broken()  # a session ended unanswered (Reopen) by a store that broke

    def exit_if_broken(self) -> bool:
        """Must this daemon make way for a fresh one (only when it runs on its own)? If so, it
        starts exiting, so that the next call reopens the store in a new process. Called on
        the event loop once an answer is written (an exit cancels what is not written yet)."""
        broken = self.open_error or (self.store.retired if self.store is not None else None)
        if not (self.idle_exit and broken is not None):
            return False
        self._exit_soon(f"the store is not usable ({broken}): exiting so that the next call reopens it")
        return True

    def _exit_soon(self, why: str) -> None:
        if self._stop is not None and not self._stop.is_set():
            log.warning(why)
            self._stop.set()

    def _idle_limit(self) -> float:
        return FAILED_LINGER if self.open_error is not None else self.settings.idle_timeout

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
            elif self.store is not None and time.monotonic() - last_purge >= PURGE_EVERY:
                last_purge = time.monotonic()
                with contextlib.suppress(Exception):
                    purged = await loop.run_in_executor(self.worker, self.store.purge)
                    if purged:
                        log.info("purged %d retired records", purged)
            elif self._handled != self._released and time.monotonic() - self._handled_at >= TRIM_AFTER:
                # On the worker, so it never runs in the middle of a write (malloc_trim takes
                # the allocator's locks, so a read beside it only waits a moment).
                self._released = self._handled
                await loop.run_in_executor(self.worker, release_memory)

    async def start(self) -> None:
        """Open the store and serve the socket; the caller holds the lock."""
        loop = asyncio.get_running_loop()
        self._stop = self._stop or asyncio.Event()
        # The store opens on the worker first; requests queue behind it, so the socket can
        # accept connections at once and nobody sees a half-open store.
        opening = loop.run_in_executor(self.worker, self._open)
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
        """Stop serving the socket (the store closes with the worker)."""
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

    def serve(self) -> int:
        """Run until idle or signalled. Returns 0, or 3 when another daemon owns the store."""
        self.paths.prepare()
        try:
            self.lock.acquire()
        except StoreLocked:
            log.info("another daemon owns %s; exiting", self.paths.data_dir)
            return 3
        try:
            asyncio.run(self._run())
        finally:
            self.close()
        return 0

    def close(self) -> None:
        """Let queued requests finish (the store closes with its threads), then free the lock."""
        self.readers.shutdown(wait=True)
        self.worker.shutdown(wait=True)
        self.lock.release()


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
