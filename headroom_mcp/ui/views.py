"""What the memory browser's API answers, computed from the store's own methods.

Every function runs one or a few ``methods.METHODS`` calls on the backend (the daemon over
its socket, or the team server's own store) as the request's ``Caller``, and shapes the
answer for the page: filters and sorts the store does not offer, the pages of one memory's
history, the hooks' context preview and the activity charts. Nothing here writes to the
store except through ``remember``, ``forget``, ``restore``, ``unmerge`` and ``update``, so the
store's checks (validation, secret screening, permissions) apply to the browser as they
do to agents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from .. import injection
from ..agents import CLIENTS, hook_event
from ..errors import HeadroomError, InvalidInput, NotFound
from ..hooks import hook_output, hook_text
from ..server import Backend
from ..store.records import SCOPES, parse_iso
from .access import Caller

#: Rows one page of the browser holds at most.
MAX_PAGE = 200
#: Every record a listing reads (the store's own ceiling).
EVERYTHING = 1_000_000
SORTS = {
    "recent": lambda m: (m["updated_at"] or "",),
    "importance": lambda m: (m["importance"], m["updated_at"] or ""),
    "seen": lambda m: (m["seen_count"], m["updated_at"] or ""),
    "created": lambda m: (m["created_at"] or "",),
}
#: Weeks the activity charts cover at most (the latest ones).
WEEKS = 26
#: Series a chart draws apart; the rest are summed as "other".
SERIES = 6


class Stale(HeadroomError):
    """The memory changed since the page showed it (superseded, forgotten): answered 409."""


def _param(params: Mapping[str, str], name: str, default: str = "") -> str:
    return str(params.get(name) or default).strip()


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = _param(params, name)
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:  # "²" is a digit to isdigit
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _day(params: Mapping[str, str], name: str) -> str:
    """An ISO date (YYYY-MM-DD) or ""; compared with the records' ISO timestamps as text."""
    text = _param(params, name)
    if text:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{name} must be a date as YYYY-MM-DD, got {text!r}") from None
    return text


