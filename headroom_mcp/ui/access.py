"""Who a memory browser request is: the two ways the browser's API authenticates.

The page's script sends a token in an ``Authorization: Bearer`` header on every API call,
never in a cookie: a browser attaches cookies to requests that other sites make, headers
only to the page's own, so there is no cross-site request forgery to defend against.

- ``LocalAccess`` (``headroom-mcp ui``): one random token made when the server starts and
  shown only in the URL it prints (as Jupyter does), compared in constant time. The caller
  is the local user of the settings, with every right, as on the command line.
- ``TeamAccess`` (``serve --transport http``, at ``/ui``): team mode's bearer tokens, already
  checked by ``auth.Gate`` in front of every route (401, 403, rate limits); the caller is the
  token's user, role and projects (``auth.identity_of``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth import Identity, bearer, identity_of
from ..config import Settings
from ..errors import Forbidden
from ..store.scopes import ALL_PROJECTS, Context, covers
from ..tokens import Grant

#: The agent a browser's writes are recorded as, unless the settings name one.
UI_AGENT = "ui"


class Refused(Exception):
    """An API request refused before it reached the store: an HTTP status and a sentence."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True)
class Caller:
    """Who an API request acts as, and what it may do: an ``auth.Identity`` (the token's grant,
    the project it works in unless it names one, its session) and the agent writes are made as."""

    identity: Identity
    agent_id: str
    #: "local" (``headroom-mcp ui``) or "team" (a team server's /ui).
    mode: str

    @property
    def user_id(self) -> str:
        return self.identity.grant.user_id

    @property
    def role(self) -> str:
        return self.identity.grant.role

    @property
    def projects(self) -> tuple[str, ...]:
        return self.identity.grant.projects

    @property
    def project(self) -> str:
        return self.identity.project

    @property
    def session_id(self) -> str:
        return self.identity.session

    @property
    def can_write(self) -> bool:
        return self.role != "read"

    def require_write(self) -> None:
        """Refuse a change from a read-only token before the store is asked (it would refuse too)."""
        if not self.can_write:
            raise Forbidden(f"user {self.user_id!r} has a read-only token: it can look, not change; nothing was changed")

    def context(self, project: str | None = None, **keys: str) -> dict[str, Any]:
        """The store context of a call in ``project`` (default: the caller's) with scope keys
        (``session_id``, ``agent_id``, ``turn_id``) where given; a project the grant does not
        cover is refused, since the store takes the context's project as given."""
        project = self.project if project is None else project
        if project and not covers(self.projects, project):
            raise Forbidden(f"the token of user {self.user_id!r} does not cover project {project!r}")
        fields = {"session_id": self.session_id, "agent_id": self.agent_id, **{k: v for k, v in keys.items() if v}}
        return Context(self.user_id, project, role=self.role, projects=self.projects, **fields).to_mapping()

    def public(self) -> dict[str, Any]:
        """What the page shows of the caller (and uses to hide what it may not do)."""
        return {"user_id": self.user_id, "role": self.role, "projects": list(self.projects), "project": self.project,
                "mode": self.mode, "can_write": self.can_write, "agent_id": self.agent_id}


class Access(Protocol):
    """How a request is authenticated: the parameter that differs between ``ui`` and the team server."""

    mode: str

    def caller(self, request: Any) -> Caller:
        """The request's caller, or ``Refused`` (401) for a missing or wrong token."""
        ...


def _local_caller(settings: Settings, mode: str) -> Caller:
    """The settings' user with every right, as on the command line."""
    grant = Grant(id="local", user_id=settings.user_id, projects=(ALL_PROJECTS,), role="admin")
    return Caller(Identity(grant, settings.project, settings.session_id), settings.agent_id or UI_AGENT, mode)


class LocalAccess:
    """``headroom-mcp ui``: the one token in the printed URL."""

    mode = "local"

    def __init__(self, settings: Settings, token: str):
        self.settings = settings
        self._token = token.encode()

    def caller(self, request: Any) -> Caller:
        presented = bearer(request.headers.get("authorization", "")).encode()
        if not presented or not hmac.compare_digest(presented, self._token):
            raise Refused(401, "invalid_token", "this page needs the token from the URL that headroom-mcp ui printed "
                                                "(open that URL again, or paste the token)")
        return _local_caller(self.settings, self.mode)


class TeamAccess:
    """A team server's ``/ui``: the caller is the bearer token ``auth.Gate`` verified."""

    mode = "team"

    def __init__(self, settings: Settings, team: bool):
        """``team`` False: the server runs without tokens (loopback, ``--no-auth --trust-local-users``),
        and every request is the settings' user, as its MCP tools are."""
        self.settings = settings
        self.team = team

    def caller(self, request: Any) -> Caller:
        identity = identity_of(request)
        if identity is None:
            if self.team:  # fail closed: the gate attaches an identity to every request it lets through
                raise Refused(401, "invalid_token", "a valid bearer token is required (Authorization: Bearer hmcp_...)")
            return _local_caller(self.settings, self.mode)
        return Caller(identity, self.settings.agent_id or UI_AGENT, self.mode)
