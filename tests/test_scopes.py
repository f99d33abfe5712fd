"""Scope visibility: broader is visible to narrower, enforced in the Chroma filter."""

from __future__ import annotations

import itertools

import pytest
from fake_collection import where_matches
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_mcp.errors import Forbidden, NotFound
from headroom_mcp.store import chroma
from headroom_mcp.store.records import SCOPES
from headroom_mcp.store.scopes import Context, Visibility

WRITER = Context("alice", project="P", session_id="S", agent_id="A", turn_id="T")

# For each reader, which scopes of WRITER's memories it must see.
READERS = {
    "same everything": (WRITER, {"user", "project", "session", "agent", "turn"}),
    "other turn": (WRITER.with_(turn_id="T2"), {"user", "project", "session", "agent"}),
    "other agent": (WRITER.with_(agent_id="B", turn_id="T2"), {"user", "project", "session"}),
    "other session": (WRITER.with_(session_id="S2", turn_id="T2"), {"user", "project"}),
    "other project": (WRITER.with_(project="Q", session_id="S2", turn_id="T2"), {"user"}),
    "no project": (Context("alice", session_id="S9"), {"user"}),
    "other user": (Context("bob", project="P", session_id="S", agent_id="A", turn_id="T"), {"project"}),
    "other user, other project": (Context("bob", project="Q", session_id="S", agent_id="A", turn_id="T"), set()),
    "other user, project not granted": (Context("bob", project="P", session_id="S", role="write", projects=("Q",)), set()),
}


def test_visibility_matrix(store):
    ids = {scope: store.remember(WRITER, f"the {scope} level fact about zebra crossings", scope=scope)["id"] for scope in SCOPES}
    for name, (reader, expected) in READERS.items():
        seen = {m["scope"] for m in store.list(reader)}
        assert seen == expected, name
        recalled = {m["id"] for m in store.recall(reader, "zebra crossings fact", limit=10)}
        assert recalled == {ids[s] for s in expected}, name


def test_user_memory_follows_the_user_across_projects_and_agents(store):
    store.remember(WRITER, "alice prefers tabs over spaces", scope="user")
    codex_elsewhere = Context("alice", project="github.com/acme/other", session_id="x", agent_id="codex")
    assert [m["content"] for m in store.recall(codex_elsewhere, "tabs or spaces")] == ["alice prefers tabs over spaces"]


def test_default_scope_is_project_when_known_else_user(store):
    assert store.remember(WRITER, "fact one about deploys")["scope"] == "project"
    assert store.remember(Context("alice"), "fact two about editors")["scope"] == "user"


def test_recall_scope_and_tag_and_agent_filters(store):
    store.remember(WRITER, "the api gateway runs on envoy", scope="project", tags=["infra"])
    store.remember(WRITER.with_(agent_id="codex"), "the api gateway has a 30s timeout", scope="project", tags=["limits"])
    store.remember(WRITER, "alice likes the api gateway docs", scope="user")
    assert {m["scope"] for m in store.recall(WRITER, "api gateway", scope="user")} == {"user"}
    assert [m["tags"] for m in store.recall(WRITER, "api gateway", tags=["limits"])] == [["limits"]]
    assert {tuple(m["agents"]) for m in store.recall(WRITER, "api gateway", agent="codex")} == {("codex",)}


def test_filtering_happens_before_ranking(store):
    """A visible memory is found even when many better-matching invisible ones exist."""
    bob = Context("bob", project="P")
    for i in range(60):
        store.remember(bob, f"the release checklist item {i} for the mobile app build", scope="user")
    mine = store.remember(WRITER, "our release checklist lives in docs/RELEASE.md", scope="user")["id"]
    assert [m["id"] for m in store.recall(WRITER, "release checklist mobile app", limit=3)] == [mine]


names = st.sampled_from(["", "a", "b"])
metas = st.fixed_dictionaries({
    "user_id": st.sampled_from(["alice", "bob"]), "scope": st.sampled_from(SCOPES), "project": names,
    "session_id": names, "agent_id": names, "turn_id": names, "status": st.sampled_from(["active", "forgotten"]),
    "tags": st.lists(st.sampled_from(["x", "y"]), max_size=2), "agents": st.lists(st.sampled_from(["a", "b"]), max_size=2),
    "expires_at": st.sampled_from([0.0, 50.0, 150.0]),
})
contexts = st.builds(Context, user_id=st.sampled_from(["alice", "bob"]), project=names, session_id=names, agent_id=names, turn_id=names,
                   projects=st.sampled_from([("*",), ("a",), ("b", "c")]))


