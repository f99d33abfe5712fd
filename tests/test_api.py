"""The Python API: Memory (async) and SyncMemory, over the daemon and embedded."""

from __future__ import annotations

import asyncio

import pytest

from headroom_mcp import Memory, NotFound, SyncMemory
from headroom_mcp.errors import HeadroomError


def test_sync_memory_mirrors_the_tools(data_dir):
    with SyncMemory(agent_id="script") as memory:
        saved = memory.save("the e2e suite needs DOCKER_HOST set", tags=["tests"], importance=0.8)
        assert saved["status"] == "created" and saved["agents"] == ["script"] and saved["scope"] == "project"
        assert memory.search("what do the e2e tests need?")[0]["id"] == saved["id"]
        assert memory.get(saved["id"])["tags"] == ["tests"]
        assert [m["id"] for m in memory.get_all()] == [saved["id"]]
        assert memory.stats()["by_agent"] == {"script": 1}
        assert memory.delete(id=saved["id"]) == {"forgotten": [saved["id"]]}
        assert memory.search("what do the e2e tests need?") == []
        with pytest.raises(NotFound):
            memory.get("mem_nope")


def test_sync_memory_speaks_the_tools_names_too(data_dir):
    """remember/recall/forget/list are the canonical names; save/search/delete/get_all the same methods."""
    assert (SyncMemory.save, SyncMemory.search, SyncMemory.delete, SyncMemory.get_all) == (
        SyncMemory.remember, SyncMemory.recall, SyncMemory.forget, SyncMemory.list)
    with SyncMemory(agent_id="script") as memory:
        saved = memory.remember("the e2e suite needs DOCKER_HOST set", tags=["tests"])
        assert saved["status"] == "created" and saved["agents"] == ["script"]
        assert memory.recall("what do the e2e tests need?", limit=1)[0]["id"] == saved["id"]
        assert [m["id"] for m in memory.list()] == [saved["id"]]
        assert memory.forget(id=saved["id"]) == {"forgotten": [saved["id"]]}
        assert memory.recall("what do the e2e tests need?") == [] and memory.list() == []
        assert [m["id"] for m in memory.list(forgotten=True)] == [saved["id"]]


def test_async_memory_speaks_the_tools_names_too(data_dir):
    assert (Memory.save, Memory.search, Memory.delete, Memory.get_all) == (
        Memory.remember, Memory.recall, Memory.forget, Memory.list)

    async def scenario():
        async with Memory(agent_id="async-app") as memory:
            saved = await memory.remember("the mobile app is written in Kotlin", scope="user")
            assert (await memory.recall("which language is the mobile app?", limit=1))[0]["id"] == saved["id"]
            assert [m["id"] for m in await memory.list()] == [saved["id"]]
            assert await memory.forget(ids=[saved["id"]]) == {"forgotten": [saved["id"]]}
            return await memory.list()

    assert asyncio.run(scenario()) == []


def test_async_memory(data_dir):
    async def scenario():
        async with Memory(agent_id="async-app") as memory:
            first, second = await asyncio.gather(
                memory.save("the mobile app is written in Kotlin", scope="user"),
                memory.save("the web app is written in TypeScript", scope="user"),
            )
            hits = await memory.search("which language is the mobile app?", limit=1)
            assert hits[0]["id"] == first["id"]
            assert (await memory.stats())["total"] == 2
            assert (await memory.clear()) == {"forgotten": 2}
            return await memory.get_all()

    assert asyncio.run(scenario()) == []


def test_memory_with_no_setup_uses_the_default_data_dir(tmp_path, monkeypatch):
    """Memory() needs nothing: the platform's user data dir (here under a temp HOME)."""
    monkeypatch.delenv("HEADROOM_MCP_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".local" / "share"))
    monkeypatch.setenv("HEADROOM_MCP_IDLE_TIMEOUT", "60")
    from conftest import kill_daemon

    memory = SyncMemory()
    try:
        assert memory.settings.data_dir == tmp_path / ".local" / "share" / "headroom-mcp"
        assert memory.save("defaults just work")["status"] == "created"
    finally:
        memory.close()
        kill_daemon(memory.settings.data_dir)


def test_user_scope_crosses_sessions_and_agents(data_dir):
    with SyncMemory(agent_id="claude", session_id="morning") as claude:
        claude.save("the user's name is Priya and she owns the billing service", scope="user")
        claude.save("we are halfway through the invoice refactor", scope="session")
    with SyncMemory(agent_id="codex", session_id="afternoon", project="github.com/acme/other") as codex:
        hits = codex.search("who owns billing?")
        assert [h["content"] for h in hits] == ["the user's name is Priya and she owns the billing service"]
        assert hits[0]["agents"] == ["claude"]
        # session scope stayed in its session (a weak user-scope match may still come back)
        assert "we are halfway through the invoice refactor" not in [h["content"] for h in codex.search("invoice refactor progress")]


def test_embedded_import_round_trip_keeps_ids_provenance_and_times(tmp_path):
    source = SyncMemory(data_dir=tmp_path / "a", user_id="alice", agent_id="claude", project="p", embedded=True)
    first = source.save("the API is versioned in the URL path", tags=["api"])
    assert source.save("The API is versioned in the URL path.")["status"] == "merged"
    exported = source.get_all()
    source.close()
    target = SyncMemory(data_dir=tmp_path / "b", user_id="alice", agent_id="other", project="p", embedded=True)
    assert target.import_records(exported) == {"created": 1, "merged": 0, "replaced": 0, "redacted": 0}
    assert target.import_records(exported) == {"created": 0, "merged": 0, "replaced": 1, "redacted": 0}  # idempotent
    assert target.get_all() == exported
    assert exported[0]["id"] == first["id"] and exported[0]["seen_count"] == 2 and exported[0]["agents"] == ["claude"]
    target.close()


def test_a_closed_embedded_memory_says_so_and_frees_its_store(tmp_path):
    memory = SyncMemory(data_dir=tmp_path, user_id="alice", project="p", embedded=True)
    memory.remember("the docs site builds with mkdocs")
    memory.close()
    memory.close()  # a second close changes nothing
    with pytest.raises(HeadroomError, match="closed"):
        memory.recall("which tool builds the docs?")
    # The lock was released once: the store opens again, with what was written.
    with SyncMemory(data_dir=tmp_path, user_id="alice", project="p", embedded=True) as again:
        assert [m["content"] for m in again.recall("which tool builds the docs?")] == ["the docs site builds with mkdocs"]
