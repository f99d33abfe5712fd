"""An in-memory BM25 index derived from the Chroma collection.

Chroma's local mode has no sparse or BM25 index, so the owner process keeps this one. It
is never the source of truth: ``indexes`` fills it from the collection and refreshes it
by a write-time watermark, so a memory written by another process or replica is found
lexically on the next recall, and anything it returns is re-checked against the
collection before it is shown.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .records import MERGED, MemoryRecord
from .text import index_terms

#: BM25 term-frequency saturation and length normalisation. Memories are short and of
#: similar length, so length matters less than in the textbook defaults (1.2, 0.75);
#: chosen on LoCoMo's tuning split (bench/locomo.py --bm25 K1 B).
K1 = 0.9
B = 0.3


@dataclass
class _Doc:
    text: str
    terms: Counter[str]
    length: int
    meta: Mapping[str, Any]


class LexicalIndex:
    """BM25 over active memories, keyed by id, with each memory's text and metadata.

    Recall ranks its candidates with the text and metadata held here, and reads back from
    the collection only the few it returns.
    """

    def __init__(self) -> None:
        self._docs: dict[str, _Doc] = {}
        self._postings: dict[str, set[str]] = defaultdict(set)
        self._total_length = 0
        #: Indexed restatements (status ``merged``): recall looks for them only when there are some.
        self.restatements: set[str] = set()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._docs

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._docs)

    def meta(self, doc_id: str) -> Mapping[str, Any]:
        """The metadata an indexed memory was indexed with (empty when it is not indexed)."""
        with self._lock:
            doc = self._docs.get(doc_id)
            return doc.meta if doc is not None else {}

    def record(self, doc_id: str) -> MemoryRecord | None:
        """An indexed memory as it was indexed (None when it is not indexed)."""
        with self._lock:
            doc = self._docs.get(doc_id)
            return MemoryRecord.from_chroma(doc_id, doc.text, doc.meta) if doc is not None else None

    def apply(self, doc_id: str, document: str, meta: Mapping[str, Any]) -> None:
        """Add or replace one memory (which records are indexed is ``indexes``' business)."""
        with self._lock:
            self._remove(doc_id)
            terms = Counter(index_terms(document))
            doc = _Doc(document, terms, sum(terms.values()), meta)
            self._docs[doc_id] = doc
            if meta.get("status") == MERGED:
                self.restatements.add(doc_id)
            self._total_length += doc.length
            for term in terms:
                self._postings[term].add(doc_id)

    def remove(self, doc_id: str) -> None:
        with self._lock:
            self._remove(doc_id)

    def _remove(self, doc_id: str) -> None:
        doc = self._docs.pop(doc_id, None)
        self.restatements.discard(doc_id)
        if doc is None:
            return
        self._total_length -= doc.length
        for term in doc.terms:
            posting = self._postings.get(term)
            if posting is not None:
                posting.discard(doc_id)
                if not posting:
                    del self._postings[term]

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self.restatements.clear()
            self._postings.clear()
            self._total_length = 0

    def search(self, query: str, allowed: Callable[[str], bool], limit: int) -> list[tuple[str, float]]:
        """The ``limit`` best (id, coverage) among documents whose ids ``allowed`` accepts.

        Coverage is BM25 divided by the query's own best score: the sum of its terms' IDF,
        which a memory holding every query term once at average length reaches. So a memory
        sharing one common word ("service", "tests") of a five-word question scores low
        whatever the other candidates score, and a memory matching every rare term scores
        about 1 (a little more for repeated terms or a short text). Dividing by the best
        candidate instead gave a weak match the full lexical bonus whenever nothing matched
        better. Document frequencies are global (all users): they describe the language of
        the store, and per-user statistics would leak nothing useful either way.
        """
        terms = set(index_terms(query))
        with self._lock:
            n = len(self._docs)
            if not n or not terms:
                return []
            avg = self._total_length / n or 1.0
            scores: dict[str, float] = defaultdict(float)
            verdict: dict[str, bool] = {}
            best = 0.0
            for term in terms:
                posting = self._postings.get(term)
                if not posting:
                    continue
                idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
                best += idf
                for doc_id in posting:
                    ok = verdict.get(doc_id)
                    if ok is None:
                        ok = verdict[doc_id] = allowed(doc_id)
                    if not ok:
                        continue
                    doc = self._docs[doc_id]
                    tf = doc.terms[term]
                    scores[doc_id] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * doc.length / avg))
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:limit]
        return [(doc_id, score / best) for doc_id, score in ranked] if best > 0 else []
