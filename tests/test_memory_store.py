"""Remember, merge, recall, forget and supersede against a real store and the real model."""

from __future__ import annotations

import time

import pytest

from headroom_mcp.errors import InvalidInput, NotFound
from headroom_mcp.store import ranking
from headroom_mcp.store.lexical import LexicalIndex
from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.records import SUPERSEDED


def test_remember_returns_the_contract_fields(store, ctx):
    r = store.remember(ctx, "this repo uses uv, not pip", importance=0.9, tags=["tooling"])
    assert r["status"] == "created" and r["scope"] == "project" and r["agents"] == ["claude"]
    m = store.get(ctx, r["id"])
    assert m["content"] == "this repo uses uv, not pip"
    assert m["created_by"] == "claude" and m["seen_count"] == 1 and m["importance"] == 0.9
    assert m["tags"] == ["tooling"] and m["project"] == "github.com/acme/atlas"
    assert m["created_at"].endswith("Z") and m["created_at"] == m["updated_at"]


def test_same_fact_from_two_agents_is_stored_once_with_provenance(store, ctx):
    first = store.remember(ctx, "this repo uses uv, not pip")
    second = store.remember(ctx.with_(agent_id="codex"), "The repository uses uv instead of pip.", tags=["tooling"])
    assert second["status"] == "merged" and second["duplicate_of"] == first["id"] == second["id"]
    assert second["agents"] == ["claude", "codex"]
    m = store.get(ctx, first["id"])
    assert m["seen_count"] == 2 and m["created_by"] == "claude" and m["tags"] == ["tooling"]
    assert [x["id"] for x in store.list(ctx)] == [first["id"]]
    # The restatement's words are kept as the memory's history, not thrown away.
    assert [(h["id"], h["content"], h["agents"]) for h in m["restatements"]] == [
        (second["restatement"], "The repository uses uv instead of pip.", ["codex"])]


def test_a_restatement_is_searchable_and_a_wrong_merge_can_be_undone(store, ctx):
    first = store.remember(ctx, "this repo uses uv, not pip")
    second = store.remember(ctx.with_(agent_id="codex"), "The repository uses uv instead of pip.")
    # Words only the restatement has find the memory (lexically and by its own vector).
    assert [r["id"] for r in store.recall(ctx, "instead of pip")][:1] == [first["id"]]
    undone = store.unmerge(ctx, second["restatement"])
    assert undone == {"id": second["restatement"], "status": "unmerged", "unmerged_from": first["id"]}
    kept = store.get(ctx, first["id"])
    assert kept["seen_count"] == 1 and kept["agents"] == ["claude"] and kept["restatements"] == []
    restored = store.get(ctx, second["restatement"])
    assert restored["status"] == "active" and restored["content"] == "The repository uses uv instead of pip."
    assert restored["agents"] == ["codex"] and restored["merged_into"] == ""
    assert {m["id"] for m in store.list(ctx)} == {first["id"], second["restatement"]}
    assert store.check(repair=False)["missing"] == 0 and store.check(repair=False)["extra"] == 0
    with pytest.raises(InvalidInput, match="not a merged restatement"):
        store.unmerge(ctx, first["id"])  # changes nothing
    with pytest.raises(NotFound):
        store.unmerge(ctx, "mem_nope")
    assert store.get(ctx, first["id"])["seen_count"] == 1


def test_exact_repeat_by_the_same_agent_only_counts(store, ctx):
    first = store.remember(ctx, "Deploys go through make deploy")
    again = store.remember(ctx, "deploys go through make deploy.")
    assert again["status"] == "merged" and "restatement" not in again
    assert store.get(ctx, first["id"])["restatements"] == []


def test_a_new_value_in_the_same_slot_is_a_conflict_not_a_merge(store, ctx):
    old = store.remember(ctx, "The API server listens on port 8080")
    new = store.remember(ctx, "The API server listens on port 9090")
    assert new["status"] == "created" and new["id"] != old["id"]
    assert [c["id"] for c in new["conflicts"]] == [old["id"]]
    assert "similar" not in new or old["id"] not in [s["id"] for s in new["similar"]]
    # Both match a question about the port: the newer one comes first.
    assert [r["id"] for r in store.recall(ctx, "which port does the API server listen on?")][:2] == [new["id"], old["id"]]


def test_the_same_words_from_two_speakers_are_two_memories(store, ctx):
    a = store.remember(ctx, "Caroline: I went to the support group yesterday.")
    b = store.remember(ctx, "Melanie: I went to the support group yesterday.")
    assert b["status"] == "created" and b["id"] != a["id"]


