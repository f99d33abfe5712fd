"""Who is asking (``Context``), what they may see (``Visibility``) and change.

Broader scopes are visible to narrower ones: a recall made as (user U, project P, session S,
agent A, turn T) sees U's ``user`` memories, the ``project`` memories of P (whoever on the
team wrote them: a project's memories are shared by everyone on it), and U's ``session``
memories of S, ``agent`` memories of (S, A) and ``turn`` memories of T. The same rules
produce both the Chroma ``where`` filter (so ranking only ever sees visible memories) and
an in-process predicate for the lexical index; tests check that the two agree.

What a context may touch by id (``can_read``, ``can_change``) follows the team-mode
grant it carries: a role (read, write, admin) and the projects it may touch (``*`` for all,
which is what a local, single-user context holds).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Mapping

from ..errors import Forbidden, InvalidInput
from .records import ACTIVE, SCOPES, check_name, check_project

ROLES = ("read", "write", "admin")
#: In ``Context.projects``: every project.
ALL_PROJECTS = "*"


def covers(projects: tuple[str, ...], project: str) -> bool:
    """Does a grant of ``projects`` (``*`` for all) cover ``project``?"""
    return ALL_PROJECTS in projects or project in projects


def owner_clause(scope: str, user_id: str) -> dict[str, str]:
    """The user a memory of ``scope`` belongs to, as filter pairs: none for ``project``,
    whose memories the whole team shares."""
    return {} if scope == "project" else {"user_id": user_id}

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
    #: What the caller may do: read, write, or admin (also change teammates' memories in its projects).
    role: str = "admin"
    #: The projects the caller may touch; ``("*",)`` for all.
    projects: tuple[str, ...] = (ALL_PROJECTS,)

    def __post_init__(self) -> None:
        if not self.user_id:
            raise InvalidInput("a user id is required")
        if self.role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")

    def may_touch(self, project: str) -> bool:
        """Is ``project`` one this caller's grant covers?"""
        return covers(self.projects, project)

    def can_read(self, meta: Mapping[str, Any]) -> bool:
        """May the caller see this record by id (whatever its status)?

        Project memories belong to the project; the rest only to their user.
        """
        if meta.get("scope") == "project":
            return self.may_touch(meta.get("project") or "")
        return meta.get("user_id") == self.user_id

    def can_change(self, meta: Mapping[str, Any]) -> bool:
        """May the caller forget or supersede this record (the role is checked apart)?

        What it can read, and for an admin also teammates' session, agent and turn
        memories made in its projects (to clean up), never their ``user`` memories.
        """
        project = meta.get("project") or ""
        admin_reach = self.role == "admin" and meta.get("scope") != "user" and bool(project) and self.may_touch(project)
        return self.can_read(meta) or admin_reach

    def require_write(self) -> None:
        """Raise ``Forbidden`` unless the caller may write."""
        if self.role == "read":
            raise Forbidden(f"user {self.user_id!r} has read-only access; remembering and forgetting need a write token")

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
        fields: dict[str, Any] = {k: str(data.get(k) or "") for k in IDENTITY}
        for key, value in fields.items():  # stored as provenance: the same shape an import must have
            if value and key == "project":
                check_project(value)
            elif value:
                check_name(value, key)
        fields["role"] = str(data.get("role") or "admin")
        projects = data.get("projects")
        if projects is not None:
            if isinstance(projects, str) or not isinstance(projects, (list, tuple)):
                raise InvalidInput("projects must be a list of project ids")
            fields["projects"] = tuple(str(p) for p in projects)
        return cls(**fields)

    def to_mapping(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in IDENTITY}, "role": self.role, "projects": list(self.projects)}


#: Who a call is made as: every one of these is stored as provenance.
IDENTITY = ("user_id", "project", "session_id", "agent_id", "turn_id")


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
    #: The record statuses to match: active memories, or (for recall, which searches them on
    #: behalf of the memory they were folded into) restatements too.
    statuses: tuple[str, ...] = (ACTIVE,)

    def scope_clauses(self) -> list[dict[str, Any]]:
        """One equality clause set per visible scope (scopes whose keys are unknown drop out).

        Every scope but ``project`` is the caller's own: its clause names the user.
        """
        clauses = []
        for scope in self.scopes:
            pairs: dict[str, Any] = {"scope": scope}
            try:
                pairs.update(self.context.keys_for(scope))
            except InvalidInput:
                continue
            if scope == "project" and not self.context.may_touch(pairs["project"]):
                continue
            pairs.update(owner_clause(scope, self.context.user_id))
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
        parts = [self._status_clause(), scope_clauses[0] if len(scope_clauses) == 1 else {"$or": scope_clauses}]
        parts += self._narrowing()
        if "turn" in self.scopes and self.context.turn_id:
            # Turn memories expire; everything else carries expires_at 0 (absent → excluded by
            # $gt), so the expiry test applies to turn memories only.
            parts.append({"$or": [{"scope": {"$ne": "turn"}}, {"expires_at": {"$gt": self.now}}]})
        return {"$and": parts}

    def _status_clause(self) -> dict[str, Any]:
        statuses = self.statuses
        return {"status": statuses[0]} if len(statuses) == 1 else {"status": {"$in": list(statuses)}}

    def _narrowing(self) -> list[dict[str, Any]]:
        """The tag and agent clauses of ``where`` and ``reachable``."""
        parts: list[dict[str, Any]] = []
        if self.tags:
            tag_clauses = [{"tags": {"$contains": t}} for t in self.tags]
            parts.append(tag_clauses[0] if len(tag_clauses) == 1 else {"$or": tag_clauses})
        if self.agent:
            parts.append({"agents": {"$contains": self.agent}})
        return parts

    def reachable(self) -> dict[str, Any]:
        """A Chroma filter for every memory the context may read by id (``Context.can_read``),
        not only those visible here: the caller's own in every project and session, and the
        project memories of every project. ``reaches`` then drops the projects its grant does
        not cover. A memory browser lists these: nothing in them is hidden from ``get``.
        """
        parts = [self._status_clause(), {"$or": [{"user_id": self.context.user_id}, {"scope": "project"}]}]
        if len(self.scopes) == 1:
            parts.append({"scope": self.scopes[0]})
        return {"$and": parts + self._narrowing()}

    def reaches(self, meta: Mapping[str, Any]) -> bool:
        """The rule of ``reachable`` applied to one record's metadata, the grant included."""
        return (meta.get("status", ACTIVE) in self.statuses and meta.get("scope") in self.scopes
                and self.context.can_read(meta) and self._narrowed(meta))

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """The same rule as ``where`` applied to one record's metadata."""
        if meta.get("status", ACTIVE) not in self.statuses:
            return False
        if not any(all(meta.get(k) == v for k, v in c) for c in self._clause_items):
            return False
        return self._narrowed(meta)

    def _narrowed(self, meta: Mapping[str, Any]) -> bool:
        """Tags, agent and a turn memory's expiry: what ``matches`` and ``reaches`` share."""
        if self.tags and not set(self.tags) & set(meta.get("tags") or ()):
            return False
        if self.agent and self.agent not in (meta.get("agents") or ()):
            return False
        if meta.get("scope") == "turn" and not float(meta.get("expires_at") or 0) > self.now:
            return False
        return True
