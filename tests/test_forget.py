"""Forget takes only what the user named, and nothing forgotten is lost before the retention ends."""

from __future__ import annotations

import json

import pytest
from conftest import kill_daemon
from test_cli import cli

from headroom_mcp import SyncMemory
from headroom_mcp.config import Settings, duration
from headroom_mcp.errors import Forbidden, InvalidInput, NotFound
from headroom_mcp.store import ranking
from headroom_mcp.store.memory_store import MemoryStore

#: Ten unrelated facts of one project, two of them about staging.
FACTS = [
    "CI runs on GitHub Actions and must pass before merging",
    "the docs site is built with mkdocs and published on every tag",
    "feature flags live in LaunchDarkly; the SDK key is in the vault",
    "releases are published by a bot that uses the RELEASE_GITHUB_TOKEN secret",
    "staging deploys happen every weekday at 14:00 UTC from the main branch",
    "the staging database is Postgres 15 on a db.t3.medium instance",
    "the user prefers squash merges",
    "integration tests need REDIS_URL set",
    "the API listens on port 8080 locally",
    "this repo uses uv, not pip",
]


@pytest.fixture
def ten(store, ctx) -> dict[str, str]:
    return {store.remember(ctx, fact)["id"]: fact for fact in FACTS}


def active(store, ctx) -> set[str]:
    return {m["content"] for m in store.list(ctx)}


@pytest.mark.parametrize("query, named", [
    ("when do staging deploys happen?", "staging deploys happen every weekday at 14:00 UTC from the main branch"),
    ("the github token for releases", "releases are published by a bot that uses the RELEASE_GITHUB_TOKEN secret"),
    ("the staging database", "the staging database is Postgres 15 on a db.t3.medium instance"),
])
def test_a_query_forgets_only_the_fact_it_names(store, ctx, ten, query, named):
    preview = store.forget(ctx, query=query)
    assert [m["content"] for m in preview["would_forget"]] == [named]
    assert preview["forgotten"] == [] and len(active(store, ctx)) == 10
    done = store.forget(ctx, query=query, confirm=True)
    assert [ten[i] for i in done["forgotten"]] == [named]
    assert active(store, ctx) == set(FACTS) - {named}
    assert named not in {c["content"] for c in done["candidates"]}


def test_a_neighbour_on_the_same_topic_is_a_candidate_not_a_casualty(store, ctx, ten):
    done = store.forget(ctx, query="when do staging deploys happen?", confirm=True)
    assert "the staging database is Postgres 15 on a db.t3.medium instance" in {c["content"] for c in done["candidates"]}
    assert "the staging database is Postgres 15 on a db.t3.medium instance" in active(store, ctx)


@pytest.mark.parametrize("query", ["capital of Mongolia", "which CI do we use", "the production Kafka cluster size"])
def test_a_query_that_names_nothing_clearly_forgets_nothing(store, ctx, ten, query):
    done = store.forget(ctx, query=query, confirm=True)
    assert done["forgotten"] == [] and len(active(store, ctx)) == 10
    recalled = {m["id"] for m in store.recall(ctx, query, limit=10)}
    assert {c["id"] for c in done["candidates"]} == recalled  # what matched is shown, to pick by id


@pytest.mark.parametrize("query", ["staging", "tests", "merge", "the vault", "docs and CI", "port", "token"])
def test_forget_never_takes_what_recall_would_not_return(store, ctx, ten, query):
    recalled = {m["id"] for m in store.recall(ctx, query, limit=10)}
    done = store.forget(ctx, query=query, confirm=True)
    assert set(done["forgotten"]) <= recalled


@pytest.mark.parametrize("confirm", [1, "yes", "true", None, 0.0])
def test_confirm_must_be_a_real_boolean(store, ctx, ten, confirm):
    with pytest.raises(InvalidInput, match="confirm must be true or false"):
        store.forget(ctx, query="when do staging deploys happen?", confirm=confirm)
    assert len(active(store, ctx)) == 10