def test_exact_repeat_merges_and_counts(store, ctx):
    ids = {store.remember(ctx, "Deploys go through make deploy")["id"] for _ in range(3)}
    assert len(ids) == 1
    assert store.get(ctx, ids.pop())["seen_count"] == 3


@pytest.mark.parametrize("a, b", [
    ("atlas targets Python 3.12", "atlas targets Python 3.11"),
    ("Always squash-merge pull requests", "Never squash-merge pull requests"),
    ("the API rate limit is 100 requests/min", "the API rate limit is 1000 requests/min"),
])
def test_a_fact_with_one_slot_changed_is_kept_and_reported_as_a_conflict(store, ctx, a, b):
    first = store.remember(ctx, a)
    second = store.remember(ctx, b)
    assert second["status"] == "created" and second["id"] != first["id"]
    assert [s["id"] for s in second["conflicts"]] == [first["id"]] and "similar" not in second


def test_a_different_fact_about_another_subject_is_similar_not_a_conflict(store, ctx):
    first = store.remember(ctx, "the api service caches sessions in Redis")
    second = store.remember(ctx, "the scheduler service caches sessions in Redis")
    assert second["status"] == "created" and "conflicts" not in second
    assert [s["id"] for s in second["similar"]] == [first["id"]]


def test_merging_only_happens_within_one_scope_domain(store, ctx):
    store.remember(ctx, "run the linter before pushing", scope="project")
    other_project = store.remember(ctx.with_(project="github.com/acme/other"), "run the linter before pushing", scope="project")
    as_user = store.remember(ctx, "run the linter before pushing", scope="user")
    assert other_project["status"] == as_user["status"] == "created"


def test_recall_is_hybrid_and_finds_identifiers_lexically(store, ctx):
    store.remember(ctx, "the nightly job fails with ERR_QUOTA_4471 when the bucket is full")
    store.remember(ctx, "the user prefers concise commit messages")
    store.remember(ctx, "staging deploys need the VPN")
    hits = store.recall(ctx, "ERR_QUOTA_4471")
    assert hits and "ERR_QUOTA_4471" in hits[0]["content"]
    assert set(hits[0]) >= {"id", "content", "score", "scope", "agents", "importance", "tags", "created_at", "updated_at"}


def test_lexical_index_matches_other_inflections():
    index = LexicalIndex()
    index.apply("a", "Melanie painted sunrises over the lake", {"updated_at": 1.0})
    index.apply("b", "the staging cluster runs on spot instances", {"updated_at": 1.0})
    for query in ("paintings of a sunrise", "who paints?", "painting"):
        assert [doc_id for doc_id, _ in index.search(query, lambda meta: True, 5)] == ["a"], query


def test_recall_finds_paraphrases_densely(store, ctx):
    store.remember(ctx, "this repo uses uv, not pip")
    store.remember(ctx, "the frontend is built with vite")
    hits = store.recall(ctx, "which package manager should I use for Python dependencies?")
    assert hits and hits[0]["content"] == "this repo uses uv, not pip"


def test_terse_queries_find_their_fact(store, ctx):
    store.remember(ctx, "this repo uses uv, not pip")
    store.remember(ctx, "CI runs on GitHub Actions")
    assert [m["content"] for m in store.recall(ctx, "package manager")][:1] == ["this repo uses uv, not pip"]


def test_recall_returns_nothing_rather_than_noise(store, ctx):
    for fact in ["this repo uses uv, not pip", "CI runs on GitHub Actions", "the user prefers tabs"]:
        store.remember(ctx, fact)
    assert store.recall(ctx, "what is the capital of Mongolia?") == []
    assert store.recall(ctx, "banana bread recipe with walnuts") == []


PROJECT_FACTS = ["CI runs on Buildkite with a 45 minute timeout", "The staging database is snapshotted every night at 02:00 UTC",
                 "Run the unit tests with make test; it needs Docker running", "The API listens on port 8080 in development",
                 "Frontend code is formatted with Prettier, two-space indent"]
#: An agent's query that none of PROJECT_FACTS answers.
UNANSWERED = "the on-call rotation for production incidents is weekly, pager"


