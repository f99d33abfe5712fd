"""The read path: recall by meaning, and reading memories by id, by listing, for a session's start, as totals.

``recall`` ranks with the derived indexes (dense cosine and BM25 fused, ``ranking``) over
exactly the memories the caller may see, then reads what it shows back as it stands now.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from ..methods import RECALL_LIMIT
from . import chroma, ranking
from .engine import StoreEngine
from .records import ACTIVE, FORGOTTEN, MERGED, MemoryRecord, check_content, check_limit, check_scope, check_tags, iso, now
from .scopes import Context, Visibility
from .vectors import Where

MAX_RECALL_LIMIT = 100
#: Dense and lexical candidate pool per recall, as a multiple of ``limit`` (at least 50).
POOL_FACTOR = 10
#: Restatements looked at per recall (each counts for the memory it was folded into).
RESTATEMENT_POOL = 20

#: A newer memory moves above an older one it conflicts with when it scores within this of it.
CONFLICT_MARGIN = 0.1


def _newer_first(ranked: list[ranking.Scored], replaces: Mapping[str, list[str]]) -> list[ranking.Scored]:
    """``ranked`` with each memory moved just above any older one it conflicts with.

    When a fact was restated with a new value (its ``conflicts``) and both match a query
    about as well, the newer statement is the one to believe. A much better match stays
    first: "shard B00042" must not yield to a newer note about another shard.
    """
    out: list[ranking.Scored] = []
    for s in ranked:
        above = [n for n, placed in enumerate(out)
                 if placed.id in replaces.get(s.id, ()) and placed.score - s.score <= CONFLICT_MARGIN]
        out.insert(min(above) if above else len(out), s)
    return out


class Reading(StoreEngine):
    """``recall``, ``get``, ``list``, ``context`` and ``stats``: nothing here writes."""

    def visibility(self, ctx: Context, scope: Any = None, tags: Any = None, agent: Any = None) -> Visibility:
        scope = check_scope(scope)
        tags = check_tags(tags)
        if agent is not None and not isinstance(agent, str):
            raise InvalidInput(f"agent must be a string, got {agent!r}")
        return Visibility(ctx, scopes=(scope,) if scope else Visibility.scopes, tags=tuple(tags), agent=agent or "", now=now())

    def recall(
        self,
        ctx: Context,
        query: Any,
        limit: Any = RECALL_LIMIT,
        scope: Any = None,
        tags: Any = None,
        agent: Any = None,
        min_score: Any = None,
        asked_by: Any = "prompt",
    ) -> list[dict[str, Any]]:
        """The memories visible to ``ctx`` that best match ``query``, best first; ``asked_by``
        says who worded the query, which decides the ranking's weights (``ranking.for_agent``)."""
        query = check_content(query, "query")
        if asked_by not in ("prompt", "agent"):
            raise InvalidInput(f"asked_by must be \"prompt\" or \"agent\", got {asked_by!r}")
        limit = check_limit(limit, RECALL_LIMIT, MAX_RECALL_LIMIT)
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or math.isnan(min_score)):
            raise InvalidInput(f"min_score must be a number, got {min_score!r}")
        vis = self.visibility(ctx, scope, tags, agent)
        if chroma.visible(vis) is None:  # nothing can be visible
            return []
        records, dense, lexical = self.candidates(query, vis, max(50, limit * POOL_FACTOR))
        t = now()
        weights = ranking.for_agent(self.embedder.calibration) if asked_by == "agent" else self.weights
        fused = ranking.fuse(
            dense, lexical,
            {i: r.importance for i, r in records.items()},
            {i: r.age_days(t) for i, r in records.items()},
            weights,
        )
        ranked = _newer_first([s for s in fused if min_score is None or s.score >= min_score],
                              {i: r.conflicts for i, r in records.items()})
        shown = self._read_back(ranked, vis, limit)
        if not ranking.gated([s for s, _ in shown], weights):  # judged on what is shown, as it stands now
            return []
        return [{
            "id": r.id, "content": r.content, "score": round(s.score, 4), "scope": r.scope,
            "agents": r.agents, "users": r.users, "importance": r.importance, "tags": r.tags,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at),
        } for s, r in shown]

    def _read_back(self, ranked: list[ranking.Scored], vis: Visibility, limit: int) -> list[tuple[ranking.Scored, MemoryRecord]]:
        """The first ``limit`` of ``ranked`` as they stand now (``_current``), still visible.

        The indexes rank; ``_current`` says what is shown, read a few ids at a time (on a
        Chroma server a fetch by id costs about its length): a memory forgotten by a replica
        since the last refresh is passed over, and fields a merge changed are current.
        """
        out: list[tuple[ranking.Scored, MemoryRecord]] = []
        start = 0
        while len(out) < limit and start < len(ranked):
            batch = ranked[start : start + 2 * (limit - len(out))]
            start += len(batch)
            found = self._current([s.id for s in batch], vis.matches)
            out += [(s, found[s.id]) for s in batch if s.id in found]
        return out[:limit]

    def candidates(self, query: str, vis: Visibility, pool: int) -> tuple[dict[str, MemoryRecord], dict[str, float], dict[str, float]]:
        """The visible records a query could return, with cosine for each and BM25 for some.

        The dense top ``pool`` comes from the vector index, the lexical top ``pool`` from the
        BM25 index, both refreshed from the collection first and both filtered by the same
        visibility mask; one matrix product gives every candidate its cosine. The records
        are the indexes' copies: what ``recall`` returns it reads again (``_read_back``).
        """
        vector = self._embed_one(query)
        self._fresh_indexes()
        scores = self.vectors.score(vector)
        visible = Where.visible(vis)
        dense = {h.id: h.cosine for h in scores.top(visible, pool)}
        # Restatements are searched on behalf of the memory they were folded into, in a pool of
        # their own, so that a memory restated sixty times cannot crowd out the others.
        restated: dict[str, float] = {}  # memory id -> best cosine of its restatements
        if self.lexical.restatements:
            for h in scores.top(Where.visible(dataclasses.replace(vis, statuses=(MERGED,))), RESTATEMENT_POOL):
                parent = str(h.meta.get("merged_into") or "")
                restated[parent] = max(restated.get(parent, -1.0), h.cosine)
        searched = dataclasses.replace(vis, statuses=(ACTIVE, MERGED)) if self.lexical.restatements else vis
        lexical: dict[str, float] = {}
        for doc_id, coverage in self.lexical.search(query, scores.admits_all(Where.visible(searched)), pool + len(self.lexical.restatements)):
            meta = self.lexical.meta(doc_id)
            target = str(meta.get("merged_into") or doc_id) if meta.get("status") == MERGED else doc_id
            lexical[target] = max(lexical.get(target, 0.0), coverage)
        lexical = dict(sorted(lexical.items(), key=lambda kv: kv[1], reverse=True)[:pool])
        others = list(dict.fromkeys([*lexical, *restated]))
        admitted = dict(zip(others, scores.admits_all(visible)(others)))
        for doc_id in others:
            cosine = dense[doc_id] if doc_id in dense else scores.cosine(doc_id) if admitted[doc_id] else None
            if cosine is not None:
                dense[doc_id] = max(cosine, restated.get(doc_id, -1.0))
        records = {i: r for i in dense if (r := self.lexical.record(i)) is not None}
        dense = {i: c for i, c in dense.items() if i in records}
        lexical = {i: s for i, s in lexical.items() if i in dense}
        return records, dense, lexical

    def get(self, ctx: Context, memory_id: Any) -> dict[str, Any]:
        """A memory the caller may see, by id, with its full provenance and history fields.

        ``restatements`` lists what was merged into it (each one can be ``unmerge``d).
        """
        record = self._one(memory_id, ctx.can_read)
        out = record.to_dict()
        out["restatements"] = [
            {"id": r.id, "content": r.content, "agents": r.agents, "users": r.users, "created_at": iso(r.created_at)}
            for r in self.restatements(record.id)
        ]
        return out

    def context(self, ctx: Context, limit: Any = None) -> list[dict[str, Any]]:
        """The visible memories that matter most when there is no query yet (a session start).

        Ordered by ``ranking.priority``: importance first, then how often the fact was
        asserted and how recently; turn memories are left out (they belong to one prompt).
        """
        limit = check_limit(limit, 20, 200)
        where = chroma.visible(self.visibility(ctx))
        records = [r for r in self.db.records_where(where) if r.scope != "turn"] if where else []
        t = now()
        records.sort(key=lambda r: ranking.priority(r.importance, r.seen_count, r.age_days(t)), reverse=True)
        return [r.to_dict() for r in records[:limit]]

    def stats(self, ctx: Context) -> dict[str, Any]:
        """Active memory totals for the caller's user: by scope, agent and project."""
        by_scope: dict[str, int] = {}
        by_agent: dict[str, int] = {}
        by_project: dict[str, int] = {}
        total = retired = 0
        for r in self.db.records_where(chroma.equal({"user_id": ctx.user_id})):
            if r.status == MERGED:  # history of another memory, counted there
                continue
            if r.status != ACTIVE:
                retired += 1
                continue
            total += 1
            by_scope[r.scope] = by_scope.get(r.scope, 0) + 1
            for a in r.agents or ["unknown"]:
                by_agent[a] = by_agent.get(a, 0) + 1
            if r.project:
                by_project[r.project] = by_project.get(r.project, 0) + 1
        return {"user_id": ctx.user_id, "total": total, "retired": retired, "by_scope": by_scope, "by_agent": by_agent, "by_project": by_project}

    def list(self, ctx: Context, scope: Any = None, tags: Any = None, agent: Any = None, limit: Any = None,
             forgotten: Any = False, everywhere: Any = False, merged: Any = False) -> list[dict[str, Any]]:
        """Visible memories, most recently updated first.

        Defined last in the class on purpose: the verb is called ``list`` everywhere (MCP
        tool, CLI, API), and in a class body a method of that name hides the builtin from
        every annotation written below it (method bodies still see the builtin). Nothing
        follows it here, and the classes built on this one do not see the name in their bodies.

        ``forgotten``: the caller's forgotten memories instead, each with ``restorable_until``
        (after it ``purge`` deletes them), so that ``restore`` can be given their ids.
        ``merged``: the restatements folded into memories instead (each names its
        ``merged_into``). ``everywhere``: every memory the caller may read by id, in any
        project its grant covers and any of its sessions, not only those visible here (what
        a memory browser lists; ``Visibility.reachable``).
        """
        limit = check_limit(limit, 1_000_000, 1_000_000)
        for name, flag in (("forgotten", forgotten), ("everywhere", everywhere), ("merged", merged)):
            if not isinstance(flag, bool):
                raise InvalidInput(f"{name} must be true or false, got {flag!r}")
        if forgotten and merged:
            raise InvalidInput("give forgotten or merged, not both")
        vis = self.visibility(ctx, scope, tags, agent)
        if forgotten:  # what the caller could restore, so a writer's business only
            ctx.require_write()
        vis = dataclasses.replace(vis, statuses=(FORGOTTEN if forgotten else MERGED if merged else ACTIVE,))
        where = chroma.reachable(vis) if everywhere else chroma.visible(vis)
        records = list(self.db.records_where(where)) if where else []
        if everywhere:
            records = [r for r in records if vis.reaches(r.to_metadata())]
        if forgotten:
            records = [r for r in records if ctx.can_change(r.to_metadata())]
        records.sort(key=lambda r: r.updated_at, reverse=True)
        out = [r.to_dict() for r in records[:limit]]
        if forgotten:
            for item, r in zip(out, records):
                item["restorable_until"] = iso(r.updated_at + self.forget_retention)
        return out
