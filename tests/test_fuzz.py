"""Hostile and malformed input against the real stdio server: it answers with errors and keeps serving.

The server runs as a subprocess and is spoken to in raw JSON-RPC lines, so the fuzz
reaches every layer: the transport's parser, the SDK's validation, our tools, the daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from queue import Empty, Queue

import pytest
from conftest import kill_daemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server import EXE

from headroom_mcp import SyncMemory
from headroom_mcp.store.records import MAX_CONTENT_BYTES


class RawServer:
    """``headroom-mcp serve`` driven by hand over its stdin/stdout."""

    def __init__(self, data_dir, version: str | None = "2025-06-18", agent: str | None = "fuzz", stderr=subprocess.DEVNULL):
        """``version``: the protocol version of the handshake made at once (None: none made);
        ``agent``: the ``--agent`` flag (None: the agent is named after the MCP client);
        ``stderr``: where the server's log goes (an open file to read it afterwards)."""
        self.data_dir = data_dir
        self.proc = subprocess.Popen([EXE, "serve", *(["--agent", agent] if agent else [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, env={**os.environ, "HEADROOM_MCP_DATA_DIR": str(data_dir)})
        self.lines: Queue[bytes] = Queue()
        self.answers: dict[object, dict] = {}
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        if version is not None:
            self.init = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                                    "clientInfo": {"name": "fuzzer", "version": "1"}})
            assert "result" in self.init, self.init
            self.send_raw(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data.replace(b"\n", b" ") + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, request_id: int, timeout: float = 60) -> dict:
        """The answer to ``request_id``; answers to others read meanwhile are kept for them
        (concurrent requests may be answered in any order)."""
        while request_id not in self.answers:
            try:
                message = json.loads(self.lines.get(timeout=timeout))
            except Empty:
                raise AssertionError(f"no answer to request {request_id}: the server is wedged or dead") from None
            if isinstance(message.get("id"), (int, str)):
                self.answers[message["id"]] = message
        return self.answers.pop(request_id)

    def request(self, method: str, params: object) -> dict:
        self.next_id += 1
        self.send_raw(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode())
        return self.wait_for(self.next_id)

    def alive(self) -> bool:
        return self.proc.poll() is None and "result" in self.request("ping", {})

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "store"
    raw = RawServer(data_dir)
    yield raw
    raw.close()
    kill_daemon(data_dir)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50) | st.just("x" * 20_000) | st.just("\u202e\x00\x1b[31m\ud7ff"),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
PARAMS = ["content", "scope", "importance", "tags", "supersedes", "query", "limit", "id", "ids", "confirm", "min_score", "agent", "bogus"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tool=st.sampled_from(["remember", "recall", "forget", "no_such_tool"]),
       arguments=st.dictionaries(st.sampled_from(PARAMS), json_values, max_size=5))
def test_tool_arguments_of_every_shape_get_an_answer(server, tool, arguments):
    response = server.request("tools/call", {"name": tool, "arguments": arguments})
    assert "result" in response or "error" in response
    if "result" in response and not response["result"].get("isError"):
        assert isinstance(response["result"].get("structuredContent"), dict)  # success means a JSON object


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=st.text(min_size=1, max_size=300), scope=st.sampled_from([None, "user", "project", "session", "galaxy"]),
       importance=st.none() | st.floats(-1, 2, allow_nan=False), tags=st.none() | st.lists(st.text(max_size=30), max_size=4))
def test_arbitrary_text_is_stored_or_refused_with_a_reason(server, content, scope, importance, tags):
    arguments = {k: v for k, v in {"content": content, "scope": scope, "importance": importance, "tags": tags}.items() if v is not None}
    result = server.request("tools/call", {"name": "remember", "arguments": arguments})["result"]
    if result["isError"]:
        assert result["content"][0]["text"].strip()
    else:
        assert result["structuredContent"]["status"] in ("created", "merged")
        assert content.strip() and scope != "galaxy" and (importance is None or 0 <= importance <= 1)


MALFORMED = [
    b"not json at all",
    b"{",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"jsonrpc": "2.0", "id": 900, "method": "tools/call", "params": {"name": "remember", "arguments": {"content": "\\ud800 lone"}}}',
    b'{"jsonrpc": "2.0", "id": 901, "method": "tools/call", "params": {"name": "remember", "arguments": {"content": "' + b"a" * 5_000_000 + b'"}}}',
    b"\xff\xfe\xfd invalid utf-8 \xc3\x28",
    b'{"jsonrpc": "1.0", "id": 902, "method": "ping"}',
    b'{"jsonrpc": "2.0", "id": {"nested": 1}, "method": "ping"}',
    b'{"jsonrpc": "2.0", "id": 903, "method": "tools/call", "params": [1, 2, 3]}',
    b'{"jsonrpc": "2.0", "id": 904, "method": "no/such/method", "params": {}}',
    b'{"jsonrpc": "2.0", "id": 905, "method": "tools/call", "params": {"name": "recall", "arguments": {"query": "x", "limit": 1000000000000}}}',
    b'{"jsonrpc": "2.0", "id": 906, "method": "resources/read", "params": {"uri": "memory://memories/../../etc/passwd"}}',
    b"\x00\x01\x02",
    b"",
]


@pytest.mark.parametrize("message", MALFORMED, ids=lambda m: m[:30].decode("latin-1"))
def test_malformed_messages_never_stop_the_server(server, message):
    server.send_raw(message)
    assert server.alive()


def test_after_the_fuzz_the_store_holds_only_valid_memories(server):
    assert server.alive()
    with SyncMemory(agent_id="check", data_dir=server.data_dir) as memory:
        stored = memory.get_all(limit=100_000)
        assert stored  # the fuzz did store things, so the checks below are not empty
        for m in stored:
            assert m["content"].strip() and len(m["content"].encode("utf-8", "surrogatepass")) <= MAX_CONTENT_BYTES
            assert m["scope"] in ("user", "project", "session", "agent", "turn") and 0 <= m["importance"] <= 1
