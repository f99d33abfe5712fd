"""Where a data dir's daemon lives: its lock, socket and log, and the lock itself.

Kept apart from the daemon so that clients (hooks run on every prompt) can find the
socket without importing asyncio or the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import StoreLocked, UnsafeSocketDir

_SUN_PATH_MAX = 100


def short_socket_dir() -> Path:
    """Where a socket goes when the data dir's path is too long for one (~107 bytes).

    ``$XDG_RUNTIME_DIR`` first: the session's own directory, private to the user by
    specification. Else a per-uid directory in the shared temp dir, which another local
    user could create first; ``check_private_dir`` refuses it then.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "headroom-mcp"
    return Path(tempfile.gettempdir()) / f"headroom-mcp-{os.getuid()}"


def check_private_dir(directory: Path) -> None:
    """Refuse a socket directory another OS user could reach (see ``UnsafeSocketDir``).

    ``lstat``, not ``stat``: a symlink there could point anywhere, even at a directory of
    ours, after being swapped by whoever owns the link's parent.
    """
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return  # nothing to trust or distrust: the daemon creates it, a client finds no socket
    if stat.S_ISREG(info.st_mode):
        raise UnsafeSocketDir(f"{directory} is a file, not a directory: the data dir (--data-dir, HEADROOM_MCP_DATA_DIR) "
                              "must be a directory, or a path that does not exist yet")
    fix = "set XDG_RUNTIME_DIR or a shorter --data-dir so that the socket lives elsewhere"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        problem = f"it is not a plain directory (a symlink, or a special file); point --data-dir at the real directory, or {fix}"
    elif info.st_uid != os.getuid():
        problem = f"it belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); {fix}"
    elif info.st_mode & 0o077:
        problem = (f"its mode is {stat.S_IMODE(info.st_mode):04o}: other users may have placed a socket in it. "
                   f"If it is yours, make it private (chmod 700 {directory}), or {fix}")
    else:
        return
    raise UnsafeSocketDir(f"refusing the daemon socket directory {directory}: whoever controls it could answer "
                          f"in the store's place; {problem}")


@dataclass(frozen=True)
class DaemonPaths:
    """Files the daemon and its clients agree on for one data dir."""

    data_dir: Path
    lock: Path
    socket: Path
    log: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> DaemonPaths:
        data_dir = Path(data_dir).expanduser().resolve()
        sock = data_dir / "daemon.sock"
        if len(str(sock).encode()) > _SUN_PATH_MAX:
            # Unix socket paths are limited to ~107 bytes: use a private short dir instead.
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
            sock = short_socket_dir() / f"{digest}.sock"
        return cls(data_dir, data_dir / "daemon.lock", sock, data_dir / "daemon.log")

    def prepare(self) -> None:
        """Create the data dir and socket dir readable by the owner only, then check the
        socket dir (``UnsafeSocketDir``).

        The data dir is made private even when it exists (it is the user's own, and holds
        the store). A separate socket dir that exists is never repaired, only checked: a
        listener planted in it before a chmod would keep answering.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):
            os.chmod(self.data_dir, 0o700)
        if self.socket.parent != self.data_dir:
            with contextlib.suppress(FileExistsError):
                self.socket.parent.mkdir(mode=0o700)
                os.chmod(self.socket.parent, 0o700)  # exactly 0700, whatever the umask
        self.check_socket_dir()

    def check_socket_dir(self) -> None:
        """Raise ``UnsafeSocketDir`` unless only this user can reach the socket's directory."""
        check_private_dir(self.socket.parent)


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

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
