"""The HTTP server against local users, browsers and clients that hold connections.

Real ``headroom-mcp serve`` processes on loopback with a real store, real sockets; the
only waiting is for the server (never an assertion on how long something took).
"""

from __future__ import annotations

import resource
import socket
import subprocess
import time

import anyio
import httpx
from test_server import EXE, free_port
from test_team import call, team  # noqa: F401  (the fixture)

from headroom_mcp.connections import FD_RESERVE

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def base_of(url: str) -> str:
    return url.rsplit("/", 1)[0]


def test_no_auth_on_loopback_needs_a_second_confirmation(data_dir):
    """A loopback port is open to every user of the machine, unlike the daemon's 0600 socket."""
    out = subprocess.run([EXE, "serve", "--transport", "http", "--port", str(free_port()), "--no-auth"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "--trust-local-users" in out.stderr and "every user of this machine" in out.stderr and "token create" in out.stderr


def test_health_checks_the_host_header_like_every_route(team):
    url = team.start("http")
    health = f"{base_of(url)}/healthz"
    assert httpx.get(health, headers={"Host": "evil.example"}).status_code == 421  # a rebound name learns nothing
    assert httpx.get(health, headers={"Host": f"localhost:{url.split(':')[2].split('/')[0]}"}).status_code == 200


def test_a_refused_delete_leaves_its_session_counted(team):
    url = team.start("http", "--sessions-per-token", "3")
    alice, bob = team.headers("alice"), team.headers("bob")

    def opened(headers: dict) -> httpx.Response:
        return httpx.post(url, headers={**ACCEPT, **headers}, json=INIT)

    sids = [opened(alice).headers["mcp-session-id"] for _ in range(3)]
    for sid in sids:
        for bad, status in (({"Origin": "http://evil.example"}, 403), ({"Host": "evil.example"}, 421)):
            assert httpx.delete(url, headers={**ACCEPT, **alice, **bad, "mcp-session-id": sid}).status_code == status
        assert httpx.delete(url, headers={**ACCEPT, **bob, "mcp-session-id": sid}).status_code == 404  # not bob's
    assert opened(alice).status_code == 429  # each is still open, so each still counts
    for sid in sids:
        assert httpx.post(url, headers={**ACCEPT, **alice, "mcp-session-id": sid}, json=PING).status_code == 200
    # Made-up session ids are nobody's: they count against no token.
    for n in range(4):
        assert httpx.post(url, headers={**ACCEPT, **bob, "mcp-session-id": f"{n:032x}"}, json=PING).status_code == 404
    assert [opened(bob).status_code for _ in range(4)] == [200, 200, 200, 429]
    # A DELETE the server accepts frees a place.
    assert httpx.delete(url, headers={**ACCEPT, **alice, "mcp-session-id": sids[0]}).status_code == 200
    assert opened(alice).status_code == 200


#: Open files the server process may have in the slow-client test: ~30 for the store and
#: runtime, so 200 connections would exhaust it. The server fits its cap to it (minus FD_RESERVE).
FILE_LIMIT = 200


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def slow_clients(port: int, count: int, head: bytes = b"") -> list[socket.socket]:
    """Connections that never finish a request: ``head`` is all they send (nothing: idle)."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        if head:
            client.sendall(head)
        clients.append(client)
    return clients


def slow_body(token: str) -> bytes:
    """An authenticated request whose body never ends: it reaches the app, which waits for it."""
    return (b"POST /api/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"method\": ")


def closed_by_server(client: socket.socket, wait: float) -> bool:
    """Read until the server closes the connection (an at-capacity 503 first, perhaps)."""
    client.settimeout(wait)
    try:
        while client.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def held(client: socket.socket) -> bool:
    """Is the connection still open with nothing answered (the server holds it, waiting)?"""
    client.setblocking(False)
    try:
        client.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        pass
    return False


def test_slow_and_idle_clients_cannot_lock_others_out(team):
    url = team.start("http", "--read-timeout", "20", preexec_fn=_limit_files)
    base, port = base_of(url), int(url.split(":")[2].split("/")[0])
    clients = slow_clients(port, 10, slow_body(team.token["bob"]))
    clients += slow_clients(port, 95) + slow_clients(port, 95, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len")
    try:
        # Queued behind all 200 on the listening socket: answered only if the server kept accepting.
        health = httpx.get(f"{base}/healthz", timeout=60)
        assert health.status_code == 200
        found = httpx.post(f"{base}/api/call", headers=team.headers("alice"), timeout=60,
                           json={"method": "recall", "params": {"query": "anything"}})
        assert found.status_code == 200, found.text
        saved = anyio.run(call, url, team.headers("alice"), "remember", {"content": "slow clients do not lock us out"})
        assert not saved.is_error and saved.structured_content["status"] == "created"
        holding = sum(held(c) for c in clients)
        assert 0 < holding < len(clients)  # answered while slow clients held connections, past the cap
        deadline = time.monotonic() + 120
        assert all(closed_by_server(c, max(1.0, deadline - time.monotonic())) for c in clients)  # dropped, not held
    finally:
        for client in clients:
            client.close()
    log = (team.data_dir.parent / f"server-{port}.log").read_text()
    assert f"serving at most {FILE_LIMIT - FD_RESERVE} connections, not 512: the open-file limit is {FILE_LIMIT}" in log
    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
