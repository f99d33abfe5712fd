"""Where a data dir's daemon lives: its lock, socket and log, and the lock itself.

Kept apart from the daemon so that clients (hooks run on every prompt) can find the
socket without importing asyncio or the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import StoreLocked

_SUN_PATH_MAX = 100


@dataclass(frozen=True)
class DaemonPaths:
    """Files the daemon and its clients agree on for one data dir."""

    data_dir: Path
    lock: Path
    socket: Path
    log: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "DaemonPaths":
        data_dir = Path(data_dir).expanduser().resolve()
        sock = data_dir / "daemon.sock"
        if len(str(sock).encode()) > _SUN_PATH_MAX:
            # Unix socket paths are limited to ~107 bytes: use a private short dir instead.
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
            short = Path(tempfile.gettempdir()) / f"headroom-mcp-{os.getuid()}"
            sock = short / f"{digest}.sock"
        return cls(data_dir, data_dir / "daemon.lock", sock, data_dir / "daemon.log")

    def prepare(self) -> None:
        """Create the data dir and socket dir readable by the owner only."""
        for directory in {self.data_dir, self.socket.parent}:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(PermissionError):
                os.chmod(directory, 0o700)


class StoreLock:
    """An exclusive, non-blocking ``flock`` on the data dir, released when the process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, write_pid: bool = True) -> None:
        """Take the lock, and record our pid in it (``write_pid=False``: a probe, see ``client``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreLocked(f"another process owns the store in {self.path.parent} (lock {self.path})") from None
        if write_pid:
            # On a full disk the pid may not fit; the lock is what matters, so we serve anyway.
            with contextlib.suppress(OSError):
                os.ftruncate(handle.fileno(), 0)
                os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
