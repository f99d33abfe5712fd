"""Team mode on loopback: bearer tokens, per-user isolation, limits, health and metrics.

Every test runs a real ``headroom-mcp serve`` process and talks to it with the MCP SDK's
client (streamable HTTP and SSE) or plain HTTP where the answer is an HTTP status.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import kill_daemon
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import Implementation
from test_server import EXE, free_port

from headroom_mcp.tokens import TokenFile

P = "github.com/acme/atlas"
Q = "github.com/acme/other"


def wait_until_ok(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Wait for ``url`` to answer 200; fail with the process's log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{url} did not answer 200 in {timeout:.0f}s"
        time.sleep(0.2)


class TeamServer:
    """A tokens file with one token per teammate, and the server processes started on it."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.tokens = TokenFile(data_dir / "tokens.json")
        self.token: dict[str, str] = {}
        self.grant_id: dict[str, str] = {}
        for user, projects, role in (("alice", [P], "write"), ("bob", [P], "write"), ("carol", [P], "read"),
                                     ("dave", ["*"], "admin"), ("eve", [Q], "write")):
            self.token[user], grant = self.tokens.create(user, projects, role, name=f"{user}'s laptop")
            self.grant_id[user] = grant.id
        self.procs: list[subprocess.Popen] = []

    def start(self, transport: str = "http", *extra: str, data_dir: Path | None = None, env: dict | None = None,
              **popen) -> str:
        """Start a server and wait for its health check; ``popen``: more ``subprocess.Popen`` arguments."""
        port = free_port()
        log = self.data_dir.parent / f"server-{port}.log"  # a file, not a pipe nobody reads (it would fill and stall)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [EXE, "serve", "--transport", transport, "--port", str(port), "--data-dir", str(data_dir or self.data_dir),
                 "--tokens-file", str(self.tokens.path), *extra],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, **popen,
            )
        self.procs.append(proc)
        wait_until_ok(f"http://127.0.0.1:{port}/healthz", proc, log)
        return f"http://127.0.0.1:{port}" + ("/mcp" if transport == "http" else "/sse")

    def headers(self, user: str, project: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token[user]}"}
        if project:
            out["X-Headroom-Project"] = project
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def team(data_dir):
    server = TeamServer(data_dir)
    yield server
    server.stop()
    kill_daemon(data_dir)


@asynccontextmanager
async def session_as(url: str, headers: dict[str, str], client: str = "claude-code"):
    """An initialised MCP session over the URL's transport, sending ``headers``."""
    if url.endswith("/sse"):
        connect = sse_client(url, headers=headers)
    else:
        connect = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    async with connect as streams:
        async with ClientSession(streams[0], streams[1], client_info=Implementation(name=client, version="1")) as session:
            await session.initialize()
            yield session


async def call(url: str, headers: dict[str, str], tool: str, arguments: dict, client: str = "claude-code"):
    async with session_as(url, headers, client) as session:
        return await session.call_tool(tool, arguments)


def text_of(result) -> str:
    return result.content[0].text if result.content else ""


