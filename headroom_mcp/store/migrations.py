"""Store format versions and the steps between them.

The collection's metadata holds ``schema_version``. Opening a store written by an older
headroom-mcp runs each step from its version up to ``SCHEMA_VERSION`` in order, then
records the new version; a step must be safe to run twice (a crash mid-migration reruns
it), and no step may lose a memory. An embedded store is copied to
``<data dir>/backup-before-format-N`` before its first step runs. A store newer than this code is refused (see
``chroma.open_collection``).

| version | what changed |
|---|---|
| 1 | first format: records as Chroma metadata, ``hash`` of the normalised text |
| 2 | contents are screened for credentials: secrets stored before redaction existed are redacted in place (and re-embedded) |
| 3 | contents are screened again by the Betterleaks-based scanner: credentials the first rules missed (password flags, quoted JSON keys, header values, webhook URLs...) are redacted the same way |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .embedder import Embedder
from .records import MemoryRecord, visible
from .secrets import find, redact

if TYPE_CHECKING:  # chroma imports SCHEMA_VERSION from here
    from .chroma import Records

log = logging.getLogger("headroom_mcp.store.migrations")

SCHEMA_VERSION = 3
_PAGE = 500


def _redact_stored_secrets(collection: Records, embedder: Embedder) -> int:
    """1 → 2 and 2 → 3: redact credentials in stored contents, keeping every record and its history."""
    changed = 0
    for page in collection.pages(None, ["documents", "metadatas"], size=_PAGE):
        fixed = []
        for doc_id, doc, meta in zip(page["ids"], page["documents"], page["metadatas"]):
            # Invisible characters first, as every write now drops them: they hid keys from the scanner.
            shown = visible(doc or "")
            findings = find(shown)
            if findings or shown != doc:
                record = MemoryRecord.from_chroma(doc_id, doc, meta)
                record.content = redact(shown, findings)
                fixed.append(record)
        if fixed:
            vectors = embedder.embed([r.content for r in fixed])
            collection.upsert([r.id for r in fixed], [r.content for r in fixed], [r.to_metadata() for r in fixed], vectors)
            changed += len(fixed)
    return changed


#: version → the step that upgrades a store from it to the next version.
STEPS: dict[int, Callable[[Records, Embedder], int]] = {1: _redact_stored_secrets, 2: _redact_stored_secrets}


def version_of(collection: Records) -> int:
    """The collection's format version (stores from before the marker are version 1)."""
    return int(collection.metadata.get("schema_version") or 1)


def migrate(collection: Records, embedder: Embedder) -> list[str]:
    """Bring the collection up to ``SCHEMA_VERSION``; return what was done (empty when current)."""
    meta = collection.metadata
    version = version_of(collection)
    done = []
    while version < SCHEMA_VERSION:
        changed = STEPS[version](collection, embedder)
        version += 1
        meta["schema_version"] = version
        collection.set_metadata(meta)  # after the step: a crash in it reruns it
        done.append(f"format {version - 1} → {version}: {changed} records changed")
        log.info("migrated store %s", done[-1])
    return done
