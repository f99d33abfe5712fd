"""An in-memory stand-in for the part of a Chroma collection the store uses (``chroma.ChromaApi``).

It keeps Chroma's semantics where the store relies on them, checked against the real thing
by ``test_collection.py``: records in insertion order (a rewrite keeps its place), metadata
merged on upsert and update with None deleting a key, absent keys never matching a
comparison but matching ``$ne``, ``$and``/``$or`` needing two clauses, fields not asked for
coming back as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_INCLUDE = ("documents", "metadatas")


def where_matches(where: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """Does a record's metadata satisfy a Chroma filter (the subset of the language the store emits)?"""
    if "$and" in where or "$or" in where:
        (op, clauses), = where.items()
        if not isinstance(clauses, list) or len(clauses) < 2:
            raise ValueError(f"Expected where value for $and or $or to be a list with at least two where expressions, got {clauses}")
        return (all if op == "$and" else any)(where_matches(w, meta) for w in clauses)
    (key, cond), = where.items()
    value = meta.get(key)
    if not isinstance(cond, dict):
        return bool(value == cond)
    (op, arg), = cond.items()
    if op == "$ne":
        return bool(value != arg)
    if op == "$contains":
        return isinstance(value, list) and arg in value
    if value is None:
        return False
    if op == "$in":
        return bool(value in arg)
    compare = {"$eq": value == arg, "$gt": value > arg, "$gte": value >= arg, "$lt": value < arg, "$lte": value <= arg}
    if op not in compare:
        raise AssertionError(f"operator {op} is not faked")
    return bool(compare[op])


def _merged(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = {**old, **new}
    return {k: v for k, v in out.items() if v is not None}


class FakeCollection:
    """Records held in dicts; only what ``chroma.Records`` calls."""

    def __init__(self, metadata: Mapping[str, Any] | None = None) -> None:
        self.metadata: dict[str, Any] = dict(metadata or {})
        #: id → [document, metadata, embedding], in insertion order.
        self._rows: dict[str, list[Any]] = {}

    def modify(self, metadata: Any) -> None:
        self.metadata = dict(metadata or {})

    def count(self) -> int:
        return len(self._rows)

    def get(self, ids: Any = None, where: Any = None, limit: Any = None, offset: Any = None,
            include: Any = DEFAULT_INCLUDE) -> dict[str, Any]:
        wanted = set(ids) if ids is not None else None
        hits = [i for i, (_, meta, _) in self._rows.items()
                if (wanted is None or i in wanted) and (where is None or where_matches(where, meta))]
        hits = hits[offset or 0:][:limit] if limit is not None else hits[offset or 0:]
        rows = [self._rows[i] for i in hits]
        return {
            "ids": hits,
            "documents": [r[0] for r in rows] if "documents" in include else None,
            "metadatas": [dict(r[1]) for r in rows] if "metadatas" in include else None,
            "embeddings": np.array([r[2] for r in rows], dtype=np.float32) if "embeddings" in include else None,
        }

    def upsert(self, ids: Any, embeddings: Any, metadatas: Any, documents: Any) -> None:
        for doc_id, vector, meta, document in zip(ids, embeddings, metadatas, documents):
            old = self._rows.get(doc_id, [None, {}, None])[1]
            self._rows[doc_id] = [document, _merged(old, meta), np.asarray(vector, dtype=np.float32)]

    def update(self, ids: Any, metadatas: Any) -> None:
        for doc_id, meta in zip(ids, metadatas):
            if doc_id in self._rows:
                self._rows[doc_id][1] = _merged(self._rows[doc_id][1], meta)

    def delete(self, ids: Any) -> None:
        for doc_id in ids:
            self._rows.pop(doc_id, None)