def test_token_cli_creates_lists_and_revokes(tmp_path):
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, "token", *args], capture_output=True, text=True, timeout=60, env=env)

    made = cli("create", "--user", "alice", "--project", P, "--project", Q, "--role", "read", "--name", "ci", "--json")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["token"].startswith("hmcp_") and created["projects"] == [P, Q] and created["role"] == "read"
    stored = (tmp_path / "tokens.json").read_text()
    assert created["token"] not in stored and created["token"].rsplit("_", 1)[-1] not in stored  # only a hash is kept
    assert (tmp_path / "tokens.json").stat().st_mode & 0o777 == 0o600
    listed = json.loads(cli("list", "--json").stdout)["tokens"]
    assert [(t["id"], t["user_id"], t["name"]) for t in listed] == [(created["id"], "alice", "ci")]
    assert "sha256" not in listed[0] and "token" not in listed[0]
    for bad, message in ((["create", "--user", "bad user", "--project", P], "user must be"),
                         (["create", "--user", "bob", "--project", " "], "project must be"),
                         (["revoke", "nope"], "no token with id")):
        out = cli(*bad)
        assert out.returncode == 1 and message in out.stderr, out.stderr
    assert cli("revoke", created["id"]).returncode == 0
    assert json.loads(cli("list", "--json").stdout)["tokens"] == []


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_tokens_decide_who_may_read_write_and_forget(team, transport):
    url = team.start(transport)
    alice, bob, carol, eve = (team.headers(u) for u in ("alice", "bob", "carol", "eve"))

    async def go():
        out = {}
        out["shared"] = await call(url, alice, "remember", {"content": "the staging database resets every Monday at 06:00"})
        out["private"] = await call(url, alice, "remember", {"content": "alice wants answers in French", "scope": "user"})
        async with session_as(url, bob, client="codex-mcp-client") as s:
            out["bob_recall"] = await s.call_tool("recall", {"query": "when does staging reset, and which language", "limit": 10})
            out["bob_merge"] = await s.call_tool("remember", {"content": "The staging database resets every Monday at 06:00."})
            out["bob_forget_private"] = await s.call_tool("forget", {"id": out["private"].structured_content["id"]})
            out["bob_context"] = await s.read_resource("memory://context")
        out["carol_recall"] = await call(url, carol, "recall", {"query": "staging database"})
        out["carol_write"] = await call(url, carol, "remember", {"content": "readers cannot write this"})
        out["eve_recall"] = await call(url, eve, "recall", {"query": "staging database"})
        out["alice_after"] = await call(url, alice, "recall", {"query": "alice language French", "scope": "user"})
        return out

    out = anyio.run(go)
    shared_id = out["shared"].structured_content["id"]
    assert out["shared"].structured_content["scope"] == "project"  # the token's only project
    assert [m["id"] for m in out["bob_recall"].structured_content["results"]] == [shared_id]
    merged = out["bob_merge"].structured_content
    assert merged["status"] == "merged" and merged["id"] == shared_id and merged["agents"] == ["claude", "codex"]
    assert out["bob_forget_private"].is_error and "no memory" in text_of(out["bob_forget_private"])
    assert "staging database resets" in out["bob_context"].contents[0].text
    assert "French" not in out["bob_context"].contents[0].text
    assert [m["id"] for m in out["carol_recall"].structured_content["results"]] == [shared_id]
    assert out["carol_write"].is_error and "read-only" in text_of(out["carol_write"])
    assert out["eve_recall"].structured_content["results"] == []  # another project's token sees nothing of P
    assert [m["content"] for m in out["alice_after"].structured_content["results"]] == ["alice wants answers in French"]


def test_reading_another_users_memory_by_id_is_refused(team):
    url = team.start("http")

    async def go():
        private = await call(url, team.headers("alice"), "remember", {"content": "alice's ssh key lives on a yubikey", "scope": "user"})
        async with session_as(url, team.headers("bob")) as s:
            try:
                await s.read_resource(f"memory://memories/{private.structured_content['id']}")
            except Exception as exc:
                return str(exc)
        return "read succeeded"

    assert "no memory" in anyio.run(go)


