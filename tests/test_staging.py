"""Group commit: several requests' writes go to Chroma together, and none is answered before."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from headroom_mcp.errors import HeadroomError


def test_writes_inside_one_commit_reach_chroma_together_and_see_each_other(store, ctx):
    codex = dataclasses.replace(ctx, agent_id="codex")
    before = store.collection.count()
    with store.one_commit(["the api listens on port 8080"]):
        first = store.remember(ctx, "the api listens on port 8080")
        assert store.collection.count() == before  # staged, not written
        # The next request's dedup sees the staged memory: the same fact merges into it,
        # a new value in the same slot is a conflict with it.
        again = store.remember(codex, "The API listens on port 8080.")
        changed = store.remember(ctx, "the api listens on port 9090")
        # Reads of this thread see the staged writes, other threads' reads only what is stored.
        assert store.get(ctx, first["id"])["agents"] == ["claude", "codex"]
        seen: list[object] = []
        reader = threading.Thread(target=lambda: seen.append(store._records([first["id"]], ctx.can_read)))
        reader.start()
        reader.join(30)
        assert seen == [{}]
    assert again["status"] == "merged" and again["duplicate_of"] == first["id"]
    assert [c["id"] for c in changed.get("conflicts", [])] == [first["id"]]
    assert store.get(ctx, first["id"])["agents"] == ["claude", "codex"]
    assert [r.content for r in store.restatements(first["id"])] == ["The API listens on port 8080."]
    found = store.recall(ctx, "which port does the api use?")
    assert {r["id"] for r in found} >= {first["id"], changed["id"]}
    assert store.check()["lexical"] == store.check()["active"]  # the lexical index took the commit too


def test_a_failed_commit_stores_none_of_its_writes(store, ctx):
    kept = store.remember(ctx, "releases are tagged from main")
    before = store.collection.count()
    with pytest.raises(HeadroomError, match="retired"):
        with store.one_commit():
            store.remember(ctx, "the docs are built with mkdocs")
            store.remember(ctx, "releases are tagged from the release branch", supersedes=kept["id"])
            store.retired = HeadroomError("client retired for the test")  # the next write to Chroma is refused
    store.retired = None
    assert store.collection.count() == before
    assert store.get(ctx, kept["id"])["status"] == "active"
    assert [r["content"] for r in store.recall(ctx, "what builds the documentation?")] == ["releases are tagged from main"]
