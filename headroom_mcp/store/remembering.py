"""The write path: remember a fact, merge a restatement into the memory it restates, undo a merge, update.

A fact said again (``dedup.judge``: the same fact) is not stored twice: it is folded into
the memory it restates (``_fold``, the one merge of a record, also used by import and
restore), and the nearest memories are weighed by one loop (``_near``) wherever a fact
meets the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from ..errors import InvalidInput
from . import secrets
from .dedup import Facts, judge
from .engine import StoreEngine
from .records import (
    ACTIVE,
    DEFAULT_IMPORTANCE,
    MERGED,
    SUPERSEDED,
    MemoryRecord,
    appended_once,
    check_importance,
    check_scope,
    check_tags,
    content_hash,
    new_id,
    now,
)
from .scopes import SCOPE_KEYS, Context, owner_clause
from .staging import in_domain
from .vectors import Where

#: Candidates checked for a duplicate on every remember.
DEDUP_CANDIDATES = 8


class RememberResult(TypedDict, total=False):
    id: str
    status: str
    scope: str
    agents: list[str]
    duplicate_of: str
    restatement: str
    similar: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    redacted: list[str]


@dataclass
class Near:
    """What the nearest memories in a fact's scope domain make of it: the first that is the
    same fact (``twin``), else those it is similar to or in conflict with."""

    twin: MemoryRecord | None = None
    similar: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def _domain(scope: str, user_id: str, keys: dict[str, str]) -> dict[str, Any]:
    """Where a new fact's twin can be: active, same scope and keys, and the same owner."""
    return {"status": ACTIVE, "scope": scope, **keys, **owner_clause(scope, user_id)}


def _said(ctx: Context, content: str, scope: str, t: float, importance: float, tags: list[str],
          **fields: Any) -> MemoryRecord:
    """A record of ``content`` as said by ``ctx`` at ``t``: its user and agent are its provenance."""
    return MemoryRecord(
        id=new_id(), content=content, scope=scope, user_id=ctx.user_id, users=[ctx.user_id],
        agents=appended_once([], ctx.agent_id), created_by=ctx.agent_id, created_at=t, updated_at=t,
        importance=importance, tags=tags, **fields,
    )


def join_sources(into: MemoryRecord, other: MemoryRecord) -> None:
    """Give ``into`` the agents and users of ``other`` too, each named once, in order of arrival."""
    into.agents = appended_once(into.agents + other.agents, "")
    into.users = appended_once(into.users + other.users, "")