def test_identity_never_comes_from_arguments_and_projects_are_checked(team):
    url = team.start("http")

    async def go():
        spoof = await call(url, team.headers("bob"), "remember", {"content": "bob tried to speak as alice", "user_id": "alice"})
        return spoof

    spoof = anyio.run(go)
    assert not spoof.is_error  # the SDK drops arguments a tool does not take
    memory_id = spoof.structured_content["id"]

    async def owner():
        async with session_as(url, team.headers("dave", P)) as s:
            got = await s.read_resource(f"memory://memories/{memory_id}")
            return json.loads(got.contents[0].text)

    record = anyio.run(owner)
    assert record["user_id"] == "bob" and record["users"] == ["bob"]
    # A project the token does not cover is an HTTP 403 before any MCP happens.
    out = httpx.post(url, headers={**team.headers("eve", P), "Accept": "application/json, text/event-stream"},
                     json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert out.status_code == 403 and "does not cover project" in out.json()["error_description"]


def test_missing_bad_and_revoked_tokens_are_401_at_once(team):
    url = team.start("http")
    accept = {"Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in ({}, {"Authorization": "Bearer hmcp_000000000000_" + "x" * 43}, {"Authorization": "Basic abc"}):
        out = httpx.post(url, headers={**accept, **headers}, json=ping)
        assert out.status_code == 401 and out.headers["www-authenticate"].startswith("Bearer"), out.text

    async def go():
        async with session_as(url, team.headers("bob")) as s:
            before = await s.call_tool("recall", {"query": "anything"})
            team.tokens.revoke(team.grant_id["bob"])  # what `headroom-mcp token revoke` does
            try:
                after = await s.call_tool("recall", {"query": "anything"})
                return before, f"answered: {after}"
            except Exception as exc:
                return before, f"refused: {exc!r}"

    before, after = anyio.run(go)
    assert not before.is_error and after.startswith("refused"), after
    assert httpx.post(url, headers={**accept, **team.headers("bob")}, json=ping).status_code == 401


def test_limits_answer_413_429_and_host_origin_checks(team):
    url = team.start("http", "--rate-limit", "60", "--max-body", "20000")
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "remember", "arguments": {"content": "x" * 30000}}}
    assert httpx.post(url, headers={**accept, **team.headers("alice")}, json=big).status_code == 413
    statuses = [httpx.post(url, headers={**accept, **team.headers("bob")}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                for _ in range(12)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1, [r.status_code for r in statuses]
    # Another token has its own budget.
    assert httpx.post(url, headers={**accept, **team.headers("carol")}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code != 429
    evil_host = httpx.post(url, headers={**accept, **team.headers("dave"), "Host": "evil.example"}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert evil_host.status_code == 421
    evil_origin = httpx.post(url, headers={**accept, **team.headers("dave"), "Origin": "http://evil.example"},
                             json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert evil_origin.status_code == 403


def test_a_session_opened_with_one_token_refuses_another(team):
    url = team.start("http", "--sessions-per-token", "3")
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    opened = httpx.post(url, headers={**accept, **team.headers("alice")}, json=init)
    assert opened.status_code == 200, opened.text
    sid = opened.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    for forged in (sid, sid.upper()):  # the SDK answers as if the session did not exist
        hijack = httpx.post(url, headers={**accept, **team.headers("bob"), "mcp-session-id": forged}, json=ping)
        assert hijack.status_code == 404, hijack.text
    assert httpx.post(url, headers={**accept, **team.headers("alice"), "mcp-session-id": sid}, json=ping).status_code == 200
    # One token cannot fill the server's session table: past its budget, new sessions get 429.
    more = [httpx.post(url, headers={**accept, **team.headers("alice")}, json=init).status_code for _ in range(3)]
    assert more == [200, 200, 429], more
    assert httpx.post(f"{url}?session_id=whatever", headers={**accept, **team.headers("alice")}, json=init).status_code == 429
    assert httpx.delete(url, headers={**accept, **team.headers("alice"), "mcp-session-id": sid}).status_code == 200
    assert httpx.post(url, headers={**accept, **team.headers("alice")}, json=init).status_code == 200  # a closed one frees a place
    assert httpx.post(url, headers={**accept, **team.headers("bob")}, json=init).status_code == 200  # others have their own


def test_sse_messages_go_only_to_sessions_of_the_same_token(team):
    """However the session id is spelled or repeated, another token's SSE session is not found."""
    url = team.start("sse")
    base = url.rsplit("/", 1)[0]

    call = {"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "recall", "arguments": {"query": "x"}}}

    def session_id(lines) -> str:
        """The id in the stream's first event (the lines iterator must outlive this: closing it ends the stream)."""
        for line in lines:
            if line.startswith("data:"):
                return line.split("session_id=")[1].strip()
        raise AssertionError("no endpoint event")

    with httpx.stream("GET", url, headers=team.headers("alice"), timeout=10) as alice_stream, \
            httpx.stream("GET", url, headers=team.headers("bob"), timeout=10) as bob_stream:
        alice_lines, bob_lines = alice_stream.iter_lines(), bob_stream.iter_lines()
        alice_id, bob_id = session_id(alice_lines), session_id(bob_lines)
        statuses = [httpx.post(f"{base}/messages/?{query}", headers=team.headers("bob"), json=call).status_code
                    for query in (f"session_id={alice_id}", f"session_id={alice_id.upper()}",
                                  f"session_id={bob_id}&session_id={alice_id}")]
        mine = httpx.post(f"{base}/messages/?session_id={bob_id}", headers=team.headers("bob"), json=call).status_code
    assert statuses == [404, 404, 404] and mine == 202, (statuses, mine)


def test_health_is_public_and_metrics_need_an_admin(team):
    url = team.start("http")
    base = url.rsplit("/", 1)[0]
    anyio.run(call, url, team.headers("alice"), "remember", {"content": "metrics count this memory"})
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["auth"] is True
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/metrics", headers=team.headers("alice")).status_code == 403
    metrics = httpx.get(f"{base}/metrics", headers=team.headers("dave"))
    assert metrics.status_code == 200
    lines = metrics.text.splitlines()
    assert 'headroom_tool_calls_total{tool="remember",outcome="ok"} 1' in lines
    assert "headroom_memories 1" in lines
    assert any(line.startswith('headroom_http_responses_total{code="403"}') for line in lines)
    team.tokens.path.write_bytes(b"\xff not json")  # a broken tokens file refuses everyone, without saying where it is
    broken = httpx.get(f"{base}/metrics", headers=team.headers("dave"))
    assert broken.status_code == 503 and "tokens.json" not in broken.text
    assert any(line.startswith('headroom_tool_seconds_count{tool="remember"} 1') for line in lines)


def test_serving_needs_tokens_or_loopback_no_auth(data_dir):
    for extra, reason in ((["--host", "0.0.0.0", "--no-auth"], "refusing --no-auth"),
                          (["--host", "127.0.0.2", "--no-auth"], "refusing --no-auth"),
                          ([], "token create"), (["--no-auth", "--max-body", "0"], "--max-body must be at least")):
        out = subprocess.run([EXE, "serve", "--transport", "http", *extra], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and reason in out.stderr, out.stderr


def test_sigterm_stops_the_server_cleanly(team):
    team.start("http")
    proc = team.procs[-1]
    proc.terminate()
    assert proc.wait(timeout=30) == 0  # the store worker drained, the lock released, the socket removed
    assert not (team.data_dir / "daemon.sock").exists()


def test_hooks_of_a_team_install_inject_the_team_servers_memories(team, tmp_path):
    url = team.start("http")
    anyio.run(call, url, team.headers("alice"), "remember", {"content": "the payments service deploys only on Tuesdays", "importance": 0.9})
    anyio.run(call, url, team.headers("alice"), "remember", {"content": "alice prefers vim keybindings", "scope": "user"})

    def hook(kind: str, user: str, payload: dict, *extra: str) -> dict:
        env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(tmp_path / f"{user}-local"), "TEAM_TOKEN": team.token[user]}
        out = subprocess.run([EXE, "hook", kind, "--agent", "claude", "--url", url, "--token-env", "TEAM_TOKEN", *extra],
                             input=json.dumps(payload), capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    start = hook("session-start", "bob", {"session_id": "b1", "hook_event_name": "SessionStart"}, "--project", P)
    text = start["hookSpecificOutput"]["additionalContext"]
    assert "the payments service deploys only on Tuesdays" in text and "vim" not in text  # the team's, not alice's own
    prompt = hook("prompt", "bob", {"session_id": "b2", "prompt": "when can the payments service deploy?"})
    assert "Tuesdays" in prompt["hookSpecificOutput"]["additionalContext"]
    assert hook("session-start", "eve", {"session_id": "e1"}, "--project", P) == {}  # not her project: nothing, quietly
    assert "403" in (tmp_path / "eve-local" / "hooks.log").read_text()


def test_the_hooks_api_serves_reads_only_and_as_the_token(team):
    url = team.start("http")
    api = url.rsplit("/", 1)[0] + "/api/call"
    for n in range(3):
        anyio.run(call, url, team.headers("alice"), "remember", {"content": f"service {n} listens on port {8000 + n}"})
    assert httpx.post(api, json={"method": "recall", "params": {"query": "port"}}).status_code == 401
    refused = httpx.post(api, headers=team.headers("alice"), json={"method": "remember", "params": {"content": "x"}})
    assert refused.status_code == 400 and "must be one of context, recall" in refused.text
    assert httpx.post(api, headers=team.headers("alice"), content=b"not json").status_code == 400
    bad = httpx.post(api, headers=team.headers("alice"), json={"method": "recall", "params": {"query": "port", "bogus": 1}})
    assert bad.status_code == 400 and "unknown parameter" in bad.text
    found = httpx.post(api, headers=team.headers("bob"), json={"method": "recall", "params": {"query": "which port", "limit": 10**9}})
    assert found.status_code == 200 and len(found.json()["results"]) == 3
    assert httpx.post(api, headers=team.headers("eve"), json={"method": "context", "params": {}}).json()["memories"] == []
    # The transports' limits hold here too: body size, Host, Origin (no browser needs this API).
    huge = httpx.post(api, headers={**team.headers("bob"), "Content-Type": "application/json"}, content=b"{" + b" " * 300_000 + b"}")
    assert huge.status_code == 413
    ask = {"method": "context", "params": {}}
    assert httpx.post(api, headers={**team.headers("bob"), "Host": "evil.example"}, json=ask).status_code == 421
    assert httpx.post(api, headers={**team.headers("bob"), "Origin": f"http://127.0.0.1:{api.split(':')[2].split('/')[0]}"},
                      json=ask).status_code == 403
    assert httpx.post(api, headers={**team.headers("bob"), "Content-Type": "text/plain"}, content=json.dumps(ask)).status_code == 400


def test_the_hook_client_never_follows_a_redirect_with_the_token():
    """urllib would resend Authorization to wherever a redirect points; ours stops at the first answer."""
    import http.server
    import threading

    from headroom_mcp.errors import HeadroomError
    from headroom_mcp.remote import RemoteClient

    seen: list[tuple[str, str | None]] = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(HeadroomError, match="302"):
            RemoteClient(f"http://127.0.0.1:{server.server_port}/mcp", "hmcp_secret").call("context", {})
    finally:
        server.shutdown()
    assert seen == [("/api/call", "Bearer hmcp_secret")]


def test_sse_streams_count_against_the_session_budget(team):
    url = team.start("sse", "--sessions-per-token", "2")
    with httpx.stream("GET", url, headers=team.headers("alice"), timeout=10) as first, \
            httpx.stream("GET", url, headers=team.headers("alice"), timeout=10) as second:
        lines = [first.iter_lines(), second.iter_lines()]  # kept: closing an iterator ends its stream
        assert all(any(line.startswith("data:") for line in it) for it in lines)
        third = httpx.get(url, headers=team.headers("alice"), timeout=10)
        sneaky = httpx.get(f"{url}?session_id=0", headers=team.headers("alice"), timeout=10)
        assert third.status_code == 429 and sneaky.status_code == 429
