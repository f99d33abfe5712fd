"""The BM25 index scores every memory as the textbook formula does, through additions,
replacements and removals (freed slots are reused), and only among the ids it is allowed."""

from __future__ import annotations

import math
import random
from collections import Counter

from headroom_mcp.store import lexical
from headroom_mcp.store.lexical import LexicalIndex
from headroom_mcp.store.text import index_terms

WORDS = "deploy staging cache redis port service worker queue retry timeout token build lint test payments gateway".split()


def reference(docs: dict[str, str], query: str, allowed: set[str]) -> dict[str, float]:
    """BM25 coverage written out per memory: the specification the index must meet."""
    terms = set(index_terms(query))
    counts = {doc_id: Counter(index_terms(text)) for doc_id, text in docs.items()}
    n = len(docs)
    avg = sum(sum(c.values()) for c in counts.values()) / n
    df = {t: sum(1 for c in counts.values() if t in c) for t in terms}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms if df[t]}
    best = sum(idf.values())
    out = {}
    for doc_id, c in counts.items():
        length = sum(c.values())
        score = sum(idf[t] * c[t] * (lexical.K1 + 1) / (c[t] + lexical.K1 * (1 - lexical.B + lexical.B * length / avg))
                    for t in idf if t in c)
        if score and doc_id in allowed:
            out[doc_id] = score / best
    return out


def test_search_matches_the_formula_through_churn():
    rng = random.Random(11)
    index, docs = LexicalIndex(), {}

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))

    for n in range(400):
        docs[f"m{n}"] = text()
        index.apply(f"m{n}", docs[f"m{n}"], {"status": "active"})
    for doc_id in rng.sample(sorted(docs), 120):  # removed, and their slots reused
        index.remove(doc_id)
        del docs[doc_id]
    for n in range(400, 480):
        docs[f"m{n}"] = text()
        index.apply(f"m{n}", docs[f"m{n}"], {"status": "active"})
    for doc_id in rng.sample(sorted(docs), 60):  # replaced in place
        docs[doc_id] = text()
        index.apply(doc_id, docs[doc_id], {"status": "active"})
    assert index.ids() == set(docs)

    for _ in range(60):
        query = " ".join(rng.sample(WORDS, rng.randrange(1, 5)))
        allowed = {d for d in docs if rng.random() < 0.7}
        expected = reference(docs, query, allowed)
        got = index.search(query, lambda ids, allowed=allowed: [i in allowed for i in ids], limit=1000)
        assert {i for i, _ in got} == set(expected)
        for doc_id, coverage in got:
            assert math.isclose(coverage, expected[doc_id], rel_tol=1e-12)
        assert [c for _, c in got] == sorted((c for _, c in got), reverse=True)
        top = index.search(query, lambda ids, allowed=allowed: [i in allowed for i in ids], limit=5)
        assert [c for _, c in top] == [c for _, c in got][:5]


def test_an_empty_or_cleared_index_finds_nothing():
    index = LexicalIndex()
    assert index.search("deploy", lambda ids: [True] * len(ids), 5) == []
    index.apply("m1", "deploy staging", {"status": "active"})
    assert [i for i, _ in index.search("deploy", lambda ids: [True] * len(ids), 5)] == ["m1"]
    assert index.search("deploy", lambda ids: [False] * len(ids), 5) == []
    index.clear()
    assert index.search("deploy", lambda ids: [True] * len(ids), 5) == [] and len(index) == 0
    index.apply("m2", "deploy staging", {"status": "active"})  # usable again after a clear
    assert [i for i, _ in index.search("staging", lambda ids: [True] * len(ids), 5)] == ["m2"]
