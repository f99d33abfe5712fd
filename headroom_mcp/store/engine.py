"""What every verb of the store stands on: its state, writes (staged or not), reads by id, index refreshes.

``StoreEngine`` holds the collection (through ``chroma.Records``, the only way to it), the
embedder and the derived indexes. The verbs are mixins over it, one module each by what
they do (``remembering``, ``reading``, ``forgetting``, ``importer``), put together in
``memory_store.MemoryStore``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HeadroomError, InvalidInput, NotFound
from . import chroma, faults, ranking, secrets
from .chroma import ChromaApi, Records
from .embedder import Embedder
from .indexes import Indexes
from .records import DEFAULT_FORGET_RETENTION, DEFAULT_TURN_TTL, MemoryRecord, check_content, check_id, now
from .staging import Staged

#: A check of a stored record's metadata: whether the caller may have it.
Allowed = Callable[[Mapping[str, Any]], bool]


class StoreEngine:
    """One Chroma collection, an embedder, and indexes derived from the collection."""

    def __init__(self, collection: ChromaApi, embedder: Embedder, turn_ttl: float = DEFAULT_TURN_TTL,
                 refresh_interval: float = 0.0, secrets_policy: str = "redact",
                 forget_retention: float = DEFAULT_FORGET_RETENTION) -> None:
        """``refresh_interval``: seconds between index refreshes from the collection on recall and remember.

        0 (refresh on every recall) when other processes write the same collection (a Chroma
        server shared by replicas); an embedded store's owner sees every write itself, so it
        only needs an occasional safety-net refresh. ``secrets_policy``: what a write holding
        a credential gets, "redact" or "refuse" (see ``secrets``). ``forget_retention``: how
        long a forgotten memory can be restored before ``purge`` deletes it.
        """
        if secrets_policy not in secrets.POLICIES:
            raise InvalidInput(f"secrets policy must be one of {', '.join(secrets.POLICIES)}, got {secrets_policy!r}")
        self.secrets_policy = secrets_policy
        #: Format migrations run when this store was opened (see ``migrations``).
        self.migrated: list[str] = []
        #: Where an embedded store keeps its files (None on a Chroma server).
        self.chroma_dir: Path | None = None
        #: Writes are refused while the embedded store's disk has less free space (bytes).
        self.min_free = faults.DEFAULT_MIN_FREE
        #: Set when a Chroma write failed: its client must not write again (see ``faults``);
        #: the owner reopens the store. Every later write raises this error.
        self.retired: Exception | None = None
        #: The collection, the source of truth: every read and write of it goes through here.
        self.db = Records(collection)
        self.embedder = embedder
        self.turn_ttl = turn_ttl
        self.forget_retention = forget_retention
        self.refresh_interval = refresh_interval
        self.indexes = Indexes(self._stored_vectors)
        self.lexical = self.indexes.lexical
        self.vectors = self.indexes.vectors
        #: Per thread: writes waiting for the end of ``one_commit`` (only the thread that
        #: made them may read them, since other threads' reads must see only what is stored).
        self._local = threading.local()
        #: How recall ranks a person's words (benchmarks try others); an agent's query is
        #: ranked with ``ranking.for_agent`` (the agent weights and this embedder's gate).
        self.weights = ranking.DEFAULT
        self._refreshed = 0.0
        self.refresh_indexes()

    @property
    def collection(self) -> ChromaApi:
        """The Chroma collection itself (for another store on it, and for tests)."""
        return self.db.chroma

    def count(self) -> int:
        return self.db.count()

    # ---- reads by id -----------------------------------------------------------------------

    def _records(self, ids: list[str], allowed: Allowed) -> dict[str, MemoryRecord]:
        """The records among ``ids`` (any scope or status) whose metadata ``allowed`` accepts."""
        found = self.db.records(ids, allowed)
        return self._staged.overlay(found, ids, allowed) if self._staged is not None else found

    def _current(self, ids: list[str], allowed: Allowed) -> dict[str, MemoryRecord]:
        """The indexed records among ``ids`` that ``allowed`` accepts, as they stand now: what
        recall returns and what dedup compares with.

        An embedded store has one writer, the process that holds its lock, and each of its
        writes reaches the indexes as it lands, so their copies are current and reading the
        collection again would only cost time (1-2 ms a call at 10,000 memories). On a Chroma
        server another replica may have changed or forgotten a record since the last refresh,
        so the collection, the source of truth, is read.
        """
        if self.chroma_dir is None:
            return self._records(ids, allowed)
        found = {i: r for i in ids if (r := self.lexical.record(i)) is not None and allowed(self.lexical.meta(i))}
        return self._staged.overlay(found, ids, allowed) if self._staged is not None else found

    def _one(self, memory_id: str, allowed: Allowed) -> MemoryRecord:
        """One record ``allowed`` accepts; ``NotFound`` whether it is missing or someone else's."""
        memory_id = check_id(memory_id)
        found = self._records([memory_id], allowed)
        if not found:
            raise NotFound(f"no memory with id {memory_id!r}")
        return found[memory_id]

    def restatements(self, memory_id: str) -> list[MemoryRecord]:
        """The restatements folded into ``memory_id``, oldest first."""
        return sorted(self.db.records_where(chroma.restatements_of(memory_id)), key=lambda r: r.created_at)

    def _stored_vectors(self, ids: list[str]) -> dict[str, Any]:
        """The collection's embeddings of ``ids`` (those it has)."""
        return self.db.vectors(ids)

    def _embed_one(self, text: str) -> np.ndarray:
        staged = self._staged
        if staged is not None and text in staged.vectors:
            return staged.vectors[text]
        vector: np.ndarray = self.embedder.embed([text])[0]
        return vector

    # ---- writes --------------------------------------------------------------------------

    @property
    def _staged(self) -> Staged | None:
        return getattr(self._local, "staged", None)

    @_staged.setter
    def _staged(self, staged: Staged | None) -> None:
        self._local.staged = staged

    @contextlib.contextmanager
    def one_commit(self, contents: Sequence[Any] = ()) -> Iterator[None]:
        """Make the writes inside go to Chroma together, when it ends (``staging``).

        Until then the owner's thread reads them as written (dedup of a later request sees
        an earlier one). Answer no request made inside before this returns. If the body
        raises, nothing it staged is written; if the commit's write fails, this raises (see
        ``_write_failed`` for what was stored then). ``contents``: what ``remember`` requests
        inside were given; those that pass its checks and screening are embedded together
        up front (one model run instead of one each; any other is embedded on its own).
        """
        if self._staged is not None:
            yield  # already inside one
            return
        self._staged = Staged()
        try:
            self._embedded_together(self._staged, contents)
            yield
        except BaseException:
            self._staged = None
            raise
        staged, self._staged = self._staged, None
        (records, vectors), changed = staged.groups()
        if records:
            self._write(records, vectors)
        if changed:
            self._write(changed)

    def _screened(self, content: Any) -> tuple[str, list[str]]:
        """``content`` as ``remember`` stores it: checked, credentials redacted (their kinds);
        inside ``one_commit`` as screened up front."""
        staged = self._staged
        if staged is not None and isinstance(content, str) and content in staged.screened:
            return staged.screened[content]
        return secrets.screen(check_content(content), self.secrets_policy)

    def _embedded_together(self, staged: Staged, contents: Sequence[Any]) -> None:
        """Screen ``contents`` and embed them in one model run, into ``staged``; a content that
        fails its checks is left to its request (which reports why), and when the run fails
        each request embeds its own."""
        for content in contents:
            try:
                staged.screened[content] = self._screened(content)
            except HeadroomError:
                continue
        texts = list(dict.fromkeys(text for text, _ in staged.screened.values()))
        if texts:
            try:
                staged.vectors = dict(zip(texts, self.embedder.embed(texts)))
            except Exception:
                pass

    def _write(self, records: list[MemoryRecord], vectors: Sequence[Any] | None = None) -> None:
        """Upsert records (with new vectors, or keeping the stored ones) and index them;
        inside ``one_commit`` only stage them."""
        if self._staged is not None:
            self._staged.add(records, vectors)
            return
        ids = [r.id for r in records]
        # When this write happened, apart from ``updated_at`` (which an import keeps from the
        # export): other replicas pull every write since their last look by this time.
        t = now()
        metas = [{**r.to_metadata(), "changed_at": t} for r in records]
        docs = [r.content for r in records]
        self._may_write()
        try:
            if vectors is None:  # content never changes in place: only the metadata is written
                self.db.update(ids, metas)
            else:
                self.db.upsert(ids, docs, metas, vectors)
        except Exception as exc:
            self._write_failed(exc)  # returns only when Chroma kept the records
        self.indexes.apply(ids, docs, metas, vectors)

    def _may_write(self) -> None:
        """Refuse a write before Chroma sees it: the client is retired, or the disk nearly full."""
        if self.retired is not None:
            raise self.retired
        if self.chroma_dir is not None:
            faults.ensure_space(self.chroma_dir, self.min_free)

    def _write_failed(self, exc: Exception) -> None:
        """After Chroma raised on a write: re-raise, raise a clear ``StoreFull``, or return if it was stored.

        A storage fault retires this Chroma client (its next write would hang the process);
        the record's fate comes from ``faults.classify_write``, so a stored record is
        reported as stored and a failure is reported only for a record that is not.
        """
        outcome = faults.classify_write(exc)
        if outcome is None or self.chroma_dir is None:
            raise exc
        self.retired = faults.disk_full(self.chroma_dir, f"{type(exc).__name__}: {exc}", "the store must be reopened")
        if outcome == faults.NOT_STORED:
            raise faults.disk_full(self.chroma_dir) from exc

    # ---- indexes -------------------------------------------------------------------------

    def _fresh_indexes(self) -> None:
        """Pull writes of other processes (replicas) into the indexes once the refresh interval
        has passed: always on a Chroma server, now and then as a safety net when embedded."""
        if time.monotonic() - self._refreshed >= self.refresh_interval:
            self.refresh_indexes()

    def refresh_indexes(self) -> int:
        """Pull records written since the watermark into the indexes; return how many."""
        self._refreshed = time.monotonic()
        return self.indexes.refresh(self.db.pages)

    def rebuild_indexes(self) -> None:
        """Drop the indexes and rebuild them from the collection."""
        self.indexes.clear()
        self.refresh_indexes()
