"""The stdio front door: the handshake from the manifest, everything else relayed to the daemon.

``headroom-mcp serve`` runs as a subprocess spoken to in raw JSON-RPC lines (``RawServer``),
so what is checked is what an agent reads on the pipe.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import daemon_pid, kill_daemon, pid_alive
from test_fuzz import RawServer
from test_server import EXE

from headroom_mcp import sessions
from headroom_mcp.frontdoor import MANIFEST, STATIC_METHODS


def test_the_manifest_is_what_the_real_server_answers():
    """If this fails, the tools or the SDK changed: python -m headroom_mcp.sessions --write."""
    stored = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert stored == sessions.manifest()
    assert set(stored["answers"]) == set(stored["offers"].values())
    assert [tool["name"] for tool in stored["answers"][stored["counter_offer"]]["tools/list"]["tools"]] == ["remember", "recall", "forget"]


def _unreachable(tmp_path):
    """A data dir whose daemon can never be reached: its socket directory is open to others."""
    data_dir = tmp_path / "store"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    return data_dir


@pytest.mark.parametrize("offered", ["2024-11-05", "2025-06-18", "2025-11-25", "2099-01-01"])
def test_the_handshake_is_the_real_servers_even_with_no_daemon(tmp_path, offered):
    real = sessions.manifest()
    server = RawServer(_unreachable(tmp_path), version=offered)
    try:
        agreed = real["offers"].get(offered, real["counter_offer"])
        assert server.init["result"] == real["answers"][agreed]["initialize"]
        assert server.init["result"]["protocolVersion"] == agreed
        for method in sorted(STATIC_METHODS):
            assert server.request(method, {})["result"] == real["answers"][agreed][method]
        assert server.request("ping", {})["result"] == {}
        # What needs the store gets the reason it cannot be reached, and the server keeps serving.
        failed = server.request("tools/call", {"name": "recall", "arguments": {"query": "anything"}})["result"]
        assert failed["isError"] and "socket directory" in failed["content"][0]["text"]
        assert "socket directory" in server.request("resources/read", {"uri": "memory://context"})["error"]["message"]
        assert server.alive()
    finally:
        server.close()
    assert server.proc.returncode == 0


def test_an_unreachable_daemon_is_logged_once_and_told_to_every_call(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        server = RawServer(_unreachable(tmp_path), stderr=stderr)
        try:
            for n in range(3):
                failed = server.request("tools/call", {"name": "recall", "arguments": {"query": f"question {n}"}})["result"]
                assert failed["isError"] and "socket directory" in failed["content"][0]["text"]
        finally:
            server.close()
    assert log.read_text().count("refusing the daemon socket directory") == 1


def _call(server: RawServer, tool: str, **arguments) -> dict:
    result = server.request("tools/call", {"name": tool, "arguments": arguments})["result"]
    assert not result["isError"], result
    return result["structuredContent"]


def test_requests_sent_before_the_daemon_is_up_are_all_answered(data_dir):
    server = RawServer(data_dir, version=None, agent=None)
    try:
        lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "codex-mcp-client", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"}]
        facts = [f"service number {n} listens on port {8000 + n}" for n in range(5)]
        lines += [{"jsonrpc": "2.0", "id": 10 + n, "method": "tools/call", "params": {"name": "remember", "arguments": {"content": fact}}}
                  for n, fact in enumerate(facts)]
        for line in lines:  # all at once, before the daemon has started
            server.send_raw(json.dumps(line).encode())
        server.next_id = 100  # past the ids used above
        assert server.wait_for(1)["result"]["serverInfo"]["name"] == "headroom-mcp"
        answers = [server.wait_for(10 + n)["result"] for n in range(len(facts))]
        assert [a["structuredContent"]["status"] for a in answers] == ["created"] * len(facts)
        # The replayed handshake carried the client's name: the agent is codex.
        assert {a["structuredContent"]["agents"][0] for a in answers} == {"codex"}
        found = _call(server, "recall", query="which port does service number 3 listen on", limit=5)["results"]
        assert facts[3] in [r["content"] for r in found]
    finally:
        server.close()


def test_a_session_outlives_a_killed_daemon(data_dir):
    server = RawServer(data_dir)
    try:
        first = _call(server, "remember", content="the staging cluster runs in eu-west-1")
        pid = daemon_pid(data_dir)
        kill_daemon(data_dir, signal.SIGKILL)
        assert not pid_alive(pid)
        # Sent on the dead daemon's connection: the front door reconnects (starting a new
        # daemon), replays the handshake and sends the request again.
        second = _call(server, "remember", content="production deploys need two approvals")
        assert daemon_pid(data_dir) != pid
        assert second["status"] == "created" and second["id"] != first["id"]
        again = _call(server, "remember", content="the staging cluster runs in eu-west-1")
        assert again["status"] == "merged" and again["duplicate_of"] == first["id"]  # nothing acknowledged was lost
    finally:
        server.close()


def test_a_handshake_the_manifest_cannot_answer_goes_to_the_real_server(data_dir):
    server = RawServer(data_dir, version=None)
    try:
        # No clientInfo: the SDK's own validation error, not a guess by the front door.
        refused = server.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
        assert "error" in refused and refused["error"]["code"] == -32602
        assert server.proc.poll() is None
    finally:
        server.close()


@pytest.mark.parametrize("command, stdin, module", [
    (["serve"], b"", "headroom_mcp.frontdoor"),
    (["hook", "prompt", "--agent", "claude"], b'{"prompt": "which package manager?", "session_id": "s1"}', "headroom_mcp.hooks"),
])
def test_the_front_door_and_the_hooks_import_neither_the_sdk_nor_the_store(tmp_path, command, stdin, module):
    """What keeps the handshake (and every prompt's hook) instant: nothing heavy is imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", EXE, *command], input=stdin, capture_output=True,
                          env={"HEADROOM_MCP_DATA_DIR": str(_unreachable(tmp_path)), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if line.startswith("import time:")}
    assert module in imported
    heavy = {name for name in imported if name.split(".")[0] in ("mcp", "pydantic", "anyio", "numpy", "chromadb", "onnxruntime", "asyncio")}
    assert not heavy, sorted(heavy)


def test_with_no_manifest_the_real_server_answers_everything_even_after_a_daemon_restart(data_dir):
    """The fallback when the manifest is missing or stale: slower, never wrong (the client's own
    handshake is replayed to the next daemon)."""
    import os
    import threading

    from headroom_mcp.config import Settings
    from headroom_mcp.frontdoor import FrontDoor

    to_door, from_door = os.pipe(), os.pipe()
    door = FrontDoor(Settings.resolve(agent_id="claude"), os.fdopen(from_door[1], "wb"), manifest=None)
    threading.Thread(target=door.run, args=(os.fdopen(to_door[0], "rb"),), daemon=True).start()
    send, answers = os.fdopen(to_door[1], "wb"), os.fdopen(from_door[0], "rb")

    def ask(n: int, method: str, params: dict) -> dict:
        send.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}).encode() + b"\n")
        send.flush()
        while True:
            answer = json.loads(answers.readline())
            if answer.get("id") == n:
                return answer

    init = ask(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
    assert init["result"]["serverInfo"]["name"] == "headroom-mcp"
    send.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    recall = {"name": "recall", "arguments": {"query": "anything"}}
    assert ask(2, "tools/call", recall)["result"]["isError"] is False
    kill_daemon(data_dir, signal.SIGKILL)
    assert ask(3, "tools/call", recall)["result"]["isError"] is False
    send.close()


def test_a_cancelled_request_is_never_sent_again(data_dir):
    """The real server never answers a cancelled request; a new daemon must not run it."""
    server = RawServer(data_dir)
    try:
        _call(server, "recall", query="warm the daemon up")
        server.send_raw(json.dumps({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
            "name": "remember", "arguments": {"content": "the staging database is snapshotted nightly"}}}).encode())
        server.send_raw(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}}).encode())
        server.request("ping", {})
        time.sleep(1)  # let the daemon finish (or drop) it
        ran_before = 77 in server.answers
        kill_daemon(data_dir, signal.SIGKILL)
        found = _call(server, "recall", query="when is the staging database snapshotted?")["results"]  # a new daemon
        assert ran_before or 77 not in server.answers  # no answer to what was cancelled
        for memory in found:  # the first daemon may have run it (a thread cannot be stopped), once
            read = server.request("resources/read", {"uri": f"memory://memories/{memory['id']}"})["result"]
            assert json.loads(read["contents"][0]["text"])["seen_count"] == 1
    finally:
        server.close()


def test_an_identity_the_store_refuses_is_told_to_the_agent(data_dir, monkeypatch):
    monkeypatch.setenv("HEADROOM_MCP_USER", "two\twords")  # not an id
    server = RawServer(data_dir)
    try:
        failed = server.request("tools/call", {"name": "recall", "arguments": {"query": "anything"}})["result"]
        assert failed["isError"] and "must be an id" in failed["content"][0]["text"]
        assert server.alive()
    finally:
        server.close()
