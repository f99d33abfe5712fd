"""What the memory browser added to the store: ``update`` (importance and tags in place) and
``list(everywhere=..., merged=...)``, on a real Chroma store with the real model, and their
CLI and Python API counterparts through a real daemon."""

from __future__ import annotations

import json

import pytest
from test_cli_robust import cli

from headroom_mcp.api import SyncMemory
from headroom_mcp.errors import Forbidden, InvalidInput, NotFound
from headroom_mcp.service import dispatch
from headroom_mcp.store.scopes import Context
from headroom_mcp.ui.views import WEEKS, _week, _weeks

P, Q = "github.com/acme/atlas", "github.com/acme/other"


def test_update_changes_importance_and_tags_in_place(store, ctx):
    saved = store.remember(ctx, "CI runs on GitHub Actions", tags=["ci"])
    before = store.get(ctx, saved["id"])
    out = store.update(ctx, saved["id"], importance=0.9, tags=["ci", "build"])
    assert out == {"id": saved["id"], "status": "updated", "importance": 0.9, "tags": ["ci", "build"]}
    after = store.get(ctx, saved["id"])
    assert (after["importance"], after["tags"], after["content"], after["status"]) == (0.9, ["ci", "build"], before["content"], "active")
    assert after["updated_at"] > before["updated_at"]
    store.update(ctx, saved["id"], tags=[])  # tags alone, cleared
    assert store.get(ctx, saved["id"])["tags"] == [] and store.get(ctx, saved["id"])["importance"] == 0.9
    assert [r["id"] for r in store.recall(ctx, "where does CI run?", tags=["build"])] == []


@pytest.mark.parametrize("kwargs, error, says", [
    ({}, InvalidInput, "give importance, tags or both"),
    ({"importance": 3}, InvalidInput, "between 0 and 1"),
    ({"importance": True}, InvalidInput, "importance must be a number"),
    ({"tags": "ci"}, InvalidInput, "tags must be a list"),
    ({"tags": ["ci", "ghp_" + "a1B2" * 9]}, InvalidInput, "a tag looks like a secret; nothing was changed"),
    ({"importance": 0.7, "tags": ["x" * 65]}, InvalidInput, "tag longer than 64"),
])
def test_a_refused_update_changes_nothing(store, ctx, kwargs, error, says):
    saved = store.remember(ctx, "the API listens on port 8080", importance=0.6, tags=["api"])
    before = store.get(ctx, saved["id"])
    with pytest.raises(error, match=says):
        store.update(ctx, saved["id"], **kwargs)
    assert store.get(ctx, saved["id"]) == before


def test_update_refuses_unknown_retired_foreign_and_read_only(store, ctx):
    old = store.remember(ctx, "the API listens on port 8080")
    new = store.remember(ctx, "the API listens on port 9090", supersedes=old["id"])
    with pytest.raises(NotFound, match="no memory with id 'mem_nope'"):
        store.update(ctx, "mem_nope", importance=0.9)
    with pytest.raises(InvalidInput, match=f"is superseded by {new['id']}, not active; nothing was changed"):
        store.update(ctx, old["id"], importance=0.9)
    mine = store.remember(ctx, "alice prefers tabs", scope="user")
    with pytest.raises(NotFound):
        store.update(Context("bob", project=P, agent_id="codex"), mine["id"], importance=0.9)
    with pytest.raises(Forbidden, match="read-only"):
        store.update(ctx.with_(role="read"), new["id"], importance=0.9)
    assert store.get(ctx, new["id"])["importance"] == 0.5 and store.get(ctx, mine["id"])["importance"] == 0.5


def test_update_is_a_method_of_the_daemon_protocol(store, ctx):
    saved = store.remember(ctx, "lint with ruff")
    out = dispatch(store, "update", {"id": saved["id"], "importance": 0.8}, ctx.to_mapping())
    assert out["importance"] == 0.8
    with pytest.raises(InvalidInput, match="update got unknown parameter"):
        dispatch(store, "update", {"id": saved["id"], "content": "x"}, ctx.to_mapping())


