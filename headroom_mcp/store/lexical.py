"""An in-memory BM25 index derived from the Chroma collection.

Chroma's local mode has no sparse or BM25 index, so the owner process keeps this one. It
is never the source of truth: ``indexes`` fills it from the collection and refreshes it
by a write-time watermark, so a memory written by another process or replica is found
lexically on the next recall. Each term's postings are also kept as arrays, made when a
query first needs them after a change, so that a search scores all of a term's memories in
one numpy expression instead of a Python loop over them (a common word's postings run to
thousands at 10,000 memories).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    terms: tuple[str, ...]  # its distinct terms (their counts are in the postings)
    length: int
    meta: Mapping[str, Any]
    slot: int  # its place in the postings' arrays


class LexicalIndex:
    """BM25 over active memories, keyed by id, with each memory's text and metadata.

    Recall ranks its candidates with the text and metadata held here; an embedded store also
    returns them from here, and on a Chroma server recall reads the few it returns from the
    collection again (``MemoryStore._current``).
    """

    def __init__(self) -> None:
        self._docs: dict[str, _Doc] = {}
        #: term -> {slot: how often the term occurs in that memory}.
        self._postings: dict[str, dict[int, int]] = {}
        #: term -> its postings as arrays (slots, counts), made when a query first needs them
        #: after the term's postings changed: a search scores each term's memories in one go.
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: slot -> id (None when free), slot -> length in terms; freed slots are reused.
        self._ids: list[str | None] = []
        self._lengths = np.zeros(0)
        self._free: list[int] = []
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
            counts = Counter(index_terms(document))
            slot = self._free.pop() if self._free else self._new_slot()
            doc = _Doc(document, tuple(counts), sum(counts.values()), meta, slot)
            self._docs[doc_id] = doc
            self._ids[slot] = doc_id
            self._lengths[slot] = doc.length
            if meta.get("status") == MERGED:
                self.restatements.add(doc_id)
            self._total_length += doc.length
            for term, count in counts.items():
                self._postings.setdefault(term, {})[slot] = count
                self._arrays.pop(term, None)

    def _new_slot(self) -> int:
        slot = len(self._ids)
        self._ids.append(None)
        if slot >= len(self._lengths):
            self._lengths = np.concatenate([self._lengths, np.zeros(max(1024, len(self._lengths)))])
        return slot

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
                posting.pop(doc.slot, None)
                if not posting:
                    del self._postings[term]
            self._arrays.pop(term, None)
        self._ids[doc.slot] = None
        self._free.append(doc.slot)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self.restatements.clear()
            self._postings.clear()
            self._arrays.clear()
            self._ids, self._lengths, self._free = [], np.zeros(0), []
            self._total_length = 0

    def _posting_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        arrays = self._arrays.get(term)
        if arrays is None:
            posting = self._postings[term]
            arrays = self._arrays[term] = (np.fromiter(posting.keys(), np.intp, len(posting)),
                                           np.fromiter(posting.values(), np.float64, len(posting)))
        return arrays

    def search(self, query: str, allowed: Callable[[list[str]], Sequence[bool] | np.ndarray], limit: int) -> list[tuple[str, float]]:
        """The ``limit`` best (id, coverage) among documents whose ids ``allowed`` accepts
        (given every candidate's id at once, it says yes or no to each).

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
            best = 0.0
            slots_of, scores_of = [], []
            for term in terms:
                posting = self._postings.get(term)
                if not posting:
                    continue
                idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
                best += idf
                slots, tf = self._posting_arrays(term)
                slots_of.append(slots)
                scores_of.append(idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * self._lengths[slots] / avg)))
            if not slots_of or best <= 0:
                return []
            # bincount adds a memory's terms in the order they were scored, as a loop over each
            # memory would: the scores are the same to the bit.
            slots, within = np.unique(np.concatenate(slots_of), return_inverse=True)
            scores = np.bincount(within, weights=np.concatenate(scores_of), minlength=len(slots))
            ids = [self._ids[slot] for slot in slots]
            keep = np.flatnonzero(np.asarray(allowed(ids), bool))
        if not len(keep):
            return []
        kept = scores[keep]
        k = min(limit, len(keep))
        top = np.argpartition(-kept, k - 1)[:k] if k < len(keep) else np.arange(len(keep))
        top = top[np.argsort(-kept[top], kind="stable")]
        return [(ids[keep[j]], float(kept[j]) / best) for j in top]
