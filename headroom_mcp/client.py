"""How every process other than the owner reaches the store: through the local daemon.

``DaemonClient.call`` connects to the data dir's socket, starting the daemon (detached,
under the lock) when none answers; when three clients start one at the same instant, the
lock lets exactly one daemon live and all three connect to it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from .config import Settings
from .errors import ERRORS_BY_NAME, DaemonUnavailable, HeadroomError
from .paths import DaemonPaths

#: How long a client waits for a daemon it started to accept connections (model load included).
START_TIMEOUT = 60.0
#: Per-request timeout; an import batch or a first request on a cold store can be slow.
REQUEST_TIMEOUT = 300.0
#: Pause after each failed attempt at a request whose connection broke; one attempt per entry.
RETRY_PAUSES = (0.05, 0.2, 0.5, 1.0, 0.0)


def spawn_daemon(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``headroom-mcp daemon`` for this data dir, detached from our session and stdio."""
    paths = DaemonPaths.for_data_dir(settings.data_dir)
    paths.prepare()
    env = {**os.environ, **settings.to_env()}  # it opens the store as this process would have
    process = subprocess.Popen(
        [sys.executable, "-m", "headroom_mcp", "daemon", "--data-dir", str(paths.data_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env=env, cwd=str(paths.data_dir),
    )
    # Reap it when it exits so a long-lived client leaves no zombie behind.
    threading.Thread(target=process.wait, daemon=True).start()
    return process


def store_owned(paths: DaemonPaths) -> bool:
    """Does some process hold the data dir's lock (a daemon starting, serving or exiting)?"""
    from .errors import StoreLocked
    from .paths import StoreLock

    probe = StoreLock(paths.lock)
    try:
        probe.acquire(write_pid=False)
    except StoreLocked:
        return True
    probe.release()
    return False


class DaemonClient:
    """A connection to the daemon that owns ``settings.data_dir``; thread-safe, reconnecting."""

    def __init__(self, settings: Settings, autostart: bool = True, start_timeout: float = START_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT):
        """Timeouts: callers on an agent's critical path (hooks) pass small ones."""
        self.settings = settings
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.paths = DaemonPaths.for_data_dir(settings.data_dir)
        self.autostart = autostart
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _connect_once(self) -> socket.socket:
        """One connection attempt; ``UnsafeSocketDir`` (not an ``OSError``, so never retried
        and no daemon started) when another user could be listening in the daemon's place."""
        self.paths.check_socket_dir()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.request_timeout)
        try:
            sock.connect(str(self.paths.socket))
        except OSError:
            sock.close()
            raise
        return sock

    def connect(self) -> None:
        """Connect, starting the daemon if nobody answers."""
        if self._sock is None:
            self._sock = self.open()

    def open(self) -> socket.socket:
        """A new connection to the daemon, which is started if nobody answers (``connect``
        keeps one for ``call``; a front door holds its own for an MCP session)."""
        try:
            return self._connect_once()
        except OSError:
            if not self.autostart:
                raise DaemonUnavailable(f"no daemon is serving {self.paths.data_dir}") from None
        process = spawn_daemon(self.settings)
        deadline = time.monotonic() + self.start_timeout
        delay = 0.01
        while time.monotonic() < deadline:
            try:
                return self._connect_once()
            except OSError:
                # Our daemon may have lost the lock race (exit 3): keep waiting for the winner,
                # unless the winner was a daemon on its way out (it exits to reopen a store
                # that failed): then nobody holds the lock, and we start another.
                code = process.poll()
                if code == 3 and not store_owned(self.paths):
                    process = spawn_daemon(self.settings)
                elif code not in (None, 3):
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        raise DaemonUnavailable(f"the store daemon for {self.paths.data_dir} did not start; see {self.paths.log}")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = b""

    def _exchange(self, message: bytes) -> dict[str, Any]:
        assert self._sock is not None
        self._sock.sendall(message)
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("daemon closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, method: str, params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its result, raising the daemon's error as ours.

        A connection broken before the answer (daemon killed or restarted) is re-made and
        the request sent again, a few times with a short back-off: a killed daemon's socket
        can still accept a connection for a moment while the process is torn down. Writes
        are safe to repeat, since a repeated ``remember`` merges into the memory it created.
        A request that times out is not repeated.
        """
        request = {"id": next(self._ids), "method": method, "params": dict(params or {}),
                   "context": dict(context if context is not None else self.settings.context().to_mapping())}
        message = json.dumps(request).encode() + b"\n"  # ASCII escapes carry even lone surrogates to the validator
        with self._lock:
            for attempt, pause in enumerate(RETRY_PAUSES):
                try:
                    self.connect()
                    response = self._exchange(message)
                    break
                except TimeoutError as exc:
                    self.close()
                    raise DaemonUnavailable(f"the store daemon for {self.paths.data_dir} did not answer in {self.request_timeout:.0f}s") from exc
                except (OSError, ValueError) as exc:
                    self.close()
                    if attempt == len(RETRY_PAUSES) - 1:
                        raise DaemonUnavailable(f"lost the store daemon for {self.paths.data_dir}: {exc}") from None
                    time.sleep(pause)
        error = response.get("error")
        if error:
            raise ERRORS_BY_NAME.get(error.get("type"), HeadroomError)(error.get("message", "unknown error"))
        result: dict[str, Any] = response["result"]
        return result

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
