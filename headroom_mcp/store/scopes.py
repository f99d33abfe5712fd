"""Who is asking (``Context``) and what they may see (``Visibility``).

Broader scopes are visible to narrower ones: a recall made as (user U, project P, session S,
agent A, turn T) sees U's ``user`` memories, ``project`` memories of P, ``session``
memories of S, ``agent`` memories of (S, A) and ``turn`` memories of T. The same rules
produce both the Chroma ``where`` filter (so ranking only ever sees visible memories) and
an in-process predicate for the lexical index; tests check that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Mapping

from ..errors import InvalidInput
from .records import ACTIVE, SCOPES

#: For each scope, the context fields a memory of that scope is keyed by.
SCOPE_KEYS: dict[str, tuple[str, ...]] = {
    "user": (),
    "project": ("project",),
    "session": ("session_id",),
    "agent": ("session_id", "agent_id"),
    "turn": ("turn_id",),
}


@dataclass(frozen=True)
class Context:
    """The identity a request is made as. Empty strings mean "not known"."""

    user_id: str
    project: str = ""
    session_id: str = ""
    agent_id: str = ""
    turn_id: str = ""

    def __post_init__(self) -> None:
        if not self.user_id:
            raise InvalidInput("a user id is required")

    def with_(self, **changes: str) -> "Context":
        return replace(self, **changes)

    def default_scope(self) -> str:
        return "project" if self.project else "user"

    def keys_for(self, scope: str) -> dict[str, str]:
        """The scope keys a new memory of ``scope`` gets; error when the context lacks one."""
        keys = {}
        for name in SCOPE_KEYS[scope]:
            value = getattr(self, name)
            if not value:
                raise InvalidInput(f"scope {scope!r} needs a {name.replace('_', ' ')}, and none is known here")
            keys[name] = value
        return keys

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Context":
        return cls(**{k: str(data.get(k) or "") for k in ("user_id", "project", "session_id", "agent_id", "turn_id")})

    def to_mapping(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("user_id", "project", "session_id", "agent_id", "turn_id")}


def _eq_all(pairs: Mapping[str, Any]) -> dict[str, Any]:
    clauses = [{k: v} for k, v in pairs.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class Visibility:
    """The memories a context may read, optionally narrowed to scopes, tags and an agent."""

    context: Context
    scopes: tuple[str, ...] = SCOPES
    tags: tuple[str, ...] = ()
    agent: str = ""
    now: float = 0.0

    def scope_clauses(self) -> list[dict[str, Any]]:
        """One equality clause set per visible scope (scopes whose keys are unknown drop out)."""
        clauses = []
        for scope in self.scopes:
            pairs: dict[str, Any] = {"scope": scope}
            try:
                pairs.update(self.context.keys_for(scope))
            except InvalidInput:
                continue
            clauses.append(pairs)
        return clauses

    @cached_property
    def _clause_items(self) -> tuple[tuple[tuple[str, Any], ...], ...]:
        """``scope_clauses`` computed once: ``matches`` runs for every lexical candidate."""
        return tuple(tuple(c.items()) for c in self.scope_clauses())

    def where(self) -> dict[str, Any] | None:
        """The Chroma filter, or None when nothing at all is visible."""
        scope_clauses = [_eq_all(c) for c in self.scope_clauses()]
        if not scope_clauses:
            return None
        parts: list[dict[str, Any]] = [{"user_id": self.context.user_id}, {"status": ACTIVE}]
        parts.append(scope_clauses[0] if len(scope_clauses) == 1 else {"$or": scope_clauses})
        if self.tags:
            tag_clauses = [{"tags": {"$contains": t}} for t in self.tags]
            parts.append(tag_clauses[0] if len(tag_clauses) == 1 else {"$or": tag_clauses})
        if self.agent:
            parts.append({"agents": {"$contains": self.agent}})
        if "turn" in self.scopes and self.context.turn_id:
            # Turn memories expire; everything else carries expires_at 0 (absent → excluded by
            # $gt), so the expiry test applies to turn memories only.
            parts.append({"$or": [{"scope": {"$ne": "turn"}}, {"expires_at": {"$gt": self.now}}]})
        return {"$and": parts}

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """The same rule as ``where`` applied to one record's metadata."""
        if meta.get("user_id") != self.context.user_id or meta.get("status", ACTIVE) != ACTIVE:
            return False
        if not any(all(meta.get(k) == v for k, v in c) for c in self._clause_items):
            return False
        if self.tags and not set(self.tags) & set(meta.get("tags") or ()):
            return False
        if self.agent and self.agent not in (meta.get("agents") or ()):
            return False
        if meta.get("scope") == "turn" and not float(meta.get("expires_at") or 0) > self.now:
            return False
        return True
