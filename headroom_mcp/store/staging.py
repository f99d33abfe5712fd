"""Group commit: the writes of several requests go to Chroma in one call.

Every Chroma write of the embedded store ends in a SQLite commit with an fsync, about
30 ms on this machine's disk whatever the size: alone it limits the owner to some 25
writes a second. So the owner takes the ``remember`` requests queued behind one another and
runs them inside ``MemoryStore.one_commit()``: each is decided in turn (dedup sees the ones
before it, through ``Staged``), their records are written together, and only then is any
of them answered, so nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .records import ACTIVE, MemoryRecord, content_hash


def in_domain(meta: Mapping[str, Any], domain: Mapping[str, Any]) -> bool:
    """Does a record's metadata hold every field of ``domain`` (``remembering._domain``)?"""
    return all(meta.get(k) == v for k, v in domain.items())


class Staged:
    """Records written inside one commit and not yet in Chroma, newest version of each."""

    def __init__(self) -> None:
        #: id → [record, vector or None (a metadata change of a stored record)], in write order.
        self.writes: dict[str, list[Any]] = {}
        #: Texts embedded up front for the requests inside the commit, with their vectors.
        self.vectors: dict[str, np.ndarray] = {}
        #: What those requests were given → it checked and screened (``MemoryStore._screened``).
        self.screened: dict[str, tuple[str, list[str]]] = {}

    def __bool__(self) -> bool:
        return bool(self.writes)

    def add(self, records: Iterable[MemoryRecord], vectors: Iterable[Any] | None) -> None:
        for record, vector in zip(records, vectors if vectors is not None else itertools.repeat(None)):
            entry = self.writes.setdefault(record.id, [record, None])
            entry[0] = record
            if vector is not None:
                entry[1] = vector

    def groups(self) -> tuple[tuple[list[MemoryRecord], list[Any]], list[MemoryRecord]]:
        """(records with their vectors, records whose metadata alone changed): upsert, then update."""
        new = [(r, v) for r, v in self.writes.values() if v is not None]
        changed = [r for r, v in self.writes.values() if v is None]
        return ([r for r, _ in new], [v for _, v in new]), changed

    def overlay(self, found: Mapping[str, MemoryRecord], ids: Iterable[str], allowed: Any) -> dict[str, MemoryRecord]:
        """``found`` (read from Chroma) with the staged version of each of ``ids`` instead."""
        out = dict(found)
        for doc_id in ids:
            if doc_id in self.writes:
                record = self.writes[doc_id][0]
                if allowed(record.to_metadata()):
                    out[doc_id] = record
                else:
                    out.pop(doc_id, None)
        return out

    def neighbours(self, hits: list[tuple[MemoryRecord, float]], vector: np.ndarray, domain: Mapping[str, Any],
                   content: str, most: int) -> list[tuple[MemoryRecord, float]]:
        """Chroma's nearest ``hits`` with staged records in ``domain`` counted too, best ``most``."""
        out: dict[str, tuple[MemoryRecord, float]] = {}
        for record, cosine in hits:
            record = self.writes.get(record.id, [record])[0]
            out[record.id] = (record, cosine)
        for record, staged_vector in self.writes.values():
            if staged_vector is not None and record.id not in out:
                cosine = 1.0 if content_hash(record.content) == content_hash(content) else float(np.dot(vector, staged_vector))
                out[record.id] = (record, cosine)
        meta = {doc_id: r.to_metadata() for doc_id, (r, _) in out.items()}
        kept = [(r, c) for doc_id, (r, c) in out.items()
                if meta[doc_id].get("status", ACTIVE) == ACTIVE and in_domain(meta[doc_id], domain)]
        return sorted(kept, key=lambda rc: rc[1], reverse=True)[:most]