def test_list_everywhere_reaches_every_project_and_session_the_caller_may_read(store, ctx):
    here = store.remember(ctx, "atlas deploys on Fridays")
    elsewhere = store.remember(ctx.with_(project=Q), "other deploys on Mondays")
    session = store.remember(ctx.with_(session_id="s-old"), "the old session's scratch note", scope="session")
    teammate = store.remember(Context("bob", project=P, agent_id="codex"), "atlas uses postgres 16")
    private = store.remember(Context("bob", project=P, agent_id="codex"), "bob likes vim", scope="user")
    visible_here = {m["id"] for m in store.list(ctx)}
    assert here["id"] in visible_here and elsewhere["id"] not in visible_here and session["id"] not in visible_here
    everywhere = {m["id"] for m in store.list(ctx, everywhere=True)}
    assert {here["id"], elsewhere["id"], session["id"], teammate["id"]} <= everywhere
    assert private["id"] not in everywhere  # another user's own memory is never reachable
    # A grant that covers only P reaches P's project memories and the caller's own, not Q's.
    narrow = Context("alice", project=P, agent_id="claude", role="write", projects=(P,))
    reached = {m["id"] for m in store.list(narrow, everywhere=True)}
    assert here["id"] in reached and teammate["id"] in reached and elsewhere["id"] not in reached
    assert {m["id"] for m in store.list(ctx, everywhere=True, scope="session")} == {session["id"]}


def test_list_merged_gives_the_restatements_and_forgotten_everywhere(store, ctx):
    first = store.remember(ctx, "this repo uses uv, not pip")
    restated = store.remember(ctx.with_(agent_id="codex"), "The repository uses uv instead of pip.")
    assert restated["status"] == "merged"
    merged = store.list(ctx, merged=True)
    assert [(m["id"], m["merged_into"]) for m in merged] == [(restated["restatement"], first["id"])]
    elsewhere = store.remember(ctx.with_(project=Q), "other deploys on Mondays")
    store.forget(ctx.with_(project=Q), id=elsewhere["id"])
    assert store.list(ctx, forgotten=True) == []  # not visible from project P
    assert [m["id"] for m in store.list(ctx, forgotten=True, everywhere=True)] == [elsewhere["id"]]
    with pytest.raises(InvalidInput, match="forgotten or merged, not both"):
        store.list(ctx, forgotten=True, merged=True)
    with pytest.raises(InvalidInput, match="everywhere must be true or false"):
        store.list(ctx, everywhere="yes")


def test_update_and_list_everywhere_from_the_cli_and_the_api(data_dir):
    with SyncMemory(agent_id="claude") as memory:
        saved = memory.save("CI runs on GitHub Actions", tags=["ci"])
        other = SyncMemory(agent_id="claude", project=Q)
        far = other.save("other deploys on Mondays")
        other.close()
        out = cli("update", saved["id"], "--importance", "0.8", "--tag", "ci", "--tag", "build", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["tags"] == ["ci", "build"]
        assert memory.get(saved["id"])["importance"] == 0.8
        assert memory.update(saved["id"], tags=[])["tags"] == []
        listed = json.loads(cli("list", "--everywhere", "--json").stdout)["memories"]
        assert {saved["id"], far["id"]} <= {m["id"] for m in listed}
        assert far["id"] not in {m["id"] for m in memory.get_all()}
        assert far["id"] in {m["id"] for m in memory.get_all(everywhere=True)}
    refused = cli("update", saved["id"], "--tag", "x", "--clear-tags")
    assert refused.returncode == 2 and "not both" in refused.stderr


def test_the_activity_weeks_are_contiguous_and_capped():
    assert _week("2026-12-02T11:35:16Z") == "2026-11-30" and _week("2026-11-30T00:00:00Z") == "2026-11-30"
    assert _weeks({"2026-11-02", "2026-11-30"}) == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]
    years = _weeks({"2020-01-06", "2026-11-30"})
    assert len(years) == WEEKS and years[-1] == "2026-11-30" and _weeks(set()) == []
