"""Opening the one Chroma collection: embedded on disk, or on a Chroma server.

The collection's metadata carries the store format version and the embedder id, so a
store written with one embedding model is never silently queried with another.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from ..errors import HeadroomError, InvalidInput
from .migrations import SCHEMA_VERSION

COLLECTION = "headroom_memories"


def _settings():
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(data_dir: Path | None = None, chroma_url: str | None = None):
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


def open_collection(client, embedder_id: str):
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
