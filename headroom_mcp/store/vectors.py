"""An in-memory exact vector index derived from the Chroma collection.

Chroma's filtered HNSW query costs 25-35 ms at 10k memories in local mode, most of it the
metadata filter, and is approximate. The memories a recall may see are few enough to score
them all: this index keeps every indexed memory's unit vector in one float32 matrix, with
the visibility keys beside it as integer-coded columns, and answers a query with one matrix
product, a vectorised visibility mask and ``argpartition``: exact cosine, about a
millisecond at 10k; at 100k the product reads 150 MB and runs at memory speed. Like the lexical index it is never the source of truth: it is filled from the
collection and refreshed from it by the same watermark (see ``indexes``), and what it
returns is read back from the collection before it is shown.

Float32, not float16: numpy has no half-precision matrix product, so float16 storage would
be converted to float32 on every search, which costs more than the search itself (the
saving, 75 MB at 100k memories, is not worth a slower recall or changed ties).

Reads are safe against a concurrent writer without holding the lock while they score: a
row, once written, never changes; an update or delete retires the row (``live``) and an
update appends a new one; growth and compaction build new arrays. A search takes the row
count and a copy of the live flags under the lock, and works on rows it has seen complete.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .records import ACTIVE
from .scopes import SCOPE_KEYS, Visibility

#: The metadata fields visibility compares for equality, one integer-coded column each.
COLUMNS = ("status", "scope", "user_id", *dict.fromkeys(k for keys in SCOPE_KEYS.values() for k in keys))
_COLUMN = {name: n for n, name in enumerate(COLUMNS)}
#: The code of a field a record does not have: no query value ever has it.
_ABSENT = -1
#: Rows allocated before the first growth.
INITIAL_CAPACITY = 1024


class Hit(NamedTuple):
    id: str
    cosine: float
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class Where:
    """What the mask admits: records matching any one clause (field = value pairs), with a
    status in ``statuses``; turn memories only until ``live_at`` when it is given; and, when
    ``accept`` is given, only records it accepts (checked on the best-scored candidates:
    for the rare filters, tags and agents, that are not columns)."""

    clauses: tuple[tuple[tuple[str, str], ...], ...]
    statuses: tuple[str, ...] = (ACTIVE,)
    live_at: float | None = None
    accept: Callable[[Mapping[str, Any]], bool] | None = None

    @classmethod
    def visible(cls, vis: Visibility) -> Where:
        """Exactly ``vis.matches``: scope clauses and expiry in the mask, tags and agent after."""
        return cls(tuple(tuple(c.items()) for c in vis.scope_clauses()), vis.statuses, vis.now,
                   vis.matches if vis.tags or vis.agent else None)

    @classmethod
    def equal(cls, pairs: Mapping[str, str]) -> Where:
        """Active records whose fields equal ``pairs``."""
        return cls((tuple(pairs.items()),))


@dataclass
class _Rows:
    """One generation of storage: rows below ``len(ids)`` are complete and never change."""

    matrix: np.ndarray  # (capacity, dim) float32, unit rows
    columns: np.ndarray  # (len(COLUMNS), capacity) int32 codes
    expires: np.ndarray  # (capacity,) float64, ``expires_at`` (0 when none)
    live: np.ndarray  # (capacity,) bool: False once the row was replaced or removed
    ids: list[str] = field(default_factory=list)
    metas: list[Mapping[str, Any]] = field(default_factory=list)
    #: Live row of each id.
    row: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, capacity: int, dim: int) -> _Rows:
        return cls(np.zeros((capacity, dim), np.float32), np.full((len(COLUMNS), capacity), _ABSENT, np.int32),
                   np.zeros(capacity), np.zeros(capacity, bool))

    @property
    def capacity(self) -> int:
        return len(self.live)


class VectorIndex:
    """Unit vectors of the indexed memories, with their visibility keys, searched exactly."""

    def __init__(self, capacity: int = INITIAL_CAPACITY) -> None:
        self._initial = max(1, capacity)
        self._rows: _Rows | None = None
        self._codes: dict[str, dict[str, int]] = {name: {} for name in COLUMNS}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        rows = self._rows
        return len(rows.row) if rows is not None else 0

    def __contains__(self, doc_id: str) -> bool:
        rows = self._rows
        return rows is not None and doc_id in rows.row

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._rows.row) if self._rows is not None else set()

    def meta(self, doc_id: str) -> Mapping[str, Any]:
        """The metadata a memory was indexed with (empty when it is not indexed)."""
        with self._lock:
            rows = self._rows
            row = rows.row.get(doc_id) if rows is not None else None
            return rows.metas[row] if rows is not None and row is not None else {}

    def apply(self, doc_id: str, meta: Mapping[str, Any], vector: Any | None = None) -> bool:
        """Index ``doc_id`` with ``meta`` and ``vector`` (None: keep the vector it has).

        Returns False, changing nothing, when there is no vector to keep.
        """
        with self._lock:
            rows = self._rows
            old = rows.row.get(doc_id) if rows is not None else None
            if vector is None:
                if rows is None or old is None:
                    return False
                vector = rows.matrix[old].copy()
            vector = np.asarray(vector, np.float32).ravel()
            norm = float(np.linalg.norm(vector))
            rows = self._room(len(vector))
            if old is not None:
                self._retire(doc_id)
            n = len(rows.ids)
            rows.matrix[n] = vector / norm if norm > 0 else vector
            for name, column in zip(COLUMNS, rows.columns):
                value = meta.get(name, ACTIVE if name == "status" else None)
                column[n] = self._codes[name].setdefault(value, len(self._codes[name])) if isinstance(value, str) and value else _ABSENT
            rows.expires[n] = float(meta.get("expires_at") or 0.0)
            rows.live[n] = True
            rows.metas.append(meta)
            rows.ids.append(doc_id)  # last: a reader counting ids sees the row complete
            rows.row[doc_id] = n
            return True

    def remove(self, doc_id: str) -> None:
        with self._lock:
            if self._rows is not None and doc_id in self._rows.row:
                self._retire(doc_id)

    def clear(self) -> None:
        with self._lock:
            self._rows = None

    def _retire(self, doc_id: str) -> None:
        rows = self._rows
        assert rows is not None
        rows.live[rows.row.pop(doc_id)] = False

    def _room(self, dim: int) -> _Rows:
        """The generation with a free row for a vector of ``dim``: grown (or compacted) if full."""
        rows = self._rows
        if rows is not None and rows.matrix.shape[1] != dim:
            raise ValueError(f"vector of {dim} dimensions in an index of {rows.matrix.shape[1]}")
        if rows is not None and len(rows.ids) < rows.capacity:
            return rows
        keep = np.array(sorted(rows.row.values()), dtype=np.intp) if rows is not None else np.zeros(0, np.intp)
        # Doubling when at least half the rows are live keeps appends amortised O(1); else
        # compacting into the same capacity frees the retired rows.
        capacity = max(self._initial, 2 * len(keep), rows.capacity if rows is not None else 0)
        fresh = _Rows.empty(capacity, dim)
        if rows is not None and len(keep):
            k = len(keep)
            fresh.matrix[:k] = rows.matrix[keep]
            fresh.columns[:, :k] = rows.columns[:, keep]
            fresh.expires[:k] = rows.expires[keep]
            fresh.live[:k] = True
            fresh.ids = [rows.ids[r] for r in keep]
            fresh.metas = [rows.metas[r] for r in keep]
            fresh.row = {doc_id: n for n, doc_id in enumerate(fresh.ids)}
        self._rows = fresh  # readers of the old generation keep reading it, unchanged
        return fresh

    def score(self, query: np.ndarray) -> Scores:
        """Cosine of ``query`` (a unit vector) with every indexed memory, as of now."""
        with self._lock:
            rows = self._rows
            n = len(rows.ids) if rows is not None else 0
            live = rows.live[:n].copy() if rows is not None else np.zeros(0, bool)
        return Scores(self, rows, n, live, np.asarray(query, np.float32))

    def code(self, name: str, value: str) -> int | None:
        """The column code of ``value`` in field ``name``; None when no record has it."""
        return self._codes[name].get(value)


def _products(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    # einsum, not ``@``: OpenBLAS's threaded matrix-vector product was 2-10x slower and erratic
    # on a busy 2-core machine; this single-threaded loop runs at memory speed.
    products: np.ndarray = np.einsum("ij,j->i", matrix, query)
    return products


class Scores:
    """One query's cosines over a snapshot of the index: rows written later are not seen.

    The product reads every row it scores, and at 100k rows that is memory-bound: a mask
    that admits under a quarter of the rows (a team store: one user's share) scores only
    those (gathering a row costs more than scoring it in place, so only then),
    else one product over all rows serves every mask of the query.
    """

    def __init__(self, index: VectorIndex, rows: _Rows | None, n: int, live: np.ndarray, query: np.ndarray) -> None:
        self._index, self._rows, self._n, self._live, self._query = index, rows, n, live, query
        self._all: np.ndarray | None = None

    def _cosines(self, candidates: np.ndarray) -> np.ndarray:
        assert self._rows is not None
        if 4 * len(candidates) < self._n:
            return _products(self._rows.matrix[candidates], self._query)
        if self._all is None:
            self._all = _products(self._rows.matrix[: self._n], self._query)
        picked: np.ndarray = self._all[candidates]
        return picked

    def _row(self, doc_id: str) -> int | None:
        """The row of a memory indexed when the snapshot was taken (and not re-indexed since)."""
        row = self._rows.row.get(doc_id) if self._rows is not None else None
        return row if row is not None and row < self._n else None

    def cosine(self, doc_id: str) -> float | None:
        row = self._row(doc_id)
        return float(self._rows.matrix[row] @ self._query) if row is not None else None  # type: ignore[union-attr]

    def admits_all(self, where: Where) -> Callable[[list[str]], np.ndarray]:
        """``where`` as a predicate on ids, asked of many at once (the lexical index's
        candidates: one dictionary look-up each, the mask read for all of them together)."""
        if self._rows is None or not self._n:
            return lambda ids: np.zeros(len(ids), bool)
        rows_of, n, mask, metas, accept = self._rows.row, self._n, self._mask(where), self._rows.metas, where.accept

        def admitted(ids: list[str]) -> np.ndarray:
            rows = np.fromiter((rows_of.get(doc_id, n) for doc_id in ids), np.intp, len(ids))
            ok = rows < n  # indexed when the snapshot was taken
            ok[ok] = mask[rows[ok]]
            if accept is not None:
                for j in np.flatnonzero(ok):
                    ok[j] = accept(metas[rows[j]])
            return ok
        return admitted

    def _mask(self, where: Where) -> np.ndarray:
        rows, n = self._rows, self._n
        assert rows is not None
        columns = rows.columns[:, :n]
        anyof = np.zeros(n, bool)
        for clause in where.clauses:
            match = np.ones(n, bool)
            for name, value in clause:
                code = self._index.code(name, value)
                if code is None:
                    break
                match &= columns[_COLUMN[name]] == code
            else:
                anyof |= match
        codes = [c for c in (self._index.code("status", s) for s in where.statuses) if c is not None]
        mask = self._live & anyof & np.isin(columns[_COLUMN["status"]], codes)
        turn = self._index.code("scope", "turn")
        if where.live_at is not None and turn is not None:
            mask &= (columns[_COLUMN["scope"]] != turn) | (rows.expires[:n] > where.live_at)
        return mask

    def top(self, where: Where, limit: int) -> list[Hit]:
        """The ``limit`` records ``where`` admits with the highest cosine, best first."""
        if self._rows is None or not self._n or limit <= 0:
            return []
        candidates = np.flatnonzero(self._mask(where))
        cosines = self._cosines(candidates)
        want = limit if where.accept is None else 4 * limit
        while True:
            k = min(want, len(candidates))
            best = np.argpartition(-cosines, k - 1)[:k] if k < len(candidates) else np.arange(k)
            best = best[np.argsort(-cosines[best], kind="stable")]
            hits = [Hit(self._rows.ids[r], float(cosines[j]), self._rows.metas[r]) for j, r in zip(best, candidates[best])]
            if where.accept is not None:
                hits = [h for h in hits if where.accept(h.meta)]
            if len(hits) >= limit or k == len(candidates):
                return hits[:limit]
            want *= 4