def test_the_preview_ids_can_be_passed_back(store, ctx, ten):
    preview = store.forget(ctx, query="the github token for releases")
    ids = [m["id"] for m in preview["would_forget"]] + [preview["candidates"][0]["id"]]  # the user also picked a candidate
    assert store.forget(ctx, ids=ids)["forgotten"] == ids
    assert len(active(store, ctx)) == 8


def test_restore_brings_a_forgotten_memory_back_whole(store, ctx, ten):
    gone = next(i for i, f in ten.items() if "REDIS_URL" in f)
    before = store.get(ctx, gone)
    store.forget(ctx, id=gone)
    assert gone not in {m["id"] for m in store.recall(ctx, "redis for integration tests")}
    listed = store.list(ctx, forgotten=True)
    assert [m["id"] for m in listed] == [gone] and listed[0]["restorable_until"] > listed[0]["updated_at"]
    assert store.restore(ctx, [gone]) == {"restored": [gone]}
    after = store.get(ctx, gone)
    assert after["status"] == "active" and store.recall(ctx, "redis for integration tests")[0]["id"] == gone
    assert {k: after[k] for k in ("content", "agents", "tags", "scope", "created_at")} == {k: before[k] for k in ("content", "agents", "tags", "scope", "created_at")}
    assert store.list(ctx, forgotten=True) == []


def test_restore_checks_every_id_first(store, ctx, ten):
    a, b = list(ten)[:2]
    store.forget(ctx, id=a)
    with pytest.raises(InvalidInput, match="not forgotten"):
        store.restore(ctx, [a, b])
    with pytest.raises(NotFound, match="nothing was restored"):
        store.restore(ctx, [a, "mem_doesnotexist"])
    assert store.get(ctx, a)["status"] == "forgotten"
    with pytest.raises(InvalidInput):
        store.restore(ctx, a)  # a bare string is not a list of ids


def test_another_users_forgotten_memory_cannot_be_restored(store, ctx, ten):
    mine = store.remember(ctx, "my editor is helix", scope="user")["id"]
    store.forget(ctx, id=mine)
    bob = ctx.with_(user_id="bob")
    with pytest.raises(NotFound):
        store.restore(bob, [mine])
    assert store.list(bob, forgotten=True) == []


def test_forgotten_memories_are_purged_only_after_the_retention(tmp_path, embedder, ctx):
    store = MemoryStore.open(embedder, data_dir=tmp_path / "s")
    gone = store.remember(ctx, "temporary fact about the sprint demo")["id"]
    store.forget(ctx, id=gone)
    assert store.purge() == 0 and store.restore(ctx, [gone])  # 30 days by default
    store.forget(ctx, id=gone)
    short = MemoryStore(store.collection, embedder, forget_retention=0.0)
    assert short.purge() == 1
    with pytest.raises(NotFound, match="purged"):
        short.restore(ctx, [gone])


def test_forgetting_a_restatement_by_id_says_what_to_do(store, ctx):
    first = store.remember(ctx, "the API listens on port 8080")
    again = store.remember(ctx.with_(agent_id="codex"), "The API listens on port 8080.")
    assert again["status"] == "merged"
    with pytest.raises(InvalidInput, match="restatement"):
        store.forget(ctx, id=again["restatement"])
    assert store.get(ctx, first["id"])["status"] == "active"


@pytest.mark.parametrize("text, seconds", [("3600", 3600), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600),
                                           ("1.5h", 5400), ("1e-05", 1e-05), ("2592000.0", 2592000)])
def test_retention_is_a_duration(text, seconds):
    assert duration(text, "X") == seconds
    assert Settings.resolve(env={"HEADROOM_MCP_FORGET_RETENTION": text}).forget_retention == seconds


@pytest.mark.parametrize("text", ["soon", "-1d", "30 days", "1e999", "d", "99999999999999999999d", "101y"])
def test_a_bad_retention_is_refused_at_start(text):
    with pytest.raises(InvalidInput, match="HEADROOM_MCP_FORGET_RETENTION"):
        Settings.resolve(env={"HEADROOM_MCP_FORGET_RETENTION": text})


