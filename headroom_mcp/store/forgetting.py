"""Forgetting and bringing back: ``forget`` (by id or by a query that clearly names one), ``restore``, ``clear``, ``purge``.

Forgetting retires a memory (status ``forgotten``); only ``purge`` deletes, once the
retention has passed, so a mistaken forget can be undone until then.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound
from . import chroma, ranking
from .reading import MAX_RECALL_LIMIT, Reading
from .records import ACTIVE, FORGOTTEN, MERGED, MemoryRecord, check_id, check_limit, now
from .remembering import Remembering
from .scopes import Context


def _briefly(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recall results as forget shows them: what each memory says, and how well it matched."""
    return [{k: r[k] for k in ("id", "content", "score")} for r in results]


class Forgetting(Remembering, Reading):
    """``forget``, ``restore``, ``clear`` and ``purge``."""

    def forget(
        self,
        ctx: Context,
        id: Any = None,
        ids: Any = None,
        query: Any = None,
        confirm: Any = False,
        limit: Any = 10,
    ) -> dict[str, Any]:
        """Retire memories by id, ids, or query; ``restore`` brings them back within the retention.

        By query only the memory the query clearly names is taken (``ranking.named_by``:
        well above recall's cut-off and clearly above the next);
        the others that matched are returned as ``candidates``, never taken, so that a
        neighbour on the same topic survives. Without ``confirm`` (a real boolean) a query
        only lists what it would take (``would_forget``); passing those ids back forgets
        exactly them. All ids are checked before any is retired: an unknown id changes nothing.
        """
        ctx.require_write()
        if not isinstance(confirm, bool):
            raise InvalidInput(f"confirm must be true or false, got {confirm!r}")
        given = [x for x in (id, ids, query) if x is not None]
        if len(given) != 1:
            raise InvalidInput("give exactly one of id, ids or query")
        candidates: list[dict[str, Any]] = []
        if query is not None:
            limit = check_limit(limit, 10, MAX_RECALL_LIMIT - 1)
            # One more than asked: whether the best stands clear of the next decides whether
            # it is named at all, and the rest are the candidates.
            taken, others = ranking.named_by(self.recall(ctx, query, limit=limit + 1))
            candidates = _briefly(others)
            if not confirm:
                return {"forgotten": [], "would_forget": _briefly(taken), "candidates": candidates, "confirm_needed": bool(taken)}
            targets = [m["id"] for m in taken]
        else:
            if ids is not None and (isinstance(ids, str) or not isinstance(ids, (list, tuple)) or not ids):
                raise InvalidInput("ids must be a non-empty list of memory ids")
            targets = [check_id(x) for x in (ids if ids is not None else [id])]
        retired = self._retire(ctx, list(dict.fromkeys(targets)))
        out: dict[str, Any] = {"forgotten": [r.id for r in retired]}
        if query is not None:
            out["candidates"] = candidates
        return out

    def _retire(self, ctx: Context, targets: list[str]) -> list[MemoryRecord]:
        """Forget ``targets``, all checked before any is retired; return the records retired
        (those already forgotten or superseded are left as they are)."""
        records = self._records(targets, ctx.can_change) if targets else {}
        unknown = [t for t in targets if t not in records]
        if unknown:
            raise NotFound(f"no memory with id {', '.join(map(repr, unknown))}; nothing was forgotten")
        restated = [t for t in targets if records[t].status == MERGED]
        if restated:
            raise InvalidInput(f"{', '.join(map(repr, restated))} {'is a restatement' if len(restated) == 1 else 'are restatements'} of "
                               f"{', '.join(repr(records[t].merged_into) for t in restated)}: forget that memory, or unmerge "
                               "the restatement first; nothing was forgotten")
        t = now()
        retired = [records[i] for i in targets if records[i].status == ACTIVE]
        for r in retired:
            r.status, r.updated_at = FORGOTTEN, t
        if retired:
            self._write(retired)
        return retired

    def restore(self, ctx: Context, ids: Any) -> dict[str, Any]:
        """Bring forgotten memories back (until ``purge`` deletes them, ``forget_retention`` after).

        Every id must be a forgotten memory the caller may change, still within the retention,
        or nothing is restored. Restatements merged into a memory went with it and come back
        with it. When the same fact was remembered again while it was forgotten, the restored
        memory is merged into that one (``merged_into``), as a second remember would be: the
        fact is stored once, and nothing of either is lost.
        """
        ctx.require_write()
        if isinstance(ids, str) or not isinstance(ids, (list, tuple)) or not ids:
            raise InvalidInput("ids must be a non-empty list of memory ids")
        targets = list(dict.fromkeys(check_id(x) for x in ids))
        records = self._records(targets, ctx.can_change)
        unknown = [i for i in targets if i not in records]
        if unknown:
            raise NotFound(f"no memory with id {', '.join(map(repr, unknown))} (purged, or never here); nothing was restored")
        live = [i for i in targets if records[i].status != FORGOTTEN]
        if live:
            raise InvalidInput(f"{', '.join(f'{i!r} is {records[i].status}' for i in live)}, not forgotten; nothing was restored")
        t = now()
        expired = [i for i in targets if records[i].updated_at + self.forget_retention < t]
        if expired:
            raise NotFound(f"{', '.join(map(repr, expired))} passed the retention and will be purged; nothing was restored")
        vectors = self._stored_vectors(targets)
        merged: dict[str, str] = {}
        for memory_id in targets:
            record = records[memory_id]
            record.status, record.updated_at = ACTIVE, t
            vector = np.asarray(vectors[memory_id], dtype=np.float32)
            twin = self._same_fact(record, vector)
            if twin is None:
                self._write([record])
            else:
                history = self.restatements(memory_id)
                for restatement in history:  # one level of history: they belong to the twin now
                    restatement.merged_into = twin.id
                if history:
                    self._write(history)
                self._fold(twin, record, vector)
                merged[memory_id] = twin.id
        return {"restored": targets, **({"merged_into": merged} if merged else {})}

    def clear(self, ctx: Context, scope: Any = None) -> dict[str, Any]:
        """Forget every memory visible to ``ctx`` (optionally one scope)."""
        where = chroma.visible(self.visibility(ctx, scope))
        ids = self.db.ids_where(where) if where else []
        forgotten: list[str] = []
        for start in range(0, len(ids), 500):
            forgotten += self.forget(ctx, ids=ids[start : start + 500])["forgotten"]
        return {"forgotten": len(forgotten)}

    def purge(self, older_than: float | None = None) -> int:
        """Delete memories forgotten longer ago than ``older_than`` (default the retention), and expired turn memories.

        Superseded records stay: they are the history of the fact that replaced them.
        """
        self._may_write()
        t = now()
        cutoff = t - (self.forget_retention if older_than is None else older_than)
        doomed = self.db.ids_where(chroma.purgeable(cutoff, t))
        if doomed:  # the history of a purged memory goes with it
            doomed += self.db.ids_where(chroma.restatements_of_any(doomed))
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            self.db.delete(chunk)
            self.indexes.remove(chunk)
        return len(doomed)