@settings(max_examples=400, deadline=None)
@given(meta=metas, ctx=contexts, scopes=st.sampled_from([SCOPES, ("user",), ("agent", "turn")]),
       tags=st.sampled_from([(), ("x",), ("x", "y")]), agent=st.sampled_from(["", "a"]))
def test_where_filter_and_predicate_agree(meta, ctx, scopes, tags, agent):
    meta = {k: v for k, v in meta.items() if v not in ("", [])}
    vis = Visibility(ctx, scopes=scopes, tags=tags, agent=agent, now=100.0)
    where = chroma.visible(vis)
    assert vis.matches(meta) == (where is not None and where_matches(where, meta))


def test_every_scope_combination_yields_a_valid_chroma_filter(store):
    for r in range(1, len(SCOPES) + 1):
        for scopes in itertools.combinations(SCOPES, r):
            where = chroma.visible(Visibility(WRITER, scopes=scopes, tags=("x",), agent="a", now=1.0))
            store.collection.get(where=where, limit=1)  # raises if Chroma rejects the filter


# ---- team sharing and grants --------------------------------------------------------------

ALICE = Context("alice", project="P", session_id="S1", agent_id="claude", role="write", projects=("P",))
BOB = Context("bob", project="P", session_id="S2", agent_id="codex", role="write", projects=("P",))


def test_project_memories_are_shared_by_the_team_and_user_memories_stay_private(store):
    shared = store.remember(ALICE, "the staging database is reset every Monday", scope="project")["id"]
    private = store.remember(ALICE, "alice reviews code in the morning", scope="user")["id"]
    assert [m["id"] for m in store.recall(BOB, "when is staging reset", limit=10)] == [shared]
    merged = store.remember(BOB, "The staging database is reset every Monday.", scope="project")
    assert merged["status"] == "merged" and merged["id"] == shared
    record = store.get(BOB, shared)
    assert record["users"] == ["alice", "bob"] and record["agents"] == ["claude", "codex"] and record["seen_count"] == 2
    with pytest.raises(NotFound):
        store.get(BOB, private)
    # The same words in user scope are each user's own fact: no cross-user merge.
    assert store.remember(BOB, "alice reviews code in the morning", scope="user")["status"] == "created"


def test_forget_follows_role_and_projects(store):
    project_fact = store.remember(ALICE, "deploys go through the release train", scope="project")["id"]
    session_fact = store.remember(ALICE, "this session is refactoring the parser", scope="session")["id"]
    user_fact = store.remember(ALICE, "alice likes short commit messages", scope="user")["id"]
    reader = BOB.with_(role="read")
    with pytest.raises(Forbidden):
        store.remember(reader, "readers cannot write")
    with pytest.raises(Forbidden):
        store.forget(reader, id=project_fact)
    outsider = BOB.with_(project="Q", projects=("Q",))
    for memory_id in (project_fact, session_fact, user_fact):
        with pytest.raises(NotFound):
            store.forget(outsider, id=memory_id)
    with pytest.raises(NotFound):  # a writer on P does not manage a teammate's own memories
        store.forget(BOB, ids=[session_fact, project_fact])
    assert store.get(ALICE, project_fact)["status"] == "active"  # nothing of the refused batch went
    admin = BOB.with_(role="admin")
    with pytest.raises(NotFound):  # an admin cleans up teammates' session memories but does not read them
        store.get(admin, session_fact)
    assert store.forget(admin, ids=[session_fact, project_fact])["forgotten"] == [session_fact, project_fact]
    with pytest.raises(NotFound):  # user scope stays private even to the project's admin
        store.forget(admin, id=user_fact)
    assert store.get(ALICE, user_fact)["status"] == "active"


def test_a_writer_forgets_project_memories_of_its_project(store):
    fact = store.remember(ALICE, "the ci cache key includes the lockfile hash", scope="project")["id"]
    assert store.forget(BOB, id=fact)["forgotten"] == [fact]
    assert store.recall(ALICE, "ci cache key") == []
