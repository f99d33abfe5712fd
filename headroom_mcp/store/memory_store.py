"""``MemoryStore``: remember, recall and forget over the Chroma collection.

Only the process that owns the store (the daemon, or ``Memory(embedded=True)``) builds
one. Its methods are not re-entrant for writes: the owner calls them from one thread, which
is what makes dedup decisions race-free (two agents asserting the same fact at the same
instant end with one memory).

The verbs live in modules named for what they do, mixins over ``engine.StoreEngine`` (the
state, writes and reads by id): ``remembering`` (remember, merge, unmerge, update),
``reading`` (recall, get, list, context, stats), ``forgetting`` (forget, restore, clear,
purge) and ``importer`` (import_records). Opening a store, checking its indexes and backing
it up are here. Every word with the collection goes through ``chroma.Records``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from . import chroma, faults
from .embedder import Embedder
from .forgetting import Forgetting
from .importer import Importer
from .indexes import INDEXED
from .migrations import SCHEMA_VERSION, migrate, version_of
from .records import DEFAULT_FORGET_RETENTION, DEFAULT_TURN_TTL


class MemoryStore(Forgetting, Importer):
    """The memory engine over one Chroma collection, an embedder, and indexes derived from the collection."""

    @classmethod
    def open(
        cls,
        embedder: Embedder,
        data_dir: Path | None = None,
        chroma_url: str | None = None,
        turn_ttl: float = DEFAULT_TURN_TTL,
        secrets_policy: str = "redact",
        forget_retention: float = DEFAULT_FORGET_RETENTION,
        min_free: int = faults.DEFAULT_MIN_FREE,
    ) -> MemoryStore:
        """Open (or create) a store; a damaged or unopenable one raises a clear ``HeadroomError``."""
        if chroma_url:
            return cls._open(embedder, None, chroma_url, turn_ttl, secrets_policy, forget_retention)
        chroma_dir = Path(data_dir) / "chroma" if data_dir is not None else None
        if chroma_dir is not None:
            faults.inspect(chroma_dir)  # before Chroma writes anything into a damaged store
        try:
            store = cls._open(embedder, data_dir, None, turn_ttl, secrets_policy, forget_retention)
        except Exception as exc:
            explained = faults.explain_open_error(chroma_dir, exc, min_free) if chroma_dir is not None else None
            if explained is None:
                raise
            raise explained from exc
        store.min_free = min_free
        return store

    @classmethod
    def _open(cls, embedder: Embedder, data_dir: Path | None, chroma_url: str | None, turn_ttl: float,
              secrets_policy: str, forget_retention: float) -> MemoryStore:
        collection = chroma.open_collection(chroma.open_client(data_dir, chroma_url), embedder.model_id)
        records = chroma.Records(collection)
        if version_of(records) < SCHEMA_VERSION and data_dir is not None:
            # Before a migration changes records in place, keep the old store as it was.
            import shutil

            keep = Path(data_dir) / f"backup-before-format-{SCHEMA_VERSION}"
            if not keep.exists():
                shutil.copytree(Path(data_dir) / "chroma", keep / "chroma")
        migrated = migrate(records, embedder)
        store = cls(collection, embedder, turn_ttl, refresh_interval=0.0 if chroma_url else 30.0, secrets_policy=secrets_policy,
                    forget_retention=forget_retention)
        store.migrated = migrated
        store.chroma_dir = None if chroma_url or data_dir is None else Path(data_dir) / "chroma"
        return store

    def check(self, repair: bool = True) -> dict[str, Any]:
        """Do the lexical and vector indexes hold exactly the collection's active records? Rebuild them if not.

        The daemon runs this at startup and ``doctor`` asks for it. The collection is the
        source of truth; the index is derived, so repairing it loses nothing.
        """
        if not isinstance(repair, bool):
            raise InvalidInput(f"repair must be true or false, got {repair!r}")
        self.refresh_indexes()
        active = set(self.db.ids_where(chroma.with_status(INDEXED)))
        lexical, vectors = self.indexes.held()
        missing, extra = active - (lexical & vectors), (lexical | vectors) - active
        report: dict[str, Any] = {"records": self.db.count(), "active": len(active), "lexical": len(lexical),
                                  "vectors": len(vectors), "missing": len(missing), "extra": len(extra), "repaired": False,
                                  "migrated": self.migrated}
        if (missing or extra) and repair:
            self.rebuild_indexes()
            report["repaired"] = True
            report["lexical"], report["vectors"] = len(self.lexical), len(self.vectors)
        return report

    def backup(self, dest: Any) -> dict[str, Any]:
        """Copy the embedded store's files to ``dest``, a new directory that becomes a data dir.

        Run by the store's single worker (or under the embedded lock), so no write of ours
        interleaves; the SQLite file, which holds every record and the write-ahead log of
        the vector index, is copied with SQLite's online backup API, and the vector index
        files beside it. Opening the copy replays whatever the index had not flushed.
        """
        import shutil
        import sqlite3

        if self.chroma_dir is None:
            raise InvalidInput("backup copies an embedded store; on a Chroma server use export, or the server's own backups")
        if not isinstance(dest, str) or not dest.strip():
            raise InvalidInput("dest must be a directory path")
        target = Path(dest).expanduser().resolve()
        if target.exists() and any(target.iterdir()):
            raise InvalidInput(f"{target} exists and is not empty; back up into a new directory")
        if target == self.chroma_dir.parent or self.chroma_dir.parent in target.parents:
            raise InvalidInput("back up outside the store's own data dir")
        # Private, as every data dir must be (its daemon's socket lives in it): the copy is then
        # usable as ``--data-dir DEST`` at once.
        target.mkdir(parents=True, mode=0o700, exist_ok=True)
        target.chmod(0o700)
        chroma = target / "chroma"
        chroma.mkdir(mode=0o700)
        for item in self.chroma_dir.iterdir():
            if item.is_dir():
                shutil.copytree(item, chroma / item.name)
        source = sqlite3.connect(self.chroma_dir / "chroma.sqlite3")
        copy = sqlite3.connect(chroma / "chroma.sqlite3")
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return {"dest": str(target), "records": self.count()}
