"""The agent clients headroom-mcp registers with, one ``ClientSpec`` each (see ``agents.spec``).

``CLIENTS`` maps each client's name to its spec, in the order ``install all`` and ``doctor``
take them. Adding an agent: write its module (a ``SPEC`` with its files, entry builders,
hook events and doctor checks) and list it here; nothing else changes.
"""

from __future__ import annotations

from . import claude, codex, gemini
from .spec import ClientSpec, ConfigFile

CLIENTS: dict[str, ClientSpec] = {spec.name: spec for spec in (claude.SPEC, codex.SPEC, gemini.SPEC)}


def hook_event(agent: str | None, kind: str) -> str:
    """The event an agent's hook of ``kind`` fires on (Claude Code's names for an agent we do not know;
    a kind the client has no event for is taken for a prompt hook)."""
    events = {**dict(claude.SPEC.hook_events), **(dict(CLIENTS[agent].hook_events) if agent in CLIENTS else {})}
    return events.get(kind, events["prompt"])


__all__ = ["CLIENTS", "ClientSpec", "ConfigFile", "hook_event"]