def _facets(memories: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The values the filters offer, each with how many memories carry it."""
    out: dict[str, dict[str, int]] = {"project": {}, "scope": {}, "agent": {}, "tag": {}}
    for m in memories:
        for key, values in (("project", [m.get("project") or ""]), ("scope", [m["scope"]]),
                            ("agent", m.get("agents") or []), ("tag", m.get("tags") or [])):
            for value in values:
                out[key][value] = out[key].get(value, 0) + 1
    return {k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) for k, v in out.items()}


def _kept(m: Mapping[str, Any], params: Mapping[str, str], words: list[str], since: str, until: str) -> bool:
    """Does memory ``m`` pass the browser's filters (``project`` "-" means user-wide, no project)?"""
    project = _param(params, "project")
    if project and (m.get("project") or "-") != project:
        return False
    for key, field in (("scope", "scope"), ("agent", "agents"), ("tag", "tags")):
        wanted, values = _param(params, key), m.get(field) or []
        if wanted and wanted not in ([values] if isinstance(values, str) else values):
            return False
    created = m.get("created_at") or ""
    if (since and created[:10] < since) or (until and created[:10] > until):
        return False
    text = " ".join([m["content"], *m.get("tags", [])]).lower()
    return all(word in text for word in words)


def memories(backend: Backend, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """Every memory the caller may read, filtered, sorted and paged, with the filters' values."""
    everything = backend.call("list", {"everywhere": True, "limit": EVERYTHING}, caller.context())["memories"]
    sort = _param(params, "sort", "recent")
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    scope = _param(params, "scope")
    if scope and scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    words = _param(params, "text").lower().split()
    since, until = _day(params, "since"), _day(params, "until")
    kept = [m for m in everything if _kept(m, params, words, since, until)]
    kept.sort(key=SORTS[sort], reverse=True)
    offset, limit = _int(params, "offset", 0, 0, EVERYTHING), _int(params, "limit", 50, 1, MAX_PAGE)
    return {"memories": kept[offset:offset + limit], "total": len(kept), "offset": offset, "sort": sort,
            "facets": _facets(everything), "all": len(everything)}


def search(backend: Backend, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """The store's real ``recall`` (meaning and keywords, scored) in one project."""
    query = _param(params, "q")
    if not query:
        raise InvalidInput("type what to search for")
    project = _param(params, "project", caller.project)
    recall = {"query": query, "limit": _int(params, "limit", 20, 1, 100)}
    for key, name in (("scope", "scope"), ("agent", "agent"), ("tag", "tags")):
        if _param(params, key):
            recall[name] = [_param(params, key)] if name == "tags" else _param(params, key)
    context = caller.context(project="" if project == "-" else project)
    return {"results": backend.call("recall", recall, context)["results"], "project": project}


def _brief(backend: Backend, context: dict[str, Any], memory_id: str) -> dict[str, Any] | None:
    """Another memory as the history shows it (None when it is gone or not the caller's)."""
    if not memory_id:
        return None
    try:
        m = backend.call("get", {"memory_id": memory_id}, context)
    except NotFound:
        return None
    return {k: m.get(k) for k in ("id", "content", "status", "scope", "agents", "updated_at")}


def memory(backend: Backend, caller: Caller, memory_id: str) -> dict[str, Any]:
    """One memory with its history: what it replaced and what replaced it, the restatements
    merged into it, the memories it conflicts with, and similar ones (a live ``recall``)."""
    context = caller.context()
    m = backend.call("get", {"memory_id": memory_id}, context)
    history = {key: _brief(backend, context, m.get(key) or "") for key in ("supersedes", "superseded_by", "merged_into")}
    conflicts = [b for b in (_brief(backend, context, i) for i in m.get("conflicts") or []) if b]
    similar: list[dict[str, Any]] = []
    if m["status"] == "active":
        try:
            near = caller.context(project=m.get("project") or caller.project)
        except HeadroomError:
            near = context
        found = backend.call("recall", {"query": m["content"][:2000], "limit": 6}, near)["results"]
        similar = [{k: r[k] for k in ("id", "content", "score", "scope", "agents")} for r in found if r["id"] != m["id"]][:5]
    return {"memory": m, "history": history, "conflicts": conflicts, "similar": similar}


def _writable(backend: Backend, caller: Caller, memory_id: str) -> dict[str, Any]:
    """The memory to change, refused (409) when it is no longer active: the page is stale."""
    caller.require_write()
    m = backend.call("get", {"memory_id": memory_id}, caller.context())
    if m["status"] != "active":
        newer = f" by {m['superseded_by']}" if m.get("superseded_by") else ""
        raise Stale(f"memory {m['id']} is {m['status']}{newer} since this page showed it; nothing was changed "
                    "(reload to see it as it is now)")
    return m


def edit(backend: Backend, caller: Caller, memory_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Replace a memory's text: ``remember`` the new text with ``supersedes`` the old id, in the
    old one's scope, project and session, with its importance and tags (the old one stays as history)."""
    content = body.get("content")
    old = _writable(backend, caller, memory_id)
    if isinstance(content, str) and " ".join(content.split()) == " ".join(old["content"].split()):
        raise InvalidInput("the new text is the same as the old one; nothing was changed")
    keys = {k: old.get(k) or "" for k in ("session_id", "turn_id")}
    if old["scope"] == "agent":
        keys["agent_id"] = old.get("agent_id") or ""
    context = caller.context(project=old.get("project") or caller.project, **keys)
    return backend.call("remember", {"content": content, "scope": old["scope"], "importance": old["importance"],
                                     "tags": old.get("tags") or [], "supersedes": old["id"]}, context)


def forget(backend: Backend, caller: Caller, memory_id: str) -> dict[str, Any]:
    _writable(backend, caller, memory_id)
    return backend.call("forget", {"id": memory_id}, caller.context())


def update(backend: Backend, caller: Caller, memory_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Importance and tags in place (the store's ``update``, which screens tags for secrets)."""
    unknown = sorted(set(body) - {"importance", "tags"})
    if unknown:
        raise InvalidInput(f"update takes importance and tags, not {', '.join(unknown)}; nothing was changed")
    _writable(backend, caller, memory_id)
    return backend.call("update", {"id": memory_id, **{k: v for k, v in body.items() if v is not None}}, caller.context())


def restore(backend: Backend, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    caller.require_write()
    return backend.call("restore", {"ids": body.get("ids")}, caller.context())


def unmerge(backend: Backend, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    caller.require_write()
    return backend.call("unmerge", {"id": body.get("id")}, caller.context())


def forgotten(backend: Backend, caller: Caller) -> dict[str, Any]:
    """The caller's forgotten memories that can still be restored (none for a read-only token)."""
    if not caller.can_write:
        return {"memories": []}
    return {"memories": backend.call("list", {"forgotten": True, "everywhere": True, "limit": EVERYTHING},
                                     caller.context())["memories"]}


def _hook(kind: str, backend: Backend, context: dict[str, Any], prompt: str = "") -> dict[str, Any]:
    """One hook's text as the hook itself makes it (``hooks.hook_text``), with what it left out."""
    text, chosen, candidates = hook_text(kind, backend, context, prompt)
    ids = {m["id"] for m in chosen}
    event = hook_event(context.get("agent_id"), kind)
    return {"text": text, "tokens": injection.estimate_tokens(text), "injected": [m["id"] for m in chosen],
            "left_out": [{k: m.get(k) for k in ("id", "content", "scope", "importance", "score")}
                         for m in candidates if m["id"] not in ids][:10],
            "budget": injection.SESSION_BUDGET if kind == "session-start" else injection.PROMPT_BUDGET,
            "output": hook_output(event, text)}


def preview(backend: Backend, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """What an agent in ``project`` sees: the session-start hook's text (and the prompt hook's
    for ``prompt``) and the ``memory://context`` resource, each with its token estimate."""
    project = _param(params, "project", caller.project)
    agent = _param(params, "agent", next(iter(CLIENTS)))
    context = caller.context(project="" if project == "-" else project, agent_id=agent)
    resource = injection.resource_text(backend.call("context", {"limit": injection.RESOURCE_CANDIDATES}, context)["memories"])
    prompt = _param(params, "prompt")
    return {"project": project, "agent": agent, "session_start": _hook("session-start", backend, context),
            "prompt": _hook("prompt", backend, context, prompt) if prompt else None,
            "resource": {"text": resource, "tokens": injection.estimate_tokens(resource)}}


def _week(iso: str | None) -> str:
    """The Monday (UTC) of the week a timestamp falls in, as YYYY-MM-DD."""
    day = dt.datetime.fromtimestamp(parse_iso(iso), dt.UTC).date() if iso else dt.date(1970, 1, 1)
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def _weeks(stamps: set[str]) -> list[str]:
    """Every week from the first of ``stamps`` to the last (at most the last ``WEEKS``), empty ones
    included, so that a chart's bars stand as far apart as their weeks."""
    if not stamps:
        return []
    last = dt.date.fromisoformat(max(stamps))
    first = max(dt.date.fromisoformat(min(stamps)), last - dt.timedelta(weeks=WEEKS - 1))
    return [(first + dt.timedelta(weeks=n)).isoformat() for n in range((last - first).days // 7 + 1)]


def _series(rows: Iterable[tuple[str, str]], weeks: list[str]) -> dict[str, list[int]]:
    """(week, label) pairs counted per label and week; past ``SERIES`` labels the rest are "other"."""
    counts: dict[str, dict[str, int]] = {}
    for week, label in rows:
        counts.setdefault(label, {}).setdefault(week, 0)
        counts[label][week] += 1
    ranked = sorted(counts, key=lambda k: -sum(counts[k].values()))
    out = {label: [counts[label].get(w, 0) for w in weeks] for label in ranked[:SERIES]}
    rest = ranked[SERIES:]
    if rest:
        out["other"] = [sum(counts[label].get(w, 0) for label in rest) for w in weeks]
    return out


def activity(backend: Backend, caller: Caller) -> dict[str, Any]:
    """Memories made per week by agent, by scope and by project, and merges per week, over
    the memories the caller may read (each counted for the agent that first said it)."""
    context = caller.context()
    active = backend.call("list", {"everywhere": True, "limit": EVERYTHING}, context)["memories"]
    merged = backend.call("list", {"everywhere": True, "merged": True, "limit": EVERYTHING}, context)["memories"]
    made_in = [(m, _week(m["created_at"])) for m in active]
    merged_in = [_week(m["created_at"]) for m in merged]
    weeks = _weeks({w for _, w in made_in} | set(merged_in))
    first = weeks[0] if weeks else ""
    made = [(m, w) for m, w in made_in if w >= first]
    return {
        "weeks": weeks,
        "by_agent": _series(((w, m.get("created_by") or (m.get("agents") or ["unknown"])[0]) for m, w in made), weeks),
        "by_scope": _series(((w, m["scope"]) for m, w in made), weeks),
        "by_project": _series(((w, m.get("project") or "(user-wide)") for m, w in made), weeks),
        "merges": _series(((w, "merged") for w in merged_in if w >= first), weeks),
        "total": len(active), "restatements": len(merged),
    }
