"""Scope visibility: broader is visible to narrower, enforced in the Chroma filter."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

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
    "other user": (Context("bob", project="P", session_id="S", agent_id="A", turn_id="T"), set()),
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
contexts = st.builds(Context, user_id=st.sampled_from(["alice", "bob"]), project=names, session_id=names, agent_id=names, turn_id=names)


def _eval(where, meta) -> bool:
    """A small interpreter of the Chroma filter language subset we emit."""
    if "$and" in where:
        return all(_eval(w, meta) for w in where["$and"])
    if "$or" in where:
        return any(_eval(w, meta) for w in where["$or"])
    (key, cond), = where.items()
    value = meta.get(key)
    if isinstance(cond, dict):
        (op, arg), = cond.items()
        if op == "$contains":
            return arg in (value or [])
        if op == "$ne":
            return value != arg
        if op == "$gt":
            return value is not None and value > arg
        raise AssertionError(op)
    return value == cond


@settings(max_examples=400, deadline=None)
@given(meta=metas, ctx=contexts, scopes=st.sampled_from([SCOPES, ("user",), ("agent", "turn")]),
       tags=st.sampled_from([(), ("x",), ("x", "y")]), agent=st.sampled_from(["", "a"]))
def test_where_filter_and_predicate_agree(meta, ctx, scopes, tags, agent):
    meta = {k: v for k, v in meta.items() if v not in ("", [])}
    vis = Visibility(ctx, scopes=scopes, tags=tags, agent=agent, now=100.0)
    where = vis.where()
    assert vis.matches(meta) == (where is not None and _eval(where, meta))


def test_every_scope_combination_yields_a_valid_chroma_filter(store):
    for r in range(1, len(SCOPES) + 1):
        for scopes in itertools.combinations(SCOPES, r):
            where = Visibility(WRITER, scopes=scopes, tags=("x",), agent="a", now=1.0).where()
            store.collection.get(where=where, limit=1)  # raises if Chroma rejects the filter
