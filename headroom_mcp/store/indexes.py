"""The indexes derived from the collection, lexical and vector, and the watermark that refreshes both.

Both hold the same records (active memories, and restatements searched on their behalf)
and are filled the same way: from every write this process makes, and from the collection
by a write-time watermark, so that a memory written by another process or replica is found
on the next recall. Non-indexed statuses act as tombstones. The collection stays the
single source of truth: either index can be dropped and rebuilt from it (``check``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .chroma import changed_since
from .lexical import LexicalIndex
from .records import ACTIVE, MERGED
from .vectors import COLUMNS, VectorIndex

#: Statuses the indexes hold: active memories, and restatements searched on their behalf.
INDEXED = (ACTIVE, MERGED)
#: A refresh asks for records written since this long (seconds) before the watermark, so
#: that writes from a replica whose clock or commit lags slightly are not skipped
#: (re-applying is harmless).
OVERLAP = 5.0

Page = Mapping[str, Any]


#: Metadata whose string values repeat across records (a project, a user, an agent, a status).
_REPEATED = frozenset({*COLUMNS, "created_by"})
_REPEATED_LISTS = frozenset({"agents", "users"})


def _compact(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The one copy of a record's metadata that both indexes hold, its repeated strings shared.

    Each page read from Chroma brings every key, and every project, user, agent and status,
    as new string objects: about 300,000 of them (14 MB) at 10,000 memories. Interned, there
    is one object for each distinct key or value; values that differ per record (hashes,
    times) are kept as they are.
    """
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in _REPEATED and isinstance(value, str):
            value = sys.intern(value)
        elif key in _REPEATED_LISTS and isinstance(value, list):
            value = [sys.intern(v) if isinstance(v, str) else v for v in value]
        out[sys.intern(key)] = value
    return out


def _written(meta: Mapping[str, Any]) -> tuple[Any, Any]:
    """When a record was last written (``changed_at``; ``updated_at`` for older records)."""
    return meta.get("changed_at"), meta.get("updated_at")


class Indexes:
    """The lexical and vector indexes over one collection, refreshed together."""

    def __init__(self, stored_vectors: Callable[[list[str]], Mapping[str, Any]]) -> None:
        """``stored_vectors``: the collection's embeddings of some ids (for a record that
        becomes active again through a write that carries no vector: a restore)."""
        self.lexical = LexicalIndex()
        self.vectors = VectorIndex()
        #: Highest write time (``changed_at``, else ``updated_at``) seen; the next refresh asks
        #: the collection for records written since.
        self.watermark = 0.0
        self._stored_vectors = stored_vectors
        self._lock = threading.RLock()

    def apply(self, ids: Sequence[str], documents: Sequence[str | None], metas: Sequence[Mapping[str, Any]],
              vectors: Sequence[Any] | None = None) -> None:
        """Add, replace or (for a retired record) drop records in both indexes.

        ``vectors`` None: the records keep the vectors they are indexed with.
        """
        with self._lock:
            lacking: dict[str, Mapping[str, Any]] = {}
            for n, (doc_id, document, meta) in enumerate(zip(ids, documents, metas)):
                self.watermark = max(self.watermark, float(meta.get("changed_at") or meta.get("updated_at") or 0.0))
                if meta.get("status", ACTIVE) not in INDEXED or not document:
                    self.remove([doc_id])
                    continue
                if doc_id in self.lexical and doc_id in self.vectors \
                        and _written(self.lexical.meta(doc_id)) == _written(meta) == _written(self.vectors.meta(doc_id)):
                    continue  # already indexed (refresh windows overlap on purpose)
                meta = _compact(meta)
                self.lexical.apply(doc_id, document, meta)
                if not self.vectors.apply(doc_id, meta, vectors[n] if vectors is not None else None):
                    lacking[doc_id] = meta
            if lacking:
                stored = self._stored_vectors(list(lacking))
                for doc_id, meta in lacking.items():
                    if doc_id in stored:
                        self.vectors.apply(doc_id, meta, stored[doc_id])

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            for doc_id in ids:
                self.lexical.remove(doc_id)
                self.vectors.remove(doc_id)

    def refresh(self, pages: Callable[[dict[str, Any] | None, list[str]], Iterable[Page]]) -> int:
        """Apply the records written since the watermark, read with ``pages(where, include)``; return how many."""
        with self._lock:
            since = self.watermark - OVERLAP if self.watermark else None
            seen = 0
            for page in pages(changed_since(since) if since is not None else None,
                              ["documents", "metadatas", "embeddings"]):
                self.apply(page["ids"], page["documents"], page["metadatas"], page["embeddings"])
                seen += len(page["ids"])
            return seen

    def clear(self) -> None:
        with self._lock:
            self.lexical.clear()
            self.vectors.clear()
            self.watermark = 0.0

    def held(self) -> tuple[set[str], set[str]]:
        """The ids each index holds: (lexical, vector)."""
        with self._lock:
            return self.lexical.ids(), self.vectors.ids()
