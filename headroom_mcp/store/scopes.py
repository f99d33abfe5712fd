"""Who is asking (``Context``), what they may see (``Visibility``) and change.

Broader scopes are visible to narrower ones: a recall made as (user U, project P, session S,
agent A, turn T) sees U's ``user`` memories, the ``project`` memories of P (whoever on the
team wrote them: a project's memories are shared by everyone on it), and U's ``session``
memories of S, ``agent`` memories of (S, A) and ``turn`` memories of T. The same rules
produce both the Chroma ``where`` filter (``chroma.visible``, so ranking only ever sees visible
memories) and the in-process predicate of the indexes (``matches``); tests check that the two agree.

What a context may touch by id (``can_read``, ``can_change``) follows the team-mode
grant it carries: a role (read, write, admin) and the projects it may touch (``*`` for all,
which is what a local, single-user context holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

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

    def with_(self, **changes: Any) -> Context:
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
    def from_mapping(cls, data: Mapping[str, Any]) -> Context:
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

    def reaches(self, meta: Mapping[str, Any]) -> bool:
        """The rule of ``chroma.reachable`` applied to one record's metadata, the grant included."""
        return (meta.get("status", ACTIVE) in self.statuses and meta.get("scope") in self.scopes
                and self.context.can_read(meta) and self._narrowed(meta))

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """The same rule as ``chroma.visible`` applied to one record's metadata."""
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
