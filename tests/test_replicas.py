"""Scale-out: a real Chroma server (``chroma run``) and two headroom-mcp replicas on it.

The replicas share nothing but the Chroma server and the tokens file: each has its own
data dir (lock, socket, lexical index). A write through one must be recalled through the
other by meaning and by keyword, and a forget through one must be seen by the other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import anyio
import pytest
from conftest import kill_daemon
from test_server import free_port
from test_team import P, TeamServer, call, session_as, wait_until_ok

from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.records import MemoryRecord
from headroom_mcp.store.scopes import Context

CHROMA = shutil.which("chroma", path=str(Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parent.parent / ".venv")) / "bin"))


@pytest.fixture
def chroma_url(tmp_path):
    """A ``chroma run`` server on loopback, persisted in a temp dir, stopped afterwards."""
    assert CHROMA, "the chroma CLI ships with the chromadb package"
    port = free_port()
    log = open(tmp_path / "chroma.log", "wb")  # not a pipe: an unread pipe fills and stalls the server
    proc = subprocess.Popen([CHROMA, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_ok(f"{url}/api/v2/heartbeat", proc, tmp_path / "chroma.log")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_two_stores_on_one_chroma_server_keep_their_lexical_indexes_consistent(chroma_url, embedder):
    a = MemoryStore.open(embedder, chroma_url=chroma_url)
    b = MemoryStore.open(embedder, chroma_url=chroma_url)
    alice = Context("alice", project=P, session_id="s1", agent_id="claude")
    bob = Context("bob", project=P, session_id="s2", agent_id="codex")
    fact = a.remember(alice, "the flaky test is fixed by setting TZ=UTC in pytest.ini (ticket QX-4411)")["id"]
    assert fact not in b.lexical  # b has not looked yet
    assert [m["id"] for m in b.recall(bob, "QX-4411")] == [fact]
    assert fact in b.lexical and b.lexical.search("QX-4411", lambda ids: [True] * len(ids), 5)[0][0] == fact
    assert b.check(repair=False)["missing"] == 0
    # An import keeps the export's old timestamps; the other replica still pulls it by write time.
    old = {"id": "mem_imported_2024", "content": "the legacy billing job is called NIGHTLY-LEDGER-42", "scope": "project",
           "project": P, "created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-01-02T03:04:05Z"}
    assert a.import_records([MemoryRecord.from_dict({**old, "user_id": "alice"})])["created"] == 1
    assert [m["id"] for m in b.recall(bob, "NIGHTLY-LEDGER-42")] == ["mem_imported_2024"]
    assert "mem_imported_2024" in b.lexical
    assert a.forget(alice, id=fact)["forgotten"] == [fact]
    assert b.recall(bob, "QX-4411") == [] and b.recall(bob, "how was the flaky timezone test fixed") == []
    report = b.check(repair=False)
    assert report["missing"] == 0 and report["extra"] == 0


def test_two_replicas_share_one_chroma_server(chroma_url, tmp_path, data_dir):
    team = TeamServer(data_dir)
    r1 = r2 = ""
    try:
        r1 = team.start("http", "--chroma-url", chroma_url, data_dir=tmp_path / "replica-1")
        r2 = team.start("sse", "--chroma-url", chroma_url, data_dir=tmp_path / "replica-2")
        alice, bob = team.headers("alice"), team.headers("bob")

        async def go():
            out = {}
            with anyio.fail_after(180):
                return await steps(out)

        async def steps(out):
            out["saved"] = await call(r1, alice, "remember", {"content": "release builds are signed with the key in vault path secret/release (rotation RB-2291)"})
            async with session_as(r2, bob, client="gemini-cli") as s:
                out["dense"] = await s.call_tool("recall", {"query": "how do we sign the builds we ship?"})
                out["lexical"] = await s.call_tool("recall", {"query": "RB-2291"})
                out["merged"] = await s.call_tool("remember", {"content": "Release builds are signed with the key in vault path secret/release (rotation RB-2291)."})
            out["forgot"] = await call(r2, bob, "forget", {"id": out["saved"].structured_content["id"]})
            out["after"] = await call(r1, alice, "recall", {"query": "RB-2291 release signing key"})
            return out

        out = anyio.run(go)
    finally:
        team.stop()
        for d in (tmp_path / "replica-1", tmp_path / "replica-2"):
            kill_daemon(d)
    saved = out["saved"].structured_content["id"]
    assert [m["id"] for m in out["dense"].structured_content["results"]] == [saved]
    assert [m["id"] for m in out["lexical"].structured_content["results"]] == [saved]
    merged = out["merged"].structured_content
    assert merged["status"] == "merged" and merged["agents"] == ["claude", "gemini"]
    assert out["forgot"].structured_content["forgotten"] == [saved]
    assert out["after"].structured_content["results"] == []
