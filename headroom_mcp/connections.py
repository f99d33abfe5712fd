"""HTTP connection limits uvicorn lacks: a deadline to send a request, and a connection cap.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits forever for
a request's headers and body, and accepts connections until the process runs out of file
descriptors (its ``limit_concurrency`` answers 503 only once a request's headers have
arrived, with the descriptor already taken). Then clients that connect and send nothing,
or half a request, lock everyone out: ``/healthz`` and authenticated calls wait in the
listen queue until they leave. ``guarded_protocol`` is the protocol uvicorn would pick,
with two rules added:

- **read deadline**: a client has ``read_timeout`` seconds, from connecting (or from the
  previous answer on a kept-alive connection) to the last byte of its request, headers
  and body; one still sending then is dropped. Answers and streams (SSE) are not limited.
- **cap**: at most ``max_connections`` are open. A new one past the cap closes the oldest
  connection still waiting for its request (a slow or idle client: a real one sends its
  request at once, so it is never the oldest waiting); when every connection is busy with
  a request, the new one is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .errors import HeadroomError

log = logging.getLogger("headroom_mcp.connections")

#: File descriptors kept for everything but HTTP connections: the store (Chroma's SQLite and
#: index files, about 10), the model, the log, the daemon socket and its local clients (one
#: per stdio server or hook running), the event loop. A server uses about 30.
FD_RESERVE = 128
#: Fewer connections than this is not a usable server.
MIN_CONNECTIONS = 16
_AT_CAPACITY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\n"
                b"retry-after: 1\r\nconnection: close\r\n\r\nserver at capacity\r\n")


class _Guarded(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol with the read deadline and the cap (see the module)."""

    max_connections = 512
    read_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        #: When this connection began waiting for a request (None: not waiting).
        self._waiting_since: float | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        if len(self.connections) >= self.max_connections and not self._evict_oldest_waiting():
            self._refused = True
            transport.write(_AT_CAPACITY)
            transport.close()
            return
        super().connection_made(transport)
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_since is not None and self._request_read():
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._request_read():
            self._await_request()  # kept alive: the next request has the same deadline

    def _request_read(self) -> bool:
        """Has the newest request arrived whole (headers and body) and not been answered yet?"""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _await_request(self) -> None:
        self._stop_waiting()
        self._waiting_since = time.monotonic()
        self._deadline = self.loop.call_later(self.read_timeout, self._drop)

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_since = None

    def _drop(self) -> None:
        """The deadline passed with the request still incomplete: free the connection."""
        log.info("dropping %s: no whole request in %.0fs", self.client, self.read_timeout)
        self._stop_waiting()
        self.connections.discard(self)
        self.transport.close()

    def _evict_oldest_waiting(self) -> bool:
        """Close the connection that has waited longest for a request; False when none waits."""
        waiting = [c for c in self.connections if isinstance(c, _Guarded) and c._waiting_since is not None]
        if not waiting:
            return False
        victim = min(waiting, key=lambda c: c._waiting_since or 0.0)
        log.info("at %d connections: closing %s, the longest waiting for a request", self.max_connections, victim.client)
        victim._drop()
        return True


def guarded_protocol(max_connections: int, read_timeout: float) -> type:
    """The protocol class to give ``uvicorn.Config(http=...)`` for these limits."""
    return type("GuardedHTTPProtocol", (_Guarded,), {"max_connections": fit_to_fd_limit(max_connections),
                                                       "read_timeout": read_timeout})


def fit_to_fd_limit(max_connections: int) -> int:
    """The connection cap this process's open-file limit (RLIMIT_NOFILE) allows.

    Each connection is a file descriptor, and running out of them stops every accept. The
    soft limit is raised to the hard one (unused descriptors cost nothing, and a burst of
    connections is accepted before the cap can close the extra ones), and the cap lowered,
    with a warning, when even that is not enough.
    """
    want = max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        raised = max(soft, want) if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= want:
        return max_connections
    fitted = soft - FD_RESERVE
    if fitted < MIN_CONNECTIONS:
        raise HeadroomError(f"the open-file limit ({soft}, ulimit -n) leaves room for {max(fitted, 0)} HTTP connections; "
                            f"raise it to at least {MIN_CONNECTIONS + FD_RESERVE}")
    log.warning("serving at most %d connections, not %d: the open-file limit is %d (raise ulimit -n for more)",
                fitted, max_connections, soft)
    return fitted
