"""The in-memory vector index: exact top-k, the visibility mask, snapshots, and its place in the store."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scopes import contexts, metas

from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.records import ACTIVE, MERGED
from headroom_mcp.store.scopes import Context, Visibility
from headroom_mcp.store.vectors import VectorIndex, Where

RNG = np.random.default_rng(12)


def unit(n: int, dim: int = 16) -> np.ndarray:
    v = RNG.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


EVERYONE = Where.equal({"scope": "user"})


def test_top_k_is_exact_through_growth_updates_and_compaction():
    index = VectorIndex(capacity=4)
    vectors = unit(300)
    for n, v in enumerate(vectors):
        index.apply(f"m{n}", {"scope": "user"}, v)
    for n in range(0, 300, 3):  # every third retired, every other one updated in place (same vector)
        index.remove(f"m{n}")
        index.apply(f"m{n + 1}", {"scope": "user", "updated_at": 2.0})
    assert index.apply("m0", {"scope": "user"}) is False  # retired: no vector to keep
    held = [n for n in range(300) if n % 3]
    assert index.ids() == {f"m{n}" for n in held} and len(index) == len(held)
    query = unit(1)[0]
    expected = sorted(held, key=lambda n: -float(vectors[n] @ query))[:10]
    hits = index.score(query).top(EVERYONE, 10)
    assert [h.id for h in hits] == [f"m{n}" for n in expected]
    assert np.allclose([h.cosine for h in hits], [vectors[n] @ query for n in expected], atol=1e-6)
    assert index.meta("m1") == {"scope": "user", "updated_at": 2.0}
    for n in held[::5]:  # a mask admitting a few rows scores only those: the same ranking
        index.apply(f"m{n}", {"scope": "user", "user_id": "few"})
    few = sorted(held[::5], key=lambda n: -float(vectors[n] @ query))[:10]
    hits = index.score(query).top(Where.equal({"scope": "user", "user_id": "few"}), 10)
    assert [h.id for h in hits] == [f"m{n}" for n in few]
    assert np.allclose([h.cosine for h in hits], [vectors[n] @ query for n in few], atol=1e-6)


def test_a_search_sees_the_index_as_it_was_when_it_began():
    index = VectorIndex(capacity=2)
    a, b, c = unit(3)
    index.apply("a", {"scope": "user"}, a)
    index.apply("b", {"scope": "user"}, b)
    snapshot = index.score(a)
    index.apply("a", {"scope": "user", "updated_at": 5.0})  # replaced while the search runs
    index.apply("c", {"scope": "user"}, c)  # grows the index
    index.remove("b")
    assert {h.id for h in snapshot.top(EVERYONE, 5)} == {"a", "b"}
    assert {h.id for h in index.score(a).top(EVERYONE, 5)} == {"a", "c"}


@settings(max_examples=150, deadline=None)
@given(records=st.lists(st.tuples(metas, st.sampled_from([ACTIVE, MERGED, "forgotten"])), min_size=1, max_size=25),
       ctx=contexts, scopes=st.sampled_from([("user", "project", "session", "agent", "turn"), ("user",), ("agent", "turn")]),
       tags=st.sampled_from([(), ("x",), ("x", "y")]), agent=st.sampled_from(["", "a"]),
       statuses=st.sampled_from([(ACTIVE,), (MERGED,), (ACTIVE, MERGED)]))
def test_the_mask_admits_exactly_what_visibility_matches(records, ctx, scopes, tags, agent, statuses):
    index = VectorIndex(capacity=4)
    stored = []
    for n, ((meta, status), vector) in enumerate(zip(records, unit(len(records)))):
        meta = {**{k: v for k, v in meta.items() if v not in ("", [])}, "status": status}
        index.apply(f"m{n}", meta, vector)
        stored.append(meta)
    vis = Visibility(ctx, scopes=scopes, tags=tags, agent=agent, now=100.0, statuses=statuses)
    expected = {f"m{n}" for n, meta in enumerate(stored) if vis.matches(meta)}
    scores = index.score(unit(1)[0])
    assert {h.id for h in scores.top(Where.visible(vis), len(records))} == expected
    ids = [f"m{n}" for n in range(len(records))]
    assert {i for i, ok in zip(ids, scores.admits_all(Where.visible(vis))(ids)) if ok} == expected


def test_ranking_never_sees_another_users_project_or_session_or_an_expired_turn(store, embedder):
    alice = Context("alice", project="P", session_id="S", agent_id="A", turn_id="T")
    text = "the payments service retries webhooks five times"
    store.remember(Context("bob", project="P", session_id="S"), text, scope="user")
    store.remember(alice.with_(project="Q"), text + " in project Q", scope="project")
    store.remember(alice.with_(session_id="S2"), text + " in session two", scope="session")
    store.turn_ttl = 0.0  # expired as soon as it is written
    store.remember(alice, text + " this turn", scope="turn")
    mine = store.remember(alice, "alice keeps the payment webhook notes in docs/payments.md", scope="user")["id"]
    assert len(store.vectors) == 5
    vis = store.visibility(alice)
    assert {h.id for h in store.vectors.score(embedder.embed([text])[0]).top(Where.visible(vis), 50)} == {mine}
    assert [m["id"] for m in store.recall(alice, text, limit=10)] == [mine]


def test_restatements_forget_and_supersede_keep_the_index_equal_to_the_active_records(store, ctx):
    first = store.remember(ctx, "the staging database is postgres 15 on port 5433")
    again = store.remember(ctx.with_(agent_id="codex"), "staging db: postgres 15, listening on port 5433")
    assert again["status"] == "merged" and store.vectors.meta(again["restatement"])["status"] == MERGED
    assert store.vectors.meta(first["id"])["seen_count"] == 2  # the merge's new metadata, same vector
    old = store.remember(ctx, "CI runs on GitHub Actions with four parallel jobs")["id"]
    new = store.remember(ctx, "CI runs on Buildkite now", supersedes=old)["id"]
    gone = store.remember(ctx, "the legacy cron host is cron-01")["id"]
    store.forget(ctx, id=gone)
    assert store.vectors.ids() == {first["id"], again["restatement"], new}
    assert store.vectors.ids() == store.lexical.ids()
    store.restore(ctx, [gone])  # active again through a write that carries no vector: fetched from the collection
    assert gone in store.vectors
    assert [m["id"] for m in store.recall(ctx, "cron host")][:1] == [gone]


def test_another_store_on_the_same_collection_finds_a_write_by_meaning(tmp_path, embedder, ctx):
    a = MemoryStore.open(embedder, data_dir=tmp_path / "shared")
    b = MemoryStore(a.collection, embedder)
    fact = a.remember(ctx, "the nightly backup job copies the warehouse to cold storage")["id"]
    assert fact not in b.vectors
    assert [m["id"] for m in b.recall(ctx, "where do nightly backups of the warehouse go?")][:1] == [fact]
    assert fact in b.vectors
