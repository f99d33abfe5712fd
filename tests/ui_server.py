"""Starting the memory browser for the tests: a real ``headroom-mcp ui`` process on loopback,
over a real daemon in a temp data dir (module-scoped: the model loads once per file)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import kill_daemon
from test_server import EXE, free_port

P = "github.com/acme/atlas"
Q = "github.com/acme/other"
#: What an agent might write that a careless page would run: an image whose error handler
#: sets a flag, a script that sets it, and a link with a javascript: URL.
XSS = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
       '<a href="javascript:window.__pwned=3">click</a> the deploy notes')


class UiServer:
    """A ``headroom-mcp ui --no-open`` process; ``url`` is the printed URL, token included."""

    def __init__(self, data_dir: Path, env: dict[str, str]):
        self.data_dir = data_dir
        self.port = free_port()
        self.log = data_dir.parent / f"ui-{self.port}.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([EXE, "ui", "--no-open", "--port", str(self.port)], stdout=subprocess.PIPE,
                                         stderr=err, env={**os.environ, **env}, text=True)
        first = self.proc.stdout.readline()  # the daemon starts first (model load): a few seconds
        second = self.proc.stdout.readline()
        assert second.startswith("http://127.0.0.1:"), (first, second, self.log.read_text())
        self.url = second.strip()
        self.base = self.url.split("#")[0].rstrip("/")
        self.token = self.url.split("#token=")[1]

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token if token is None else token}"}

    def get(self, path: str, token: str | None = None, **kw) -> httpx.Response:
        return httpx.get(self.base + path, headers={**self.headers(token), **kw.pop("headers", {})}, timeout=60, **kw)

    def post(self, path: str, body: object, token: str | None = None, **kw) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers={**self.headers(token), **kw.pop("headers", {})}, timeout=60, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def store_env(data_dir: Path) -> dict[str, str]:
    """The environment a local user's processes share: the data dir, user and project."""
    return {"HEADROOM_MCP_DATA_DIR": str(data_dir), "HEADROOM_MCP_IDLE_TIMEOUT": "300", "HEADROOM_MCP_USER": "alice",
            "HEADROOM_MCP_PROJECT": P}


@contextlib.contextmanager
def local_store(tmp: Path) -> Iterator[Path]:
    """A data dir set in this process's environment (so ``SyncMemory()`` reaches it), its daemon
    stopped at the end."""
    data_dir = tmp / "store"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in store_env(data_dir).items():
            mp.setenv(key, value)
        try:
            yield data_dir
        finally:
            kill_daemon(data_dir)