def test_an_agents_query_that_nothing_answers_gets_nothing(store, ctx, monkeypatch):
    """An agent's query (``asked_by="agent"``) gets nothing unless its best match is relevant
    enough (``ranking.AGENT_GATES``, per embedder); a person's words have no gate, and ``min_score`` only
    ever drops more."""
    for fact in PROJECT_FACTS:
        store.remember(ctx, fact)
    unanswered = UNANSWERED
    assert store.recall(ctx, unanswered, asked_by="agent") == []
    assert store.recall(ctx, unanswered, asked_by="agent", min_score=0.0) == []
    assert store.recall(ctx, unanswered)  # the same words from a prompt: the best of what is there
    found = store.recall(ctx, "the port the API listens on in development is 8080", asked_by="agent")
    assert found[0]["content"] == "The API listens on port 8080 in development"
    monkeypatch.setitem(ranking.AGENT_GATES, store.embedder.calibration, 0.0)
    assert store.recall(ctx, unanswered, asked_by="agent")  # it was the gate


def test_an_embedder_not_calibrated_gets_no_gate(embedder, ctx, tmp_path):
    """The gate goes by the model as calibrated, never by a default: an unknown one has none."""

    class Unknown:
        model_id, calibration = "onnx:some-model-of-mine", ""

        def embed(self, texts):
            return embedder.embed(texts)

    store = MemoryStore.open(Unknown(), tmp_path / "unknown")
    for fact in PROJECT_FACTS:
        store.remember(ctx, fact)
    assert store.recall(ctx, UNANSWERED, asked_by="agent")


def test_each_embedder_shipped_is_calibrated(embedder, tmp_path):
    """The default model and what `model build` writes are known by the gates (by SOURCE.json,
    not by the folder's name); a folder of the same name holding something else is not."""
    import json

    from headroom_mcp.store import mpnet
    from headroom_mcp.store.embedder import OnnxEmbedder

    assert embedder.calibration in ranking.AGENT_GATES
    built = tmp_path / "anywhere"
    built.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (built / name).write_bytes(b"")
    assert OnnxEmbedder(built).calibration == ""
    (built / mpnet.SOURCE_FILE).write_text(json.dumps(mpnet.source_info(True, "0" * 64)))
    assert OnnxEmbedder(built).calibration in ranking.AGENT_GATES
    (built / mpnet.SOURCE_FILE).write_text(json.dumps(mpnet.source_info(False, "0" * 64)))
    assert OnnxEmbedder(built).calibration not in ranking.AGENT_GATES  # the fp32 build: not calibrated


def test_importance_breaks_near_ties(store, ctx):
    low = store.remember(ctx, "the cache TTL for sessions is short", importance=0.1)["id"]
    high = store.remember(ctx, "the cache TTL for tokens is short", importance=1.0)["id"]
    ranked = [m["id"] for m in store.recall(ctx, "cache TTL is short")]
    assert ranked.index(high) < ranked.index(low)


def test_min_score_and_limit(store, ctx):
    for i in range(8):
        store.remember(ctx, f"service number {i} is called worker-{i} and processes queue q{i}")
    assert len(store.recall(ctx, "which worker processes the queue", limit=3)) == 3
    assert store.recall(ctx, "which worker processes the queue", min_score=10.0) == []


def test_forget_by_id_and_ids(store, ctx):
    a = store.remember(ctx, "the docs site is built with mkdocs")["id"]
    b = store.remember(ctx, "the changelog is generated by towncrier")["id"]
    c = store.remember(ctx, "feature flags live in LaunchDarkly")["id"]
    assert store.forget(ctx, id=a) == {"forgotten": [a]}
    assert store.forget(ctx, ids=[b, c, b]) == {"forgotten": [b, c]}
    assert store.recall(ctx, "mkdocs docs site") == []
    assert store.get(ctx, a)["status"] == "forgotten"
    assert store.forget(ctx, id=a) == {"forgotten": []}  # already gone: idempotent


def test_forget_by_query_needs_confirmation(store, ctx):
    keep = store.remember(ctx, "the user prefers dark mode in every editor")["id"]
    gone = store.remember(ctx, "the legacy billing service is written in Perl")["id"]
    preview = store.forget(ctx, query="legacy billing Perl service", limit=1)
    assert preview["forgotten"] == [] and [m["id"] for m in preview["would_forget"]] == [gone]
    assert store.get(ctx, gone)["status"] == "active"
    assert store.forget(ctx, query="legacy billing Perl service", confirm=True, limit=1)["forgotten"] == [gone]
    assert store.get(ctx, keep)["status"] == "active"


