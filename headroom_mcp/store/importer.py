"""Import: whole records written as they were exported (ids, provenance, timestamps kept).

Each is screened like a ``remember``, and with dedup merged into the same fact already
stored, by the same merge (``Remembering._fold``) a restatement gets.
"""

from __future__ import annotations

from ..errors import InvalidInput
from . import secrets
from .records import ACTIVE, MERGED, MemoryRecord
from .remembering import Remembering, join_sources


class Importer(Remembering):
    """``import_records``."""

    def import_records(self, records: list[MemoryRecord], dedup: bool = True, batch: int = 256) -> dict[str, int]:
        """Write whole records (ids, provenance, timestamps kept), embedding in batches.

        With ``dedup`` a record that is the same fact as an active memory in its scope domain
        is merged into it (agents and counts combined) instead of stored again; a record whose
        id already exists is replaced, so importing an export twice changes nothing.
        """
        counts = {"created": 0, "merged": 0, "replaced": 0, "redacted": 0}
        for n, record in enumerate(records, 1):  # checked and screened before anything is written
            if record.status == MERGED or record.merged_into:
                raise InvalidInput(f"record {n} ({record.id}) is a restatement of another memory; "
                                   "import takes memories (history is rebuilt by merging); nothing was imported")
            record.content, kinds = secrets.screen(record.content, self.secrets_policy, what=f"record {n} ({record.id})")
            counts["redacted"] += bool(kinds)
            secrets.screen_tags(record.tags, what=f"record {n} ({record.id}): ", outcome="nothing was imported")
            for key, value in record.provenance():
                if (secrets.find if key.startswith("extra.") else secrets.find_known)(value):
                    raise InvalidInput(f"record {n} ({record.id}): {key} looks like a secret; nothing was imported")
        for start in range(0, len(records), batch):
            with self.one_commit():  # one Chroma write (and fsync) per batch
                self._import_batch(records[start : start + batch], dedup, counts)
        return counts

    def _import_batch(self, chunk: list[MemoryRecord], dedup: bool, counts: dict[str, int]) -> None:
        """Import one batch inside ``one_commit``: later records see the earlier ones staged."""
        vectors = self.embedder.embed([r.content for r in chunk])
        existing = self.db.records([r.id for r in chunk])
        for record, vector in zip(chunk, vectors):
            before = existing.get(record.id)
            if before is not None and before.status == MERGED:  # imported before and folded into its twin
                counts["merged"] += 1
                continue
            if before is not None:  # a replaced memory keeps what merges added since
                join_sources(record, before)
                record.seen_count = max(record.seen_count, before.seen_count)
            if dedup and record.id not in existing and record.status == ACTIVE:
                twin = self._same_fact(record, vector)
                if twin is not None:
                    self._fold(twin, record, vector)
                    counts["merged"] += 1
                    continue
            counts["replaced" if record.id in existing else "created"] += 1
            self._write([record], [vector])
