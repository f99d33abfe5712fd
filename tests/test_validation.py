"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import pytest

from headroom_mcp.errors import InvalidInput, NotFound
from headroom_mcp.store.records import MAX_CONTENT_BYTES


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"content": ""}, "empty"),
        ({"content": "   \n\t "}, "empty"),
        ({"content": None}, "must be a string"),
        ({"content": 42}, "must be a string"),
        ({"content": "x" * (MAX_CONTENT_BYTES + 1)}, "limit"),
        ({"content": "é" * (MAX_CONTENT_BYTES // 2 + 1)}, "limit"),  # bytes, not characters
        ({"content": "bad \ud800 surrogate"}, "Unicode"),
        ({"content": "ok", "scope": "galaxy"}, "scope must be one of"),
        ({"content": "ok", "scope": 3}, "scope must be one of"),
        ({"content": "ok", "importance": 1.5}, "between 0 and 1"),
        ({"content": "ok", "importance": -0.1}, "between 0 and 1"),
        ({"content": "ok", "importance": float("nan")}, "between 0 and 1"),
        ({"content": "ok", "importance": "high"}, "must be a number"),
        ({"content": "ok", "importance": True}, "must be a number"),
        ({"content": "ok", "tags": "one-string"}, "list of strings"),
        ({"content": "ok", "tags": [1, 2]}, "must be strings"),
        ({"content": "ok", "tags": ["x" * 65]}, "longer than"),
        ({"content": "ok", "tags": [""]}, "empty"),
        ({"content": "ok", "supersedes": "mem_does_not_exist"}, "no memory"),
        ({"content": "ok", "supersedes": 7}, "memory id"),
    ],
)
def test_bad_remember_is_refused_and_writes_nothing(store, ctx, kwargs, message):
    store.remember(ctx, "an existing fact that must survive")
    before = store.count()
    with pytest.raises((InvalidInput, NotFound), match=message):
        store.remember(ctx, **kwargs)
    assert store.count() == before


def test_scope_needs_its_keys(store, ctx):
    with pytest.raises(InvalidInput, match="needs a project"):
        store.remember(ctx.with_(project=""), "fact", scope="project")
    with pytest.raises(InvalidInput, match="needs a turn id"):
        store.remember(ctx.with_(turn_id=""), "fact", scope="turn")
    assert store.count() == 0


def test_content_at_the_limit_is_accepted(store, ctx):
    r = store.remember(ctx, "a" * MAX_CONTENT_BYTES)
    assert r["status"] == "created"


def test_control_characters_are_stripped(store, ctx):
    r = store.remember(ctx, "uses\x00 uv\x07 for packaging")
    assert store.get(ctx, r["id"])["content"] == "uses uv for packaging"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"query": ""}, "empty"),
        ({"query": ["list"]}, "must be a string"),
        ({"query": "x", "limit": 0}, "at least 1"),
        ({"query": "x", "limit": "5"}, "integer"),
        ({"query": "x", "limit": 2.5}, "integer"),
        ({"query": "x", "scope": "everything"}, "scope"),
        ({"query": "x", "tags": "a"}, "list of strings"),
        ({"query": "x", "agent": 5}, "agent must be a string"),
        ({"query": "x", "min_score": "high"}, "min_score"),
        ({"query": "x", "asked_by": "robot"}, "asked_by"),
    ],
)
def test_bad_recall_is_refused(store, ctx, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        store.recall(ctx, **kwargs)


def test_enormous_limit_is_capped(store, ctx):
    for i in range(3):
        store.remember(ctx, f"fact number {i} about the deploy pipeline stage {i}")
    assert len(store.recall(ctx, "deploy pipeline", limit=10**12)) <= 100


def test_forget_unknown_id_changes_nothing(store, ctx):
    kept = store.remember(ctx, "the staging database is Postgres 16")["id"]
    with pytest.raises(NotFound):
        store.forget(ctx, ids=[kept, "mem_missing"])
    assert store.get(ctx, kept)["status"] == "active"


@pytest.mark.parametrize(
    "kwargs, message",
    [({}, "exactly one"), ({"id": "a", "query": "b"}, "exactly one"), ({"ids": "mem_1"}, "non-empty list"),
     ({"ids": []}, "non-empty list"), ({"id": "x", "confirm": "yes"}, "true or false")],
)
def test_bad_forget_is_refused(store, ctx, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        store.forget(ctx, **kwargs)


def test_other_users_memories_are_not_found(store, ctx):
    mine = store.remember(ctx, "alice's editor is neovim", scope="user")["id"]
    bob = ctx.with_(user_id="bob")
    with pytest.raises(NotFound):
        store.get(bob, mine)
    with pytest.raises(NotFound):
        store.forget(bob, id=mine)
    with pytest.raises(NotFound):
        store.remember(bob, "bob's editor is emacs", supersedes=mine)
    assert store.get(ctx, mine)["status"] == "active"


def test_every_method_in_the_table_has_a_handler_and_each_store_parameter():
    """``methods.METHODS`` is what every way in offers; ``service`` must run exactly those, and each
    parameter the table lists must be one its store method takes."""
    import inspect

    from headroom_mcp import methods, service
    from headroom_mcp.store.memory_store import MemoryStore

    assert set(service.HANDLERS) == set(methods.METHODS)
    calls = {"import": service._import, "recall": MemoryStore.recall, "list": MemoryStore.list,
             "context": MemoryStore.context, "check": MemoryStore.check, "backup": MemoryStore.backup}
    for name, method in methods.METHODS.items():
        taken = inspect.signature(calls.get(name, service.HANDLERS[name])).parameters
        assert set(method.params) <= set(taken), name


def test_a_limit_past_the_tables_bound_is_lowered_to_it():
    from headroom_mcp.methods import MAX_RECALL, METHODS

    recall = METHODS["recall"]
    assert recall.bounded({"query": "x", "limit": 10**9}) == {"query": "x", "limit": MAX_RECALL}
    assert recall.bounded({"query": "x", "limit": 3}) == {"query": "x", "limit": 3}
    assert recall.bounded({"query": "x", "limit": True}) == {"query": "x", "limit": True}  # not an int: the store refuses it