class Remembering(StoreEngine):
    """``remember``, ``unmerge``, ``update`` and the merge of a restatement they rest on."""

    def remember(
        self,
        ctx: Context,
        content: Any,
        scope: Any = None,
        importance: Any = None,
        tags: Any = None,
        supersedes: Any = None,
    ) -> RememberResult:
        """Store a fact, merge it into the same existing fact, or replace ``supersedes``.

        Everything is validated before anything is written, and credentials in ``content``
        are redacted (the result lists their kinds in ``redacted``) or refused.
        """
        ctx.require_write()
        content, redacted = self._screened(content)
        scope = check_scope(scope) or ctx.default_scope()
        importance = check_importance(importance)
        tags = secrets.screen_tags(check_tags(tags))
        keys = ctx.keys_for(scope)
        old = self._one(supersedes, ctx.can_change) if supersedes is not None else None
        if old is not None and old.status != ACTIVE:
            raise InvalidInput(f"memory {old.id} is already {old.status}")

        vector = self._embed_one(content)
        near = self._near(content, vector, _domain(scope, ctx.user_id, keys)) if old is None else Near()
        if near.twin is not None:
            result = self._merge(ctx, near.twin, content, vector, importance, tags)
        else:
            result = self._create(ctx, content, scope, keys, vector, importance, tags, old, near)
        if redacted:
            result["redacted"] = redacted
        return result

    def _create(self, ctx: Context, content: str, scope: str, keys: dict[str, str], vector: np.ndarray,
                importance: float | None, tags: list[str], old: MemoryRecord | None, near: Near) -> RememberResult:
        """Store ``content`` as a new memory, replacing ``old`` when given."""
        t = now()
        if scope != "user":  # where it was said, so the project's admins can manage it
            keys = {"project": ctx.project, **keys}
        record = _said(
            ctx, content, scope, t, DEFAULT_IMPORTANCE if importance is None else importance, tags,
            supersedes=old.id if old else "", expires_at=t + self.turn_ttl if scope == "turn" else 0.0,
            conflicts=[c["id"] for c in near.conflicts[:5]], **keys,
        )
        self._write([record], [vector])
        if old is not None:
            # Retired after the new fact is stored: a crash in between loses nothing.
            old.status, old.superseded_by, old.updated_at = SUPERSEDED, record.id, t
            self._write([old])
        result: RememberResult = {"id": record.id, "status": "superseded" if old else "created", "scope": scope, "agents": record.agents}
        if old is not None:
            result["supersedes"] = old.id  # type: ignore[typeddict-unknown-key]
        if near.similar:
            result["similar"] = near.similar[:5]
        if near.conflicts:
            result["conflicts"] = near.conflicts[:5]
        return result

    def _near(self, content: str, vector: np.ndarray, domain: dict[str, Any]) -> Near:
        """Weigh ``content`` against its nearest memories in ``domain`` (``dedup.judge``), nearest
        first, up to the first that is the same fact."""
        facts = Facts.of(content)
        near = Near()
        for record, cosine in self._neighbours(vector, domain, content):
            verdict = judge(facts, Facts.of(record.content), cosine)
            if verdict.merge:
                return Near(twin=record)
            entry = {"id": record.id, "content": record.content, "score": round(cosine, 4)}
            if verdict.conflict:
                near.conflicts.append(entry)
            elif verdict.similar:
                near.similar.append(entry)
        return near

    def _same_fact(self, record: MemoryRecord, vector: np.ndarray) -> MemoryRecord | None:
        """The active memory ``record`` restates in its own scope domain, if any."""
        keys = {k: getattr(record, k) for k in SCOPE_KEYS[record.scope]}
        return self._near(record.content, vector, _domain(record.scope, record.user_id, keys)).twin

    def _neighbours(self, vector: np.ndarray, domain: dict[str, Any], content: str) -> list[tuple[MemoryRecord, float]]:
        """The nearest active memories in the same scope domain, with their cosine.

        Ranked by the vector index, as they stand now (``_current``); inside ``one_commit``
        the writes staged so far count too.
        """
        self._fresh_indexes()  # another replica may have said it since
        where = Where.equal(domain)
        hits = self.vectors.score(vector).top(where, DEDUP_CANDIDATES)
        out: list[tuple[MemoryRecord, float]] = []
        if hits:
            records = self._current([h.id for h in hits], lambda meta: in_domain(meta, domain))
            # The same text after normalisation is the same fact whatever the cosine says.
            same = content_hash(content)
            out = [(records[h.id], 1.0 if h.meta.get("hash") == same else h.cosine) for h in hits if h.id in records]
        return self._staged.neighbours(out, vector, domain, content, DEDUP_CANDIDATES) if self._staged else out

    def _merge(self, ctx: Context, record: MemoryRecord, content: str, vector: np.ndarray,
               importance: float | None, tags: list[str]) -> RememberResult:
        """Fold what ``ctx`` just said, a restatement of ``record``, into it, keeping its text as history.

        The same words from an agent and user already on the record add nothing to keep, so
        they only count; anything else becomes a restatement record (text, agent, user, time)
        that recall searches on the memory's behalf and ``unmerge`` can restore.
        """
        restatement = _said(
            ctx, content, record.scope, now(), record.importance if importance is None else importance, tags,
            **{k: getattr(record, k) for k in ("project", "session_id", "agent_id", "turn_id")},
        )
        known = content_hash(content) == content_hash(record.content) and ctx.agent_id in record.agents and ctx.user_id in record.users
        self._fold(record, restatement, None if known else vector)
        result: RememberResult = {"id": record.id, "status": "merged", "scope": record.scope, "agents": record.agents, "duplicate_of": record.id}
        if not known:
            result["restatement"] = restatement.id
        return result

    def _fold(self, twin: MemoryRecord, restatement: MemoryRecord, vector: Any | None) -> None:
        """Merge ``restatement`` into ``twin``: provenance, counts, tags; store it as history.

        With ``vector`` None the restatement is only counted, not kept (nothing new in it).
        """
        # What this restatement brings to the memory, so that unmerge takes back only that.
        restatement.extra["added_agents"] = [a for a in restatement.agents if a and a not in twin.agents] or ["-"]
        restatement.extra["added_users"] = [u for u in restatement.users if u and u not in twin.users] or ["-"]
        join_sources(twin, restatement)
        twin.seen_count += restatement.seen_count
        twin.importance = max(twin.importance, restatement.importance)
        twin.tags = list(dict.fromkeys(twin.tags + restatement.tags))
        twin.updated_at = max(twin.updated_at, restatement.updated_at)
        if twin.scope == "turn":
            twin.expires_at = now() + self.turn_ttl
        if vector is not None:
            # History first: a crash in between leaves a restatement, never a lost text. It
            # lives as long as the memory it belongs to (a turn memory expires).
            restatement.status, restatement.merged_into, restatement.expires_at = MERGED, twin.id, twin.expires_at
            self._write([restatement], [vector])
        self._write([twin])

    def unmerge(self, ctx: Context, id: Any) -> dict[str, Any]:
        """Undo a merge: the restatement ``id`` becomes a memory of its own again.

        The memory it was folded into loses the count, and the agents and users that only
        this restatement brought. Everything is checked before anything is written.
        """
        ctx.require_write()
        restatement = self._one(id, ctx.can_change)
        if restatement.status != MERGED:
            raise InvalidInput(f"memory {restatement.id} is {restatement.status}, not a merged restatement; "
                               "unmerge takes the id of a restatement (see the memory's restatements)")
        parent = self._records([restatement.merged_into], ctx.can_change).get(restatement.merged_into)
        t = now()
        added_agents = set(restatement.extra.get("added_agents") or ()) - {"-"}
        added_users = set(restatement.extra.get("added_users") or ()) - {"-"}
        restatement.extra.update(added_agents=None, added_users=None)  # None deletes the keys
        restatement.status, restatement.merged_into, restatement.updated_at = ACTIVE, "", t
        restatement.expires_at = t + self.turn_ttl if restatement.scope == "turn" else 0.0
        self._write([restatement])
        if parent is not None:
            others = [r for r in self.restatements(parent.id) if r.id != restatement.id]
            still = {a for r in others for a in r.extra.get("added_agents", ())}
            parent.agents = [a for a in parent.agents if a not in added_agents or a in still]
            still = {u for r in others for u in r.extra.get("added_users", ())}
            parent.users = [u for u in parent.users if u not in added_users or u in still]
            parent.seen_count = max(1, parent.seen_count - restatement.seen_count)
            parent.updated_at = t
            self._write([parent])
        return {"id": restatement.id, "status": "unmerged", "unmerged_from": parent.id if parent else restatement.id}

    def update(self, ctx: Context, id: Any, importance: Any = None, tags: Any = None) -> dict[str, Any]:
        """Change an active memory's importance or tags (or both) in place; its text, id and history stay.

        ``tags`` replaces the memory's tags (``[]`` clears them). They are checked and screened
        for credentials as ``remember``'s are: tags are shown in every agent's context and
        exported. Everything is checked before anything is written, so a refused update
        changes nothing.
        """
        ctx.require_write()
        if importance is None and tags is None:
            raise InvalidInput("give importance, tags or both; nothing was changed")
        importance = check_importance(importance)
        tags = secrets.screen_tags(check_tags(tags), outcome="nothing was changed") if tags is not None else None
        record = self._one(id, ctx.can_change)
        if record.status != ACTIVE:
            newer = f" by {record.superseded_by}" if record.superseded_by else ""
            raise InvalidInput(f"memory {record.id} is {record.status}{newer}, not active; nothing was changed")
        if importance is not None:
            record.importance = importance
        if tags is not None:
            record.tags = tags
        record.updated_at = now()
        self._write([record])
        return {"id": record.id, "status": "updated", "importance": record.importance, "tags": record.tags}