def test_supersede_retires_the_old_fact_but_keeps_history(store, ctx):
    old = store.remember(ctx, "atlas targets Python 3.11")["id"]
    r = store.remember(ctx.with_(agent_id="gemini"), "atlas targets Python 3.12", supersedes=old)
    assert r["status"] == "superseded" and r["supersedes"] == old
    assert [m["id"] for m in store.recall(ctx, "which Python does atlas target")] == [r["id"]]
    history = store.get(ctx, old)
    assert history["status"] == SUPERSEDED and history["superseded_by"] == r["id"]
    assert store.get(ctx, r["id"])["supersedes"] == old
    assert store.purge(older_than=0) == 0  # history is not purged
    with pytest.raises(Exception, match="already superseded"):
        store.remember(ctx, "atlas targets Python 3.13", supersedes=old)


def test_forgotten_records_are_purged_after_the_grace_period(store, ctx):
    gone = store.remember(ctx, "temporary fact about the sprint demo")["id"]
    store.forget(ctx, id=gone)
    assert store.purge() == 0  # within the grace period: the tombstone stays
    assert store.purge(older_than=0) == 1
    assert store.collection.get(ids=[gone])["ids"] == []


def test_turn_memories_expire(tmp_path, embedder, ctx):
    store = MemoryStore.open(embedder, data_dir=tmp_path / "ttl", turn_ttl=1.0)
    store.remember(ctx, "the user just asked to rename the module", scope="turn")
    assert store.recall(ctx, "rename the module")
    time.sleep(1.2)
    assert store.recall(ctx, "rename the module") == []
    assert store.purge() == 1


def test_stats_by_scope_agent_and_project(store, ctx):
    store.remember(ctx, "the monorepo uses turborepo")
    store.remember(ctx.with_(agent_id="codex"), "the user works in UTC+2", scope="user")
    store.remember(ctx.with_(agent_id="gemini"), "The monorepo uses Turborepo.")
    s = store.stats(ctx)
    assert s["total"] == 2 and s["by_scope"] == {"project": 1, "user": 1}
    assert s["by_agent"] == {"claude": 1, "codex": 1, "gemini": 1}
    assert s["by_project"] == {"github.com/acme/atlas": 1}


def test_clear_forgets_only_what_is_visible(store, ctx):
    store.remember(ctx, "fact A for project atlas")
    store.remember(ctx.with_(project="other"), "fact B for the other project")
    assert store.clear(ctx) == {"forgotten": 1}
    assert store.stats(ctx)["total"] == 1


def test_lexical_index_follows_writes_made_by_another_store_object(tmp_path, embedder, ctx):
    """The lexical index is derived from the collection: a second opener sees the first's writes."""
    a = MemoryStore.open(embedder, data_dir=tmp_path / "shared")
    b = MemoryStore(a.collection, embedder)
    a.remember(ctx, "the flaky test is test_zorblax_retry in tests/e2e")
    assert [m["content"] for m in b.recall(ctx, "zorblax")] == ["the flaky test is test_zorblax_retry in tests/e2e"]
    a.forget(ctx, query="zorblax", confirm=True)
    assert b.recall(ctx, "zorblax") == []


def test_unmerge_cannot_reach_another_users_memory_and_import_takes_no_restatements(store, ctx):
    from headroom_mcp.store.records import MemoryRecord

    alice = ctx.with_(user_id="alice")
    mine = store.remember(alice, "Alice prefers dark mode in the editor", scope="user")
    again = store.remember(alice.with_(agent_id="codex"), "alice likes the editor in dark mode", scope="user")
    bob = ctx.with_(user_id="bob")
    with pytest.raises(NotFound):
        store.unmerge(bob, again["restatement"])
    forged = MemoryRecord(id="mem_forged", content="whatever", scope="user", user_id="bob", status="merged", merged_into=mine["id"])
    with pytest.raises(InvalidInput, match="restatement"):
        store.import_records([forged])
    assert store.get(alice, mine["id"])["seen_count"] == 2


def test_a_memory_restated_many_times_does_not_crowd_others_out_of_recall(store, ctx):
    deploy = store.remember(ctx, "Deploys go through the staging pipeline first")
    for n in range(30):
        assert store.remember(ctx.with_(agent_id=f"agent{n}"), "deploys go through the staging pipeline first")["id"] == deploy["id"]
    release = store.remember(ctx, "Releases to production require sign-off from the release manager")
    got = [r["id"] for r in store.recall(ctx, "who signs off a production release?", limit=5)]
    assert release["id"] in got and got.count(deploy["id"]) <= 1


