"""The one place that talks to the Chroma collection: opening it, reading, writing, filters.

``Records`` wraps the collection (embedded on disk, on a Chroma server, or the in-memory
fake the unit tests use: anything with the ``ChromaApi`` methods) and gives the store what
it needs in its own terms: records by id, pages of a filter, upserts and metadata updates
with Chroma's quirks handled here. The filter builders below turn the store's rules (the
visibility of ``scopes``, a memory's history, what ``purge`` deletes) into Chroma's filter
language, so no other module writes one.

The collection's metadata carries the store format version and the embedder id, so a
store written with one embedding model is never silently queried with another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from ..errors import HeadroomError, InvalidInput
from .migrations import SCHEMA_VERSION
from .records import FORGOTTEN, MERGED, MemoryRecord
from .scopes import Visibility

COLLECTION = "headroom_memories"
#: Records read per call when a filter is read page by page.
PAGE = 1000

#: A Chroma filter (``where``), or None for every record.
Filter = dict[str, Any]
#: What a Chroma ``get`` returns: ``ids`` and, for each field asked for, one value per id.
Page = Mapping[str, Any]


class ChromaApi(Protocol):
    """The part of Chroma's ``Collection`` that ``Records`` uses (``tests/fake_collection`` fakes it)."""

    @property
    def metadata(self) -> Mapping[str, Any] | None: ...

    def get(self, ids: Any = None, where: Any = None, limit: Any = None, offset: Any = None, include: Any = ...) -> Any: ...

    def upsert(self, ids: Any, embeddings: Any, metadatas: Any, documents: Any) -> None: ...

    def update(self, ids: Any, metadatas: Any) -> None: ...

    def delete(self, ids: Any) -> None: ...

    def count(self) -> int: ...

    def modify(self, metadata: Any) -> None: ...


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(data_dir: Path | None = None, chroma_url: str | None = None) -> Any:
    """A Chroma client: ``HttpClient`` when ``chroma_url`` is given, else ``PersistentClient``."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb

    if chroma_url:
        parsed = urlparse(chroma_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput(f"chroma url must look like http://host:port, got {chroma_url!r}")
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=_settings(),
        )
    if data_dir is None:
        raise InvalidInput("a data dir or a chroma url is needed")
    path = Path(data_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=_settings())


def open_collection(client: Any, embedder_id: str) -> Any:
    """Get or create the memory collection and check it was built by the same embedder."""
    collection = client.get_or_create_collection(
        COLLECTION,
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"schema_version": SCHEMA_VERSION, "embedder": embedder_id},
    )
    meta = collection.metadata or {}
    stored = meta.get("embedder")
    if stored and stored != embedder_id:
        raise HeadroomError(
            f"this store was built with embedder {stored!r} but {embedder_id!r} is configured; "
            "use the same embedder, or export and import into a new data dir"
        )
    version = int(meta.get("schema_version") or 0)
    if version > SCHEMA_VERSION:
        raise HeadroomError(
            f"this store has format version {version}, newer than this headroom-mcp ({SCHEMA_VERSION}); upgrade headroom-mcp"
        )
    return collection


class Records:
    """The memory records of one collection, read and written in the store's terms."""

    def __init__(self, chroma: ChromaApi) -> None:
        #: The collection itself (tests and tools that need Chroma's own API reach it here).
        self.chroma = chroma

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's own metadata (format version, embedder)."""
        return dict(self.chroma.metadata or {})

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.chroma.modify(metadata=dict(metadata))

    def count(self) -> int:
        return int(self.chroma.count())

    def records(self, ids: Sequence[str], allowed: Callable[[Mapping[str, Any]], bool] | None = None) -> dict[str, MemoryRecord]:
        """The records among ``ids`` that the collection holds (any scope or status) and whose
        stored metadata ``allowed`` accepts (all when it is None)."""
        got = self.chroma.get(ids=list(ids), include=["documents", "metadatas"])
        return {i: MemoryRecord.from_chroma(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
                if allowed is None or allowed(m)}

    def vectors(self, ids: Sequence[str]) -> dict[str, Any]:
        """The stored embeddings of ``ids`` (those the collection has)."""
        got = self.chroma.get(ids=list(ids), include=["embeddings"])
        return dict(zip(got["ids"], got["embeddings"]))

    def pages(self, where: Filter | None, include: Sequence[str], size: int = PAGE) -> Iterator[Page]:
        """The records matching ``where``, ``size`` at a time; each page is read when the one before is done with."""
        offset = 0
        while True:
            page = self.chroma.get(where=where, include=list(include), limit=size, offset=offset)
            yield page
            if len(page["ids"]) < size:
                return
            offset += size

    def records_where(self, where: Filter | None) -> Iterator[MemoryRecord]:
        """Every record matching ``where``, as records."""
        for page in self.pages(where, ["documents", "metadatas"]):
            for doc_id, document, meta in zip(page["ids"], page["documents"], page["metadatas"]):
                yield MemoryRecord.from_chroma(doc_id, document, meta)

    def ids_where(self, where: Filter | None) -> list[str]:
        """The ids of the records matching ``where``."""
        return [doc_id for page in self.pages(where, []) for doc_id in page["ids"]]

    def upsert(self, ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[Mapping[str, Any]],
               vectors: Iterable[Any]) -> None:
        """Write whole records: text, metadata and embedding, nothing of a stored one left."""
        self.chroma.upsert(ids=list(ids), metadatas=_replacing(metadatas), documents=list(documents),
                           embeddings=[list(map(float, v)) for v in vectors])

    def update(self, ids: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> None:
        """Replace the metadata of stored records, keeping their text and embedding."""
        self.chroma.update(ids=list(ids), metadatas=_replacing(metadatas))

    def delete(self, ids: Sequence[str]) -> None:
        self.chroma.delete(ids=list(ids))


def _replacing(metadatas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``metadatas`` that replace a stored record's rather than merge into it.

    Chroma merges metadata on update and on upsert, so a field that became empty
    (``merged_into`` after an unmerge, ``superseded_by`` on a record written again) is
    deleted by naming it with None.
    """
    return [{**{k: None for k in MemoryRecord.metadata_keys() if k not in m}, **m} for m in metadatas]


# ---- filters ---------------------------------------------------------------------------------


def equal(pairs: Mapping[str, Any]) -> Filter:
    """Records whose fields equal ``pairs`` (at least one pair)."""
    clauses = [{k: v} for k, v in pairs.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def with_status(statuses: Sequence[str]) -> Filter:
    return {"status": statuses[0]} if len(statuses) == 1 else {"status": {"$in": list(statuses)}}


def changed_since(t: float) -> Filter:
    """Records written at or after ``t`` (``changed_at``)."""
    return {"changed_at": {"$gte": t}}


def restatements_of(memory_id: str) -> Filter:
    return {"$and": [{"status": MERGED}, {"merged_into": memory_id}]}


def restatements_of_any(memory_ids: Sequence[str]) -> Filter:
    return {"$and": [{"status": MERGED}, {"merged_into": {"$in": list(memory_ids)}}]}


def purgeable(forgotten_before: float, t: float) -> Filter:
    """Memories forgotten before ``forgotten_before``, and turn memories expired by ``t``."""
    return {"$or": [
        {"$and": [{"status": FORGOTTEN}, {"updated_at": {"$lt": forgotten_before}}]},
        {"$and": [{"scope": "turn"}, {"expires_at": {"$lt": t}}]},
    ]}


def _narrowing(vis: Visibility) -> list[Filter]:
    """The tag and agent clauses of ``visible`` and ``reachable``."""
    parts: list[Filter] = []
    if vis.tags:
        tag_clauses = [{"tags": {"$contains": t}} for t in vis.tags]
        parts.append(tag_clauses[0] if len(tag_clauses) == 1 else {"$or": tag_clauses})
    if vis.agent:
        parts.append({"agents": {"$contains": vis.agent}})
    return parts


def visible(vis: Visibility) -> Filter | None:
    """``vis.matches`` as a Chroma filter, or None when nothing at all is visible."""
    scope_clauses = [equal(c) for c in vis.scope_clauses()]
    if not scope_clauses:
        return None
    parts = [with_status(vis.statuses), scope_clauses[0] if len(scope_clauses) == 1 else {"$or": scope_clauses}]
    parts += _narrowing(vis)
    if "turn" in vis.scopes and vis.context.turn_id:
        # Turn memories expire; everything else carries expires_at 0 (absent → excluded by
        # $gt), so the expiry test applies to turn memories only.
        parts.append({"$or": [{"scope": {"$ne": "turn"}}, {"expires_at": {"$gt": vis.now}}]})
    return {"$and": parts}


def reachable(vis: Visibility) -> Filter:
    """A Chroma filter for every memory the context may read by id (``Context.can_read``),
    not only those visible here: the caller's own in every project and session, and the
    project memories of every project. ``Visibility.reaches`` then drops the projects its
    grant does not cover. A memory browser lists these: nothing in them is hidden from ``get``.
    """
    parts = [with_status(vis.statuses), {"$or": [{"user_id": vis.context.user_id}, {"scope": "project"}]}]
    if len(vis.scopes) == 1:
        parts.append({"scope": vis.scopes[0]})
    return {"$and": parts + _narrowing(vis)}
