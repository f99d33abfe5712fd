"""The store's operations as named methods with JSON-shaped parameters and results.

The daemon serves these over its socket and ``Memory(embedded=True)`` calls them in
process: one dispatch table, so both paths validate and answer identically.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from .errors import InvalidInput
from .importing import record_from
from .store import secrets
from .store.memory_store import MemoryStore
from .store.scopes import IDENTITY, Context


def _import(store: MemoryStore, ctx: Context, records: Any, dedup: Any = True) -> dict[str, Any]:
    """Import public-form records (``MemoryRecord.to_dict`` output, or less: ``importing``) owned by the caller."""
    if not isinstance(records, list):
        raise InvalidInput("records must be a list of memory objects")
    if not isinstance(dedup, bool):
        raise InvalidInput(f"dedup must be true or false, got {dedup!r}")
    parsed = []
    for n, data in enumerate(records, 1):
        try:
            parsed.append(record_from(data, ctx))
        except InvalidInput as exc:
            raise InvalidInput(f"record {n}: {exc}") from None
    return store.import_records(parsed, dedup=dedup)


#: method name → (handler, allowed parameter names). Handlers take (store, ctx, **params).
METHODS: dict[str, tuple[Callable[..., Any], frozenset[str]]] = {
    "remember": (MemoryStore.remember, frozenset({"content", "scope", "importance", "tags", "supersedes"})),
    "recall": (lambda s, c, **p: {"results": s.recall(c, **p)}, frozenset({"query", "limit", "scope", "tags", "agent", "min_score"})),
    "forget": (MemoryStore.forget, frozenset({"id", "ids", "query", "confirm", "limit"})),
    "restore": (MemoryStore.restore, frozenset({"ids"})),
    "unmerge": (MemoryStore.unmerge, frozenset({"id"})),
    "get": (MemoryStore.get, frozenset({"memory_id"})),
    "update": (MemoryStore.update, frozenset({"id", "importance", "tags"})),
    "list": (lambda s, c, **p: {"memories": s.list(c, **p)},
             frozenset({"scope", "tags", "agent", "limit", "forgotten", "everywhere", "merged"})),
    "context": (lambda s, c, **p: {"memories": s.context(c, **p)}, frozenset({"limit"})),
    "stats": (MemoryStore.stats, frozenset()),
    "check": (lambda s, c, **p: s.check(**p), frozenset({"repair"})),
    "backup": (lambda s, c, **p: s.backup(**p), frozenset({"dest"})),
    "clear": (MemoryStore.clear, frozenset({"scope"})),
    "import": (_import, frozenset({"records", "dedup"})),
}


@functools.lru_cache(maxsize=1024)
def _holds_key(identity: str) -> bool:
    """Whether an identity holds a provider key. Cached: the same few names come with every
    call, and a full scan of each would add a millisecond to every recall."""
    return bool(identity) and bool(secrets.find_known(identity))


def dispatch(store: MemoryStore, method: Any, params: Any, context: Any) -> dict[str, Any]:
    """Run one request. Raises ``InvalidInput`` for an unknown method or parameter."""
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInput("params must be an object")
    if not isinstance(context, Mapping):
        raise InvalidInput("context must be an object")
    handler, allowed = METHODS[method]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput(f"{method} got unknown parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(allowed)) or 'none'}")
    ctx = Context.from_mapping(context)
    for key in IDENTITY:
        if _holds_key(getattr(ctx, key)):  # stored as provenance and shown in every agent's context
            raise InvalidInput(f"the caller's {key} looks like a secret; nothing was done. Name agents and users, "
                               "never with a key")
    return handler(store, ctx, **params)
