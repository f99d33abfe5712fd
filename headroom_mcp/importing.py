"""What ``import`` makes of one record: an ``export`` line, or as little as a ``content``.

A user's own JSONL rarely carries ids, scope keys or timestamps, so what a record leaves
out is filled in as ``remember`` would fill it (a new id, the caller's default scope and
its keys, the caller as author, now), never with the dataclass's zeros (a 1970 date).
Shared by the service (so ``Memory.import_records`` takes the same records) and the CLI,
which checks a file line by line before sending anything, so an error names its line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput
from .store.records import MemoryRecord, check_scope, new_id, now, parse_iso
from .store.scopes import SCOPE_KEYS, Context

TIMES = ("created_at", "updated_at", "expires_at")


def _time(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]`` as epoch seconds (it may be ISO-8601 text or a number); None when absent."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except InvalidInput:
            pass
    elif not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    raise InvalidInput(f"{key} must be an ISO-8601 time (2025-01-31T12:00:00Z) or epoch seconds, got {str(value)[:40]!r}")


def _scope_keys(data: Mapping[str, Any], scope: str, ctx: Context) -> dict[str, str]:
    """The scope keys the record lacks, taken from the caller as ``remember`` takes them
    (a project memory is where it was said; so is any narrower one, when a project is known)."""
    keys: dict[str, str] = {}
    if any(not data.get(name) for name in SCOPE_KEYS[scope]):
        keys = {k: v for k, v in ctx.keys_for(scope).items() if not data.get(k)}
    if scope != "user" and ctx.project and not data.get("project"):
        keys["project"] = ctx.project
    return keys


#: Scope keys that only a live session or turn has: the caller's are worth nothing to a record
#: unless the caller chose them (a command line's session is new with each call).
_LIVE_KEYS = ("session_id", "turn_id")


def record_from(data: Any, ctx: Context, session_named: bool = True) -> MemoryRecord:
    """One import record, owned by the caller, with what it leaves out filled in; validated
    (``InvalidInput`` names the field). ``session_named``: the caller's session is one a user
    named, so a session, agent or turn record may take it; when False, such a record must
    carry its own, or it would be a memory no later call could see."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a record must be a JSON object")
    if "content" not in data:
        raise InvalidInput("a record needs a content (the fact, as text)")
    scope = data.get("scope") or ctx.default_scope()
    check_scope(scope, allow_none=False)
    missing = [key for key in _LIVE_KEYS if key in SCOPE_KEYS[scope] and not data.get(key)]
    if missing and not (session_named and all(getattr(ctx, key) for key in missing)):
        raise InvalidInput(f"a {scope} memory needs its {missing[0]}, or no later call could see it: give "
                           f"{missing[0]} in the record (as export writes it), name the session (--session), "
                           "or use scope project or user")
    filled = {**data, "user_id": ctx.user_id, "scope": scope, "id": data.get("id") or new_id(),
              **_scope_keys(data, scope, ctx)}
    times = {key: _time(data, key) for key in TIMES}
    filled["created_at"] = times["created_at"] or now()
    filled["updated_at"] = times["updated_at"] or filled["created_at"]
    filled["expires_at"] = times["expires_at"] or 0.0
    agents = data.get("agents") or [ctx.agent_id]
    filled["agents"] = agents
    if not data.get("created_by") and isinstance(agents, list) and agents:
        filled["created_by"] = agents[0]
    return MemoryRecord.from_dict(filled)
