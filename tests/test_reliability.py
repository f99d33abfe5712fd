"""Derived indexes checked and repaired; stores written by an older format migrated."""

from __future__ import annotations

import pytest

from headroom_mcp.errors import HeadroomError
from headroom_mcp.store.chroma import open_client, open_collection
from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.migrations import SCHEMA_VERSION
from headroom_mcp.store.records import MemoryRecord, new_id, now


def test_check_finds_and_repairs_a_drifted_lexical_index(store, ctx):
    ids = [store.remember(ctx, f"service {name} is deployed with helm")["id"] for name in ("alpha", "beta", "gamma")]
    assert store.check() == {"records": 3, "active": 3, "lexical": 3, "vectors": 3, "missing": 0, "extra": 0, "repaired": False,
                             "migrated": []}
    store.lexical.remove(ids[0])
    store.indexes.watermark = now() + 3600  # so the incremental refresh does not bring it back
    store.lexical.apply("mem_ghost", "a memory the collection never had", {"updated_at": 1.0})
    report = store.check()
    assert (report["missing"], report["extra"], report["repaired"], report["lexical"]) == (1, 1, True, 3)
    assert store.check()["repaired"] is False
    assert [m["id"] for m in store.recall(ctx, "alpha helm")][:1] == [ids[0]]


def test_check_finds_and_repairs_a_damaged_vector_index(store, ctx):
    ids = [store.remember(ctx, f"service {name} is deployed with helm")["id"] for name in ("alpha", "beta", "gamma")]
    store.vectors.remove(ids[0])
    store.indexes.watermark = now() + 3600
    store.vectors.apply("mem_ghost", {"status": "active", "scope": "user", "user_id": ctx.user_id}, store.embedder.embed(["helm"])[0])
    assert "mem_ghost" not in {m["id"] for m in store.recall(ctx, "helm")}  # read back from the collection, never shown
    report = store.check(repair=False)
    assert (report["lexical"], report["vectors"], report["missing"], report["extra"], report["repaired"]) == (3, 3, 1, 1, False)
    report = store.check()
    assert (report["vectors"], report["missing"], report["extra"], report["repaired"]) == (3, 1, 1, True)
    assert store.vectors.ids() == set(ids) and store.check()["repaired"] is False
    assert [m["id"] for m in store.recall(ctx, "alpha helm")][:1] == [ids[0]]


def test_a_store_of_the_previous_format_is_migrated_once(tmp_path, embedder, ctx):
    data_dir = tmp_path / "old"
    store = MemoryStore.open(embedder, data_dir=data_dir)
    # What format 1 allowed: a credential stored verbatim (written below the screening).
    t = now()
    leaked = MemoryRecord(id=new_id(), content="deploys push with ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8", scope="user",
                          user_id=ctx.user_id, agents=["claude"], created_by="claude", created_at=t, updated_at=t)
    clean = MemoryRecord(id=new_id(), content="CI runs on GitHub Actions", scope="user", user_id=ctx.user_id,
                         agents=["codex"], created_by="codex", created_at=t, updated_at=t)
    store._write([leaked, clean], embedder.embed([leaked.content, clean.content]))
    store.collection.modify(metadata={**store.collection.metadata, "schema_version": 1})
    del store

    reopened = MemoryStore.open(embedder, data_dir=data_dir)
    assert reopened.migrated == ["format 1 → 2: 1 records changed", "format 2 → 3: 0 records changed"]
    kept = open_collection(open_client(data_dir / "backup-before-format-3"), embedder.model_id)  # the old store, as it was
    assert "ghp_" in kept.get(ids=[leaked.id])["documents"][0] and kept.metadata["schema_version"] == 1
    assert reopened.collection.metadata["schema_version"] == SCHEMA_VERSION == 3
    migrated = reopened.get(ctx, leaked.id)
    assert migrated["content"] == "deploys push with [REDACTED:github-token]"
    assert migrated["agents"] == ["claude"] and migrated["created_at"] == leaked.to_dict()["created_at"]
    assert reopened.get(ctx, clean.id)["content"] == "CI runs on GitHub Actions"
    assert [m["id"] for m in reopened.recall(ctx, "how do deploys push?")][:1] == [leaked.id]
    del reopened
    assert MemoryStore.open(embedder, data_dir=data_dir).migrated == []


def test_a_store_of_format_2_is_screened_again_by_the_new_scanner(tmp_path, embedder, ctx):
    data_dir = tmp_path / "v2"
    store = MemoryStore.open(embedder, data_dir=data_dir)
    t = now()
    missed = MemoryRecord(id=new_id(), content="connect with mysql -u root -pS3cretPass99 catalog", scope="user",
                          user_id=ctx.user_id, created_at=t, updated_at=t)  # format 2's rules let this through
    hidden = MemoryRecord(id=new_id(), content="release bot uses g\u200bh\u200bp\u200b_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8",
                          scope="user", user_id=ctx.user_id, created_at=t, updated_at=t)  # zero-width characters hid it
    store._write([missed, hidden], embedder.embed([missed.content, hidden.content]))
    store.collection.modify(metadata={**store.collection.metadata, "schema_version": 2})
    del store
    reopened = MemoryStore.open(embedder, data_dir=data_dir)
    assert reopened.migrated == ["format 2 → 3: 2 records changed"]
    assert "S3cretPass99" not in reopened.get(ctx, missed.id)["content"]
    assert reopened.get(ctx, hidden.id)["content"].startswith("release bot uses [REDACTED:")


def test_a_store_from_a_newer_version_is_refused(tmp_path, embedder):
    store = MemoryStore.open(embedder, data_dir=tmp_path / "new")
    store.collection.modify(metadata={**store.collection.metadata, "schema_version": SCHEMA_VERSION + 1})
    del store
    with pytest.raises(HeadroomError, match="newer than this headroom-mcp"):
        MemoryStore.open(embedder, data_dir=tmp_path / "new")
