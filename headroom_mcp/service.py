"""The store's operations as named methods with JSON-shaped parameters and results.

The daemon serves these over its socket and ``Memory(embedded=True)`` calls them in
process: one dispatch, so both paths validate and answer identically. What each method
takes is ``methods.METHODS``; this module binds each to the store call that runs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidInput
from .importing import record_from
from .methods import METHODS
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


#: What runs each of ``methods.METHODS``, as ``handler(store, ctx, **params)``.
HANDLERS: dict[str, Callable[..., Any]] = {
    "remember": MemoryStore.remember,
    "recall": lambda s, c, **p: {"results": s.recall(c, **p)},
    "forget": MemoryStore.forget,
    "restore": MemoryStore.restore,
    "unmerge": MemoryStore.unmerge,
    "get": MemoryStore.get,
    "update": MemoryStore.update,
    "list": lambda s, c, **p: {"memories": s.list(c, **p)},
    "context": lambda s, c, **p: {"memories": s.context(c, **p)},
    "stats": MemoryStore.stats,
    "check": lambda s, c, **p: s.check(**p),
    "backup": lambda s, c, **p: s.backup(**p),
    "clear": MemoryStore.clear,
    "import": _import,
}


@functools.lru_cache(maxsize=1024)
def _holds_key(identity: str) -> bool:
    """Whether an identity holds a provider key. Cached: the same few names come with every
    call, and a full scan of each would add a millisecond to every recall."""
    return bool(identity) and bool(secrets.find_known(identity))


def dispatch(store: MemoryStore, method: Any, params: Any, context: Any) -> dict[str, Any]:
    """Run one request. Raises ``InvalidInput`` for an unknown method or parameter."""
    if not isinstance(method, str) or method not in HANDLERS:
        raise InvalidInput(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInput("params must be an object")
    if not isinstance(context, Mapping):
        raise InvalidInput("context must be an object")
    allowed = METHODS[method].params.keys()
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput(f"{method} got unknown parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(allowed)) or 'none'}")
    ctx = Context.from_mapping(context)
    for key in IDENTITY:
        if _holds_key(getattr(ctx, key)):  # stored as provenance and shown in every agent's context
            raise InvalidInput(f"the caller's {key} looks like a secret; nothing was done. Name agents and users, "
                               "never with a key")
    result: dict[str, Any] = HANDLERS[method](store, ctx, **params)
    return result
