"""MemoryStore's logic against the in-memory fake collection and against Chroma, with the same assertions.

``chroma.Records`` is the store's only way to its collection, so the store runs unchanged on
``fake_collection.FakeCollection``. Every test here runs three times: on the fake, on an
embedded Chroma store (reads answered from the derived indexes) and on a second store over
that Chroma collection (reads from the collection, as a replica on a Chroma server). A
fake that drifted from Chroma fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_collection import FakeCollection

from headroom_mcp.errors import InvalidInput, NotFound
from headroom_mcp.store import chroma
from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.records import FORGOTTEN, MERGED, MemoryRecord, new_id, now


@pytest.fixture(params=["fake", "chroma", "chroma-replica"])
def store(request: pytest.FixtureRequest, tmp_path: Path, embedder) -> MemoryStore:
    if request.param == "fake":
        return MemoryStore(FakeCollection(), embedder)
    embedded = MemoryStore.open(embedder, data_dir=tmp_path / "data")
    return embedded if request.param == "chroma" else MemoryStore(embedded.collection, embedder, refresh_interval=0.0)


def test_a_restatement_merges_counts_and_can_be_undone(store, ctx):
    first = store.remember(ctx, "this repo uses uv, not pip", importance=0.7)
    again = store.remember(ctx.with_(agent_id="codex"), "The repository uses uv instead of pip.", tags=["tooling"])
    assert again["status"] == "merged" and again["duplicate_of"] == first["id"] and again["agents"] == ["claude", "codex"]
    memory = store.get(ctx, first["id"])
    assert memory["seen_count"] == 2 and memory["tags"] == ["tooling"] and memory["importance"] == 0.7
    assert [r["id"] for r in memory["restatements"]] == [again["restatement"]]
    assert store.db.records([again["restatement"]])[again["restatement"]].status == MERGED
    assert [m["id"] for m in store.recall(ctx, "instead of pip")][:1] == [first["id"]]
    assert store.unmerge(ctx, again["restatement"])["unmerged_from"] == first["id"]
    back = store.get(ctx, again["restatement"])
    assert back["status"] == "active" and back["merged_into"] == ""  # the emptied field is gone from the metadata
    assert "merged_into" not in store.collection.get(ids=[again["restatement"]])["metadatas"][0]
    assert store.get(ctx, first["id"])["agents"] == ["claude"]
    assert {m["id"] for m in store.list(ctx)} == {first["id"], again["restatement"]}


def test_the_same_words_from_the_same_agent_only_count(store, ctx):
    first = store.remember(ctx, "Deploys go through make deploy")
    again = store.remember(ctx, "Deploys go through make deploy")
    assert again["status"] == "merged" and "restatement" not in again
    assert store.get(ctx, first["id"])["seen_count"] == 2 and store.count() == 1


def test_similar_and_superseded_facts(store, ctx):
    old = store.remember(ctx, "the API gateway timeout is 30 seconds")["id"]
    new = store.remember(ctx, "the API gateway timeout is 60 seconds", supersedes=old)
    assert new["status"] == "superseded" and new["supersedes"] == old
    assert store.get(ctx, old)["status"] == "superseded" and store.get(ctx, old)["superseded_by"] == new["id"]
    assert [m["id"] for m in store.list(ctx)] == [new["id"]]
    with pytest.raises(InvalidInput, match="already superseded"):
        store.remember(ctx, "the API gateway timeout is 90 seconds", supersedes=old)
    assert [m["id"] for m in store.recall(ctx, "gateway timeout")] == [new["id"]]


def test_forget_restore_and_purge(store, ctx):
    keep = store.remember(ctx, "the staging database is Postgres 16 on port 5433")["id"]
    gone = store.remember(ctx, "the frontend is built with Vite and deployed to Netlify")["id"]
    assert store.forget(ctx, id=gone) == {"forgotten": [gone]}
    assert [m["id"] for m in store.recall(ctx, "frontend Vite Netlify")] == []
    listed = store.list(ctx, forgotten=True)
    assert [m["id"] for m in listed] == [gone] and listed[0]["restorable_until"]
    with pytest.raises(NotFound):
        store.forget(ctx, ids=[keep, "mem_nope"])  # all or nothing
    assert store.get(ctx, keep)["status"] == "active"
    assert store.restore(ctx, [gone]) == {"restored": [gone]}
    assert [m["id"] for m in store.recall(ctx, "frontend Vite Netlify")][:1] == [gone]
    store.forget(ctx, id=gone)
    assert store.purge() == 0 and store.purge(older_than=0) == 1
    assert store.db.records([gone, keep]).keys() == {keep} and store.count() == 1


def test_restoring_into_a_twin_remembered_meanwhile(store, ctx):
    first = store.remember(ctx, "the build cache lives in /var/cache/atlas")["id"]
    store.forget(ctx, id=first)
    again = store.remember(ctx.with_(agent_id="codex"), "the build cache lives in /var/cache/atlas")["id"]
    assert again != first
    assert store.restore(ctx, [first]) == {"restored": [first], "merged_into": {first: again}}
    assert store.get(ctx, again)["agents"] == ["codex", "claude"] and store.get(ctx, first)["status"] == MERGED


def test_import_keeps_ids_replaces_on_a_second_import_and_merges_twins(store, ctx):
    t = now()
    records = [MemoryRecord(id=new_id(), content=f"service {n} listens on port {8000 + n}", scope="user",
                            user_id=ctx.user_id, agents=["claude"], created_by="claude", created_at=t, updated_at=t)
               for n in range(5)]
    assert store.import_records(records, batch=2) == {"created": 5, "merged": 0, "replaced": 0, "redacted": 0}
    assert store.import_records(records) == {"created": 0, "merged": 0, "replaced": 5, "redacted": 0}
    twin = MemoryRecord(id=new_id(), content="Service 3 listens on port 8003.", scope="user", user_id=ctx.user_id,
                        agents=["codex"], created_by="codex", created_at=t, updated_at=t)
    assert store.import_records([twin])["merged"] == 1
    assert store.get(ctx, records[3].id)["agents"] == ["claude", "codex"]
    assert store.stats(ctx)["total"] == 5 and store.check(repair=False)["missing"] == 0


def test_visibility_reaches_the_collection_filters(store, ctx):
    mine = store.remember(ctx, "alice prefers tabs over spaces", scope="user")["id"]
    theirs = store.remember(ctx.with_(user_id="bob"), "bob prefers spaces over tabs", scope="user")["id"]
    session = store.remember(ctx, "this session is refactoring the importer", scope="session", tags=["wip"])["id"]
    assert {m["id"] for m in store.list(ctx)} == {mine, session}
    assert [m["id"] for m in store.list(ctx, tags=["wip"])] == [session]
    assert {m["id"] for m in store.list(ctx.with_(session_id="other"))} == {mine}
    assert {m["id"] for m in store.list(ctx.with_(session_id="other"), everywhere=True)} == {mine, session}
    assert theirs not in {m["id"] for m in store.recall(ctx, "prefers spaces over tabs")}
    assert [m["id"] for m in store.context(ctx)] and store.stats(ctx)["by_scope"] == {"user": 1, "session": 1}
    assert store.clear(ctx, scope="session") == {"forgotten": 1}
    assert store.db.records([session])[session].status == FORGOTTEN


def test_paged_reads_see_every_record_once(store, ctx):
    ids = [store.remember(ctx, f"queue {n} drains every {n + 1} minutes", scope="user")["id"] for n in range(7)]
    pages = list(store.db.pages(chroma.equal({"user_id": ctx.user_id}), [], size=3))
    assert [len(p["ids"]) for p in pages] == [3, 3, 1]
    assert sorted(i for p in pages for i in p["ids"]) == sorted(ids)
    assert sorted(store.db.ids_where(chroma.with_status(("active", "forgotten")))) == sorted(ids)
    assert store.db.vectors(ids[:2]).keys() == set(ids[:2]) and store.db.ids_where(chroma.restatements_of(ids[0])) == []


def test_writes_keep_chromas_metadata_rules(store):
    """Chroma merges metadata on upsert and update (a rule the fake keeps); ``Records.upsert``
    and ``Records.update`` replace it, deleting the record fields the new metadata leaves out."""
    vector = [1.0] + [0.0] * 383
    store.collection.upsert(ids=["m0"], embeddings=[vector], documents=["t"], metadatas=[{"status": "active", "superseded_by": "m9"}])
    store.collection.upsert(ids=["m0"], embeddings=[vector], documents=["t"], metadatas=[{"status": "active"}])
    assert store.collection.get(ids=["m0"])["metadatas"][0] == {"status": "active", "superseded_by": "m9"}  # Chroma's rule
    store.db.upsert(["m1"], ["text"], [{"status": "active", "scope": "user", "superseded_by": "m0"}], [vector])
    store.db.upsert(["m1"], ["text again"], [{"status": "active", "scope": "user"}], [vector])
    assert store.collection.get(ids=["m1"])["metadatas"][0] == {"status": "active", "scope": "user"}
    store.db.update(["m1"], [{"status": "forgotten", "scope": "user", "x_note": "kept"}])
    got = store.collection.get(ids=["m1"])
    assert got["metadatas"][0] == {"status": "forgotten", "scope": "user", "x_note": "kept"} and got["documents"] == ["text again"]
    store.db.delete(["m1"])
    assert store.db.records(["m1"]) == {} and store.db.vectors(["m1"]) == {}
