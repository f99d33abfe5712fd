"""The Python API: ``Memory`` (async) and ``SyncMemory`` mirror the MCP tools.

>>> from headroom_mcp import SyncMemory
>>> memory = SyncMemory(agent_id="my-script")
>>> memory.remember("this repo uses uv, not pip")      # doctest: +SKIP
{'id': 'mem_…', 'status': 'created', 'scope': 'project', 'agents': ['my-script']}
>>> memory.recall("which package manager?")             # doctest: +SKIP

The methods are named as the MCP tools and the CLI's verbs (``remember``, ``recall``,
``forget``, ``list``...); ``save``, ``search``, ``delete`` and ``get_all`` are the same
methods under the names the first releases gave them, kept for the scripts that use them.

By default both are clients of the local daemon (started on demand), like every other
process. ``embedded=True`` opens the store in this process instead, which needs the data
dir's lock: use it for tests and batch scripts when no daemon is running.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config import Settings
from .errors import HeadroomError
from .methods import RECALL_LIMIT
from .store.scopes import Context

T = TypeVar("T")
#: Memories as the store answers them (``MemoryRecord.to_dict``, with ``score`` from recall).
Records = list[dict[str, Any]]


class _Embedded:
    """The store opened in this process, owned the way the daemon owns it (``owner``)."""

    def __init__(self, settings: Settings):
        from .owner import StoreOwner

        self.owner = StoreOwner(settings, serving=False)
        self._closed = False
        try:
            self.store = self.owner.open().result()
        except BaseException:
            self.owner.close()
            raise

    def call(self, method: str, params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        from .service import dispatch

        if self._closed:
            raise HeadroomError("this memory is closed; open a new one")
        # On the owner's one writer: the same one-at-a-time rule the daemon's writes get.
        return self.owner.worker.submit(dispatch, self.store, method, params, context).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.owner.close()


class SyncMemory:
    """Shared agent memory for scripts: blocking methods named like the async ``Memory``."""

    def __init__(
        self,
        user_id: str | None = None,
        agent_id: str | None = None,
        project: str | None = None,
        session_id: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        chroma_url: str | None = None,
        embedded: bool = False,
    ):
        self.settings = Settings.resolve(
            data_dir=data_dir, user_id=user_id, agent_id=agent_id, project=project,
            session_id=session_id, chroma_url=chroma_url,
        )
        if embedded:
            self._backend: Any = _Embedded(self.settings)
        else:
            from .client import DaemonClient

            self._backend = DaemonClient(self.settings)

    @property
    def context(self) -> Context:
        """The identity every call is made as (user, project, session, agent)."""
        return self.settings.context()

    def _call(self, method: str, turn_id: str = "", **params: Any) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        result: dict[str, Any] = self._backend.call(method, params, self.settings.context(turn_id).to_mapping())
        return result

    def remember(
        self,
        content: str,
        scope: str | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        supersedes: str | None = None,
        turn_id: str = "",
    ) -> dict[str, Any]:
        """Remember a fact: ``{id, status, scope, agents, duplicate_of?, restatement?, similar?, conflicts?}``."""
        return self._call("remember", turn_id, content=content, scope=scope, importance=importance,
                          tags=list(tags) if tags is not None else None, supersedes=supersedes)

    def recall(
        self,
        query: str,
        limit: int = RECALL_LIMIT,
        scope: str | None = None,
        tags: Sequence[str] | None = None,
        agent: str | None = None,
        min_score: float | None = None,
        turn_id: str = "",
        asked_by: str | None = None,
    ) -> Records:
        """The visible memories that best match ``query``, best first (empty when none is relevant).

        ``asked_by="agent"`` when a model wrote ``query`` as the statement it expects to find,
        as the MCP tool asks: it is ranked as the tool ranks it, gate included
        (``ranking.for_agent``). Left out, the store's default: a person's words.
        """
        results: Records = self._call("recall", turn_id, query=query, limit=limit, scope=scope,
                                      tags=list(tags) if tags is not None else None, agent=agent,
                                      min_score=min_score, asked_by=asked_by)["results"]
        return results

    def unmerge(self, id: str) -> dict[str, Any]:
        """Undo a merge: restatement ``id`` (a merged result's ``restatement``, or one listed
        in ``get(memory)["restatements"]``) becomes a memory of its own again."""
        return self._call("unmerge", id=id)

    def get(self, memory_id: str) -> dict[str, Any]:
        """One memory by id, with provenance and history fields."""
        return self._call("get", memory_id=memory_id)

    def list(self, scope: str | None = None, tags: Sequence[str] | None = None, agent: str | None = None,
             limit: int | None = None, forgotten: bool = False, everywhere: bool = False,
             merged: bool = False) -> Records:
        """Every visible memory, most recently updated first; with ``forgotten=True`` the
        forgotten ones that can still be restored (each with ``restorable_until``), with
        ``merged=True`` the restatements merged into memories (each with ``merged_into``).
        ``everywhere=True``: every memory you may read by id, in every project and session,
        not only those visible here."""
        memories: Records = self._call("list", scope=scope, tags=list(tags) if tags is not None else None, agent=agent,
                                       limit=limit, forgotten=forgotten, everywhere=everywhere or None,
                                       merged=merged or None)["memories"]
        return memories

    def update(self, id: str, importance: float | None = None, tags: Sequence[str] | None = None) -> dict[str, Any]:
        """Change an active memory's importance or tags in place (``tags`` replaces them; ``[]``
        clears): ``{id, status: "updated", importance, tags}``. To change its text, ``remember``
        the new text with ``supersedes=id``."""
        return self._call("update", id=id, importance=importance, tags=list(tags) if tags is not None else None)

    def forget(self, id: str | None = None, ids: Sequence[str] | None = None, query: str | None = None,
               confirm: bool = False) -> dict[str, Any]:
        """Forget by id, ids, or query. A query takes only what it clearly names and lists the
        other matches as ``candidates``; without ``confirm=True`` it only lists (``would_forget``)."""
        return self._call("forget", id=id, ids=list(ids) if ids is not None else None, query=query, confirm=confirm)

    def restore(self, ids: Sequence[str]) -> dict[str, Any]:
        """Bring forgotten memories back (within ``HEADROOM_MCP_FORGET_RETENTION``): ``{restored: [ids]}``."""
        return self._call("restore", ids=list(ids))

    def clear(self, scope: str | None = None) -> dict[str, Any]:
        """Forget every memory visible here (or only those of ``scope``): ``{forgotten: n}``."""
        return self._call("clear", scope=scope)

    def stats(self) -> dict[str, Any]:
        """Totals of this user's active memories by scope, agent and project."""
        return self._call("stats")

    def import_records(self, records: Sequence[dict[str, Any]], dedup: bool = True) -> dict[str, int]:
        """Import exported records (ids, provenance and timestamps kept)."""
        return self._call("import", records=list(records), dedup=dedup)

    def backup(self, dest: str | os.PathLike[str]) -> dict[str, Any]:
        """Copy the live store into ``dest`` (a new directory, usable as a data dir): ``{dest, records}``."""
        return self._call("backup", dest=os.fspath(Path(dest).expanduser().resolve()))

    def check(self, repair: bool = True) -> dict[str, Any]:
        """Compare the derived indexes (lexical and vector) with the collection, rebuilding them if they differ."""
        return self._call("check", repair=repair)

    # The first releases' names for the same methods.
    save = remember
    search = recall
    delete = forget
    get_all = list

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> SyncMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_thread(method: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """The async twin of a ``SyncMemory`` method: same signature and docs, run in a thread."""

    @functools.wraps(method)
    async def call(self: Memory, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    return call


class Memory:
    """Shared agent memory, async: ``await Memory().remember(...)``, ``recall``, ``list``...

    Takes the same arguments as ``SyncMemory``. Each call runs the blocking client in a
    worker thread, so an event loop never waits on the daemon's socket.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self.sync = SyncMemory(*args, **kwargs)

    @property
    def context(self) -> Context:
        return self.sync.context

    remember = _in_thread(SyncMemory.remember)
    recall = _in_thread(SyncMemory.recall)
    forget = _in_thread(SyncMemory.forget)
    list = _in_thread(SyncMemory.list)
    unmerge = _in_thread(SyncMemory.unmerge)
    get = _in_thread(SyncMemory.get)
    update = _in_thread(SyncMemory.update)
    restore = _in_thread(SyncMemory.restore)
    clear = _in_thread(SyncMemory.clear)
    stats = _in_thread(SyncMemory.stats)
    import_records = _in_thread(SyncMemory.import_records)
    backup = _in_thread(SyncMemory.backup)
    check = _in_thread(SyncMemory.check)
    save, search, delete, get_all = remember, recall, forget, list

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