def test_unmerge_keeps_agents_the_memory_had_before(store, ctx):
    from headroom_mcp.store.records import MemoryRecord, now

    t = now()
    store.import_records([MemoryRecord(id="mem_both", content="the CLI is released with goreleaser", scope="project",
                                       user_id=ctx.user_id, project=ctx.project, agents=["claude", "codex"], seen_count=5,
                                       created_at=t, updated_at=t)])
    again = store.remember(ctx.with_(agent_id="codex"), "The CLI gets released using goreleaser.")
    assert again["id"] == "mem_both"
    store.unmerge(ctx, again["restatement"])
    kept = store.get(ctx, "mem_both")
    assert kept["agents"] == ["claude", "codex"] and kept["seen_count"] == 5


def test_importing_twice_keeps_what_merging_added(store, ctx):
    from headroom_mcp.store.records import MemoryRecord, now

    t = now()

    def records():  # the same two lines of a file, read afresh each time
        return [MemoryRecord(id=i, content=c, scope="project", user_id=ctx.user_id, project=ctx.project, agents=[a],
                             created_at=t, updated_at=t)
                for i, c, a in (("mem_b", "this repo uses uv, not pip", "claude"), ("mem_c", "The repository uses uv instead of pip.", "codex"))]

    assert store.import_records(records()) == {"created": 1, "merged": 1, "replaced": 0, "redacted": 0}
    first = store.get(ctx, "mem_b")
    assert store.import_records(records()) == {"created": 0, "merged": 1, "replaced": 1, "redacted": 0}
    again = store.get(ctx, "mem_b")
    assert (again["agents"], again["seen_count"]) == (first["agents"], first["seen_count"]) == (["claude", "codex"], 2)


def test_a_turn_memorys_restatement_lives_as_long_as_it(store, ctx):
    turn = ctx.with_(turn_id="t1")
    first = store.remember(turn, "the failing test is test_login_redirect", scope="turn")
    again = store.remember(turn.with_(agent_id="codex"), "The failing test is test_login_redirect.", scope="turn")
    assert again["id"] == first["id"] and "restatement" in again
    store.purge()
    assert [r["id"] for r in store.get(turn, first["id"])["restatements"]] == [again["restatement"]]


def test_reads_beside_writes_on_other_threads_fail_nothing_and_miss_nothing(store, ctx):
    """The owner runs reads beside the writer: every shared piece (stemmer, indexes, secret
    scanner, Chroma client) must take it."""
    import sys
    import threading

    facts = [f"service {n} is deployed by the {('blue', 'green', 'canary')[n % 3]} pipeline on port {9000 + n}"
             for n in range(40)]
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                store.recall(ctx, "which pipeline deploys the service on port 9007 with api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc?")
                store.list(ctx, limit=5)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that races show
    for t in readers:
        t.start()
    try:
        written = [store.remember(ctx, fact)["id"] for fact in facts]
    finally:
        done.set()
        for t in readers:
            t.join(60)
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert len(set(written)) == len(facts)
    health = store.check(repair=False)
    assert health["lexical"] == health["active"] == len(facts)
    assert store.recall(ctx, "which pipeline deploys service 7?")[0]["content"] == facts[7]


def test_a_replica_merges_what_another_remembered_without_recalling_first(store, embedder, ctx):
    """Replicas on one Chroma server: dedup looks at the other's writes too, not only recall."""
    replica = MemoryStore(store.collection, embedder, refresh_interval=0.0)
    first = store.remember(ctx, "release builds are signed with the key in vault path secret/release")
    again = replica.remember(ctx, "Release builds are signed with the key in vault path secret/release.")
    assert again["status"] == "merged" and again["duplicate_of"] == first["id"]



def test_times_come_back_from_chroma_exactly_as_written(store, ctx):
    """Chroma returns about one full-precision float in seven one unit in the last place off.
    The store's times are kept to the microsecond (``now``), which come back as written, so
    what a memory reports (its ISO times, an export) is what was stored, on every reading."""
    ids = [store.remember(ctx, f"service {n} retries {n % 7} times before it gives up")["id"] for n in range(60)]
    got = store.collection.get(ids=ids, include=["metadatas"])
    for memory_id, stored in zip(got["ids"], got["metadatas"]):
        written = store.lexical.meta(memory_id)  # the metadata this process wrote, as it wrote it
        for key in ("created_at", "updated_at", "changed_at"):
            assert stored[key] == written[key], (memory_id, key)
