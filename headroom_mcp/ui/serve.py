"""``headroom-mcp ui``: the memory browser on loopback, over the local daemon.

Like every other CLI verb it is a client of the daemon that owns the store (started on
demand), so the browser sees exactly what the agents see and never opens the store itself.
It listens on a loopback address only, and a new random token, printed in the URL's
fragment (``#token=...``), guards the API: the fragment never leaves the browser in a
request line or a Referer, and the page moves it to the tab's sessionStorage at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import json
import os
import secrets
import socket
import sys
import webbrowser
from pathlib import Path

import uvicorn

from ..client import DaemonClient
from ..config import LOOPBACK, Settings
from ..errors import HeadroomError
from ..hosting import Limits, Uvicorn, transport_security
from .access import LocalAccess
from .app import create_app

#: The port tried first; another free one is taken when it is busy and no --port was given.
DEFAULT_PORT = 8766


def check_host(host: str) -> str | None:
    """Why ``host`` is refused (anything but loopback), or None."""
    if host in LOOPBACK:
        return None
    return (f"ui listens on loopback only ({', '.join(LOOPBACK)}), not {host}: the page reads and changes every memory "
            "you have. For a team, `headroom-mcp serve --transport http` serves the same pages at /ui behind bearer tokens")


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``host``: ``port``, else ``DEFAULT_PORT`` or, if that is taken, any free one."""
    address = "127.0.0.1" if host == "localhost" else host
    for candidate in ([port] if port else [DEFAULT_PORT, 0]):
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE and not port and candidate:
                continue
            raise HeadroomError(f"cannot listen on {host}:{candidate}: {exc.strerror}; choose another --port") from None
        sock.listen(128)
        return sock
    raise HeadroomError(f"no free port on {host}")  # unreachable: port 0 always binds


def page_url(host: str, port: int, token: str) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"http://{name}:{port}/#token={token}"


def opener_file(data_dir: Path, url: str) -> Path:
    """A private (0600) page in the data dir that forwards to ``url``: the browser is started with
    this file's path instead of the URL, since any user of the machine can read a process's
    arguments (as Jupyter does)."""
    path = Path(data_dir) / "ui-open.html"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    link = html.escape(url, quote=True)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={link}">'
                  f'<title>headroom-mcp</title><a href="{link}">Open the headroom-mcp memory browser</a>\n')
    return path


def run_ui(settings: Settings, host: str = "127.0.0.1", port: int | None = None, open_browser: bool = True,
           as_json: bool = False) -> int:
    """Serve the browser until interrupted; prints the URL (with its token) first."""
    problem = check_host(host)
    if problem:
        raise HeadroomError(problem)
    client = DaemonClient(settings)
    opener: Path | None = None
    try:
        client.call("ping")  # start the daemon now: its errors show here, and the first page is fast
        sock = bind(host, port)
        token = secrets.token_urlsafe(32)
        url = page_url(host, sock.getsockname()[1], token)
        app = create_app(client, LocalAccess(settings, token), transport_security(host, Limits()))
        print(json.dumps({"url": url, "data_dir": str(settings.data_dir)}) if as_json else
              f"headroom-mcp memory browser for {settings.user_id} ({settings.data_dir}):\n{url}\n"
              "Ctrl-C stops it. The token in the URL is new each run; keep it to yourself.", flush=True)
        if open_browser:
            opener = opener_file(settings.data_dir, url)
            if not webbrowser.open(opener.as_uri()):
                print("headroom-mcp: no browser found: open the URL above", file=sys.stderr)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        asyncio.run(Uvicorn(config).serve(sockets=[sock]))
    finally:
        client.close()
        if opener is not None:
            with contextlib.suppress(OSError):
                opener.unlink()
    return 0