def test_restore_from_the_cli_and_after_a_daemon_restart(data_dir):
    saved = json.loads(cli("remember", "the release checklist lives in docs/RELEASING.md", "--json").stdout)["id"]
    assert "restore" in cli("forget", saved).stdout
    kill_daemon(data_dir)  # the tombstone must outlive the process
    listed = json.loads(cli("list", "--forgotten", "--json").stdout)["memories"]
    assert [m["id"] for m in listed] == [saved]
    assert cli("restore", saved).stdout.strip() == f"restored {saved}"
    assert saved in cli("recall", "where is the release checklist?").stdout
    bad = cli("restore", saved)
    assert bad.returncode == 1 and "not forgotten" in bad.stderr


def test_restore_from_the_python_api(data_dir):
    with SyncMemory(agent_id="script") as memory:
        saved = memory.save("nightly builds upload to the artifacts bucket")["id"]
        memory.delete(id=saved)
        assert [m["id"] for m in memory.get_all(forgotten=True)] == [saved]
        assert memory.restore([saved]) == {"restored": [saved]}
        assert memory.search("where do nightly builds go?")[0]["id"] == saved


def test_restoring_a_fact_remembered_again_merges_it_instead_of_doubling_it(store, ctx):
    old = store.remember(ctx, "the API listens on port 8080")["id"]
    store.forget(ctx, id=old)
    new = store.remember(ctx.with_(agent_id="codex"), "the API listens on port 8080")["id"]
    assert new != old  # a forgotten memory is not a twin
    assert store.restore(ctx, [old]) == {"restored": [old], "merged_into": {old: new}}
    active = [m for m in store.list(ctx) if "8080" in m["content"]]
    assert [m["id"] for m in active] == [new] and set(active[0]["agents"]) == {"claude", "codex"}
    assert [r["id"] for r in store.get(ctx, new)["restatements"]] == [old]  # kept as its history


def test_a_memory_past_the_retention_cannot_be_restored_even_before_the_purge(store, ctx, embedder):
    gone = store.remember(ctx, "temporary fact about the sprint demo")["id"]
    store.forget(ctx, id=gone)
    with pytest.raises(NotFound, match="retention"):
        MemoryStore(store.collection, embedder, forget_retention=0.0).restore(ctx, [gone])
    assert store.get(ctx, gone)["status"] == "forgotten"


def test_forget_judges_by_score_even_when_recall_puts_a_newer_conflict_first():
    newer_first = [{"id": "newer", "score": 0.70}, {"id": "older", "score": 0.90}]  # as _newer_first may order them
    taken, candidates = ranking.named_by(newer_first)
    assert [m["id"] for m in taken] == ["older"] and [m["id"] for m in candidates] == ["newer"]
    assert ranking.named_by([{"id": "a", "score": 0.90}, {"id": "b", "score": 0.85}])[0] == []  # too close to tell


def test_restoring_into_a_twin_moves_the_history_along(store, ctx):
    first = store.remember(ctx, "the staging database is Postgres 16 on port 5433")["id"]
    restated = store.remember(ctx.with_(agent_id="codex"), "The staging database is Postgres 16 on port 5433.")["restatement"]
    store.forget(ctx, id=first)
    again = store.remember(ctx.with_(agent_id="gemini"), "the staging database is Postgres 16 on port 5433")["id"]
    store.restore(ctx, [first])
    assert {r["id"] for r in store.get(ctx, again)["restatements"]} == {first, restated}
    store.forget(ctx, id=again)
    MemoryStore(store.collection, store.embedder, forget_retention=0.0).purge()
    assert store.collection.get(ids=[first, restated, again])["ids"] == []  # nothing left behind


def test_a_read_only_caller_sees_no_forgotten_memories(store, ctx):
    gone = store.remember(ctx, "the old billing API key rotation runbook")["id"]
    store.forget(ctx, id=gone)
    reader = ctx.with_(user_id="bob", role="read", projects=(ctx.project,))
    with pytest.raises(Forbidden):
        store.list(reader, forgotten=True)
    assert [m["id"] for m in store.list(ctx, forgotten=True)] == [gone]
