"""``MemoryStore``: remember, recall and forget over the Chroma collection.

Only the process that owns the store (the daemon, or ``Memory(embedded=True)``) builds
one. Its methods are not re-entrant for writes: the owner calls them from one thread, which
is what makes dedup decisions race-free (two agents asserting the same fact at the same
instant end with one memory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypedDict

import numpy as np

from ..errors import HeadroomError, InvalidInput, NotFound
from . import faults, ranking, secrets
from .chroma import open_client, open_collection
from .dedup import Facts, judge
from .embedder import Embedder
from .indexes import INDEXED, Indexes
from .migrations import SCHEMA_VERSION, migrate, version_of
from .staging import Staged, in_domain
from .records import (
    ACTIVE,
    DEFAULT_FORGET_RETENTION,
    FORGOTTEN,
    MERGED,
    SUPERSEDED,
    MemoryRecord,
    check_content,
    check_id,
    check_importance,
    check_limit,
    check_scope,
    check_tags,
    content_hash,
    iso,
    appended_once,
    new_id,
    now,
)
from .scopes import SCOPE_KEYS, Context, Visibility, owner_clause
from .vectors import Where

MAX_RECALL_LIMIT = 100
#: Dense and lexical candidate pool per recall, as a multiple of ``limit`` (at least 50).
POOL_FACTOR = 10
#: Restatements looked at per recall (each counts for the memory it was folded into).
RESTATEMENT_POOL = 20
#: Candidates checked for a duplicate on every remember.
DEDUP_CANDIDATES = 8
#: Turn-scoped memories live this long (seconds) unless configured otherwise.
DEFAULT_TURN_TTL = 3600.0
_PAGE = 1000


class RememberResult(TypedDict, total=False):
    id: str
    status: str
    scope: str
    agents: list[str]
    duplicate_of: str
    restatement: str
    similar: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    redacted: list[str]


def _domain(scope: str, user_id: str, keys: dict[str, str]) -> dict[str, Any]:
    """Where a new fact's twin can be: active, same scope and keys, and the same owner."""
    return {"status": ACTIVE, "scope": scope, **keys, **owner_clause(scope, user_id)}


def _briefly(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recall results as forget shows them: what each memory says, and how well it matched."""
    return [{k: r[k] for k in ("id", "content", "score")} for r in results]


#: A newer memory moves above an older one it conflicts with when it scores within this of it.
CONFLICT_MARGIN = 0.1


def _newer_first(ranked: list[ranking.Scored], replaces: Mapping[str, list[str]]) -> list[ranking.Scored]:
    """``ranked`` with each memory moved just above any older one it conflicts with.

    When a fact was restated with a new value (its ``conflicts``) and both match a query
    about as well, the newer statement is the one to believe. A much better match stays
    first: "shard B00042" must not yield to a newer note about another shard.
    """
    out: list[ranking.Scored] = []
    for s in ranked:
        above = [n for n, placed in enumerate(out)
                 if placed.id in replaces.get(s.id, ()) and placed.score - s.score <= CONFLICT_MARGIN]
        out.insert(min(above) if above else len(out), s)
    return out


class MemoryStore:
    """The memory engine over one Chroma collection, an embedder, and indexes derived from the collection."""

    def __init__(self, collection, embedder: Embedder, turn_ttl: float = DEFAULT_TURN_TTL, refresh_interval: float = 0.0,
                 secrets_policy: str = "redact", forget_retention: float = DEFAULT_FORGET_RETENTION):
        """``refresh_interval``: seconds between index refreshes from the collection on recall and remember.

        0 (refresh on every recall) when other processes write the same collection (a Chroma
        server shared by replicas); an embedded store's owner sees every write itself, so it
        only needs an occasional safety-net refresh. ``secrets_policy``: what a write holding
        a credential gets, "redact" or "refuse" (see ``secrets``). ``forget_retention``: how
        long a forgotten memory can be restored before ``purge`` deletes it.
        """
        if secrets_policy not in secrets.POLICIES:
            raise InvalidInput(f"secrets policy must be one of {', '.join(secrets.POLICIES)}, got {secrets_policy!r}")
        self.secrets_policy = secrets_policy
        #: Format migrations run when this store was opened (see ``migrations``).
        self.migrated: list[str] = []
        #: Where an embedded store keeps its files (None on a Chroma server).
        self.chroma_dir: Path | None = None
        #: Writes are refused while the embedded store's disk has less free space (bytes).
        self.min_free = faults.DEFAULT_MIN_FREE
        #: Set when a Chroma write failed: its client must not write again (see ``faults``);
        #: the owner reopens the store. Every later write raises this error.
        self.retired: Exception | None = None
        self.collection = collection
        self.embedder = embedder
        self.turn_ttl = turn_ttl
        self.forget_retention = forget_retention
        self.refresh_interval = refresh_interval
        self.indexes = Indexes(self._stored_vectors)
        self.lexical = self.indexes.lexical
        self.vectors = self.indexes.vectors
        #: Per thread: writes waiting for the end of ``one_commit`` (only the thread that
        #: made them may read them, since other threads' reads must see only what is stored).
        self._local = threading.local()
        self.weights = ranking.DEFAULT
        self._refreshed = 0.0
        self.refresh_indexes()

    @classmethod
    def open(
        cls,
        embedder: Embedder,
        data_dir: Path | None = None,
        chroma_url: str | None = None,
        turn_ttl: float = DEFAULT_TURN_TTL,
        secrets_policy: str = "redact",
        forget_retention: float = DEFAULT_FORGET_RETENTION,
        min_free: int = faults.DEFAULT_MIN_FREE,
    ) -> "MemoryStore":
        """Open (or create) a store; a damaged or unopenable one raises a clear ``HeadroomError``."""
        if chroma_url:
            return cls._open(embedder, None, chroma_url, turn_ttl, secrets_policy, forget_retention)
        chroma_dir = Path(data_dir) / "chroma" if data_dir is not None else None
        if chroma_dir is not None:
            faults.inspect(chroma_dir)  # before Chroma writes anything into a damaged store
        try:
            store = cls._open(embedder, data_dir, None, turn_ttl, secrets_policy, forget_retention)
        except Exception as exc:
            explained = faults.explain_open_error(chroma_dir, exc, min_free) if chroma_dir is not None else None
            if explained is None:
                raise
            raise explained from exc
        store.min_free = min_free
        return store

    @classmethod
    def _open(cls, embedder: Embedder, data_dir: Path | None, chroma_url: str | None, turn_ttl: float,
              secrets_policy: str, forget_retention: float) -> "MemoryStore":
        client = open_client(data_dir, chroma_url)
        collection = open_collection(client, embedder.model_id)
        if version_of(collection) < SCHEMA_VERSION and data_dir is not None:
            # Before a migration changes records in place, keep the old store as it was.
            import shutil

            keep = Path(data_dir) / f"backup-before-format-{SCHEMA_VERSION}"
            if not keep.exists():
                shutil.copytree(Path(data_dir) / "chroma", keep / "chroma")
        migrated = migrate(collection, embedder)
        store = cls(collection, embedder, turn_ttl, refresh_interval=0.0 if chroma_url else 30.0, secrets_policy=secrets_policy,
                    forget_retention=forget_retention)
        store.migrated = migrated
        store.chroma_dir = None if chroma_url else Path(data_dir) / "chroma"
        return store

    # ---- helpers -------------------------------------------------------------------------

    def _embed_one(self, text: str) -> np.ndarray:
        staged = self._staged
        if staged is not None and text in staged.vectors:
            return staged.vectors[text]
        return self.embedder.embed([text])[0]

    def _records(self, ids: list[str], allowed: Callable[[Mapping[str, Any]], bool]) -> dict[str, MemoryRecord]:
        """The records among ``ids`` (any scope or status) whose metadata ``allowed`` accepts."""
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        found = {i: MemoryRecord.from_chroma(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"]) if allowed(m)}
        return self._staged.overlay(found, ids, allowed) if self._staged is not None else found

    def _current(self, ids: list[str], allowed: Callable[[Mapping[str, Any]], bool]) -> dict[str, MemoryRecord]:
        """The indexed records among ``ids`` that ``allowed`` accepts, as they stand now: what
        recall returns and what dedup compares with.

        An embedded store has one writer, the process that holds its lock, and each of its
        writes reaches the indexes as it lands, so their copies are current and reading the
        collection again would only cost time (1-2 ms a call at 10,000 memories). On a Chroma
        server another replica may have changed or forgotten a record since the last refresh,
        so the collection, the source of truth, is read.
        """
        if self.chroma_dir is None:
            return self._records(ids, allowed)
        found = {i: r for i in ids if (r := self.lexical.record(i)) is not None and allowed(self.lexical.meta(i))}
        return self._staged.overlay(found, ids, allowed) if self._staged is not None else found

    @property
    def _staged(self) -> Staged | None:
        return getattr(self._local, "staged", None)

    @_staged.setter
    def _staged(self, staged: Staged | None) -> None:
        self._local.staged = staged

    @contextlib.contextmanager
    def one_commit(self, contents: Sequence[Any] = ()) -> Iterator[None]:
        """Make the writes inside go to Chroma together, when it ends (``staging``).

        Until then the owner's thread reads them as written (dedup of a later request sees
        an earlier one). Answer no request made inside before this returns. If the body
        raises, nothing it staged is written; if the commit's write fails, this raises (see
        ``_write_failed`` for what was stored then). ``contents``: what ``remember`` requests
        inside were given; those that pass its checks and screening are embedded together
        up front (one model run instead of one each; any other is embedded on its own).
        """
        if self._staged is not None:
            yield  # already inside one
            return
        self._staged = Staged()
        try:
            self._embedded_together(self._staged, contents)
            yield
        except BaseException:
            self._staged = None
            raise
        staged, self._staged = self._staged, None
        (records, vectors), changed = staged.groups()
        if records:
            self._write(records, vectors)
        if changed:
            self._write(changed)

    def _screened(self, content: Any) -> tuple[str, list[str]]:
        """``content`` as ``remember`` stores it: checked, credentials redacted (their kinds);
        inside ``one_commit`` as screened up front."""
        staged = self._staged
        if staged is not None and isinstance(content, str) and content in staged.screened:
            return staged.screened[content]
        return secrets.screen(check_content(content), self.secrets_policy)

    def _embedded_together(self, staged: Staged, contents: Sequence[Any]) -> None:
        """Screen ``contents`` and embed them in one model run, into ``staged``; a content that
        fails its checks is left to its request (which reports why), and when the run fails
        each request embeds its own."""
        for content in contents:
            try:
                staged.screened[content] = self._screened(content)
            except HeadroomError:
                continue
        texts = list(dict.fromkeys(text for text, _ in staged.screened.values()))
        if texts:
            try:
                staged.vectors = dict(zip(texts, self.embedder.embed(texts)))
            except Exception:
                pass

    def _write(self, records: list[MemoryRecord], vectors: list[Any] | None = None) -> None:
        """Upsert records (with new vectors, or keeping the stored ones) and index them;
        inside ``one_commit`` only stage them."""
        if self._staged is not None:
            self._staged.add(records, vectors)
            return
        ids = [r.id for r in records]
        # When this write happened, apart from ``updated_at`` (which an import keeps from the
        # export): other replicas pull every write since their last look by this time.
        t = now()
        metas = [{**r.to_metadata(), "changed_at": t} for r in records]
        docs = [r.content for r in records]
        self._may_write()
        try:
            if vectors is None:
                # Content never changes in place. Chroma merges metadata on update, so a field that
                # became empty (``merged_into`` after an unmerge) is deleted by naming it with None.
                cleared = [{**{k: None for k in MemoryRecord.metadata_keys() if k not in m}, **m} for m in metas]
                self.collection.update(ids=ids, metadatas=cleared)
            else:
                self.collection.upsert(ids=ids, metadatas=metas, documents=docs, embeddings=[list(map(float, v)) for v in vectors])
        except Exception as exc:
            self._write_failed(exc)  # returns only when Chroma kept the records
        self.indexes.apply(ids, docs, metas, vectors)

    def _fresh_indexes(self) -> None:
        """Pull writes of other processes (replicas) into the indexes once the refresh interval
        has passed: always on a Chroma server, now and then as a safety net when embedded."""
        if time.monotonic() - self._refreshed >= self.refresh_interval:
            self.refresh_indexes()

    def _stored_vectors(self, ids: list[str]) -> dict[str, Any]:
        """The collection's embeddings of ``ids`` (those it has)."""
        got = self.collection.get(ids=ids, include=["embeddings"])
        return dict(zip(got["ids"], got["embeddings"]))

    def _may_write(self) -> None:
        """Refuse a write before Chroma sees it: the client is retired, or the disk nearly full."""
        if self.retired is not None:
            raise self.retired
        if self.chroma_dir is not None:
            faults.ensure_space(self.chroma_dir, self.min_free)

    def _write_failed(self, exc: Exception) -> None:
        """After Chroma raised on a write: re-raise, raise a clear ``StoreFull``, or return if it was stored.

        A storage fault retires this Chroma client (its next write would hang the process);
        the record's fate comes from ``faults.classify_write``, so a stored record is
        reported as stored and a failure is reported only for a record that is not.
        """
        outcome = faults.classify_write(exc)
        if outcome is None or self.chroma_dir is None:
            raise exc
        self.retired = faults.disk_full(self.chroma_dir, f"{type(exc).__name__}: {exc}", "the store must be reopened")
        if outcome == faults.NOT_STORED:
            raise faults.disk_full(self.chroma_dir) from exc

    def _one(self, memory_id: str, allowed: Callable[[Mapping[str, Any]], bool]) -> MemoryRecord:
        """One record ``allowed`` accepts; ``NotFound`` whether it is missing or someone else's."""
        memory_id = check_id(memory_id)
        found = self._records([memory_id], allowed)
        if not found:
            raise NotFound(f"no memory with id {memory_id!r}")
        return found[memory_id]

    def refresh_indexes(self) -> int:
        """Pull records written since the watermark into the indexes; return how many."""
        self._refreshed = time.monotonic()
        return self.indexes.refresh(self._pages)

    def rebuild_indexes(self) -> None:
        """Drop the indexes and rebuild them from the collection."""
        self.indexes.clear()
        self.refresh_indexes()

    def check(self, repair: bool = True) -> dict[str, Any]:
        """Do the lexical and vector indexes hold exactly the collection's active records? Rebuild them if not.

        The daemon runs this at startup and ``doctor`` asks for it. The collection is the
        source of truth; the index is derived, so repairing it loses nothing.
        """
        if not isinstance(repair, bool):
            raise InvalidInput(f"repair must be true or false, got {repair!r}")
        self.refresh_indexes()
        active = {i for page in self._pages({"status": {"$in": list(INDEXED)}}, []) for i in page["ids"]}
        lexical, vectors = self.indexes.held()
        missing, extra = active - (lexical & vectors), (lexical | vectors) - active
        report: dict[str, Any] = {"records": self.collection.count(), "active": len(active), "lexical": len(lexical),
                                  "vectors": len(vectors), "missing": len(missing), "extra": len(extra), "repaired": False,
                                  "migrated": self.migrated}
        if (missing or extra) and repair:
            self.rebuild_indexes()
            report["repaired"] = True
            report["lexical"], report["vectors"] = len(self.lexical), len(self.vectors)
        return report

    def backup(self, dest: Any) -> dict[str, Any]:
        """Copy the embedded store's files to ``dest``, a new directory that becomes a data dir.

        Run by the store's single worker (or under the embedded lock), so no write of ours
        interleaves; the SQLite file, which holds every record and the write-ahead log of
        the vector index, is copied with SQLite's online backup API, and the vector index
        files beside it. Opening the copy replays whatever the index had not flushed.
        """
        import shutil
        import sqlite3

        if self.chroma_dir is None:
            raise InvalidInput("backup copies an embedded store; on a Chroma server use export, or the server's own backups")
        if not isinstance(dest, str) or not dest.strip():
            raise InvalidInput("dest must be a directory path")
        target = Path(dest).expanduser().resolve()
        if target.exists() and any(target.iterdir()):
            raise InvalidInput(f"{target} exists and is not empty; back up into a new directory")
        if target == self.chroma_dir.parent or self.chroma_dir.parent in target.parents:
            raise InvalidInput("back up outside the store's own data dir")
        # Private, as every data dir must be (its daemon's socket lives in it): the copy is then
        # usable as ``--data-dir DEST`` at once.
        target.mkdir(parents=True, mode=0o700, exist_ok=True)
        target.chmod(0o700)
        chroma = target / "chroma"
        chroma.mkdir(mode=0o700)
        for item in self.chroma_dir.iterdir():
            if item.is_dir():
                shutil.copytree(item, chroma / item.name)
        source = sqlite3.connect(self.chroma_dir / "chroma.sqlite3")
        copy = sqlite3.connect(chroma / "chroma.sqlite3")
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return {"dest": str(target), "records": self.count()}

    # ---- remember ------------------------------------------------------------------------

    def remember(
        self,
        ctx: Context,
        content: Any,
        scope: Any = None,
        importance: Any = None,
        tags: Any = None,
        supersedes: Any = None,
    ) -> RememberResult:
        """Store a fact, merge it into the same existing fact, or replace ``supersedes``.

        Everything is validated before anything is written, and credentials in ``content``
        are redacted (the result lists their kinds in ``redacted``) or refused.
        """
        ctx.require_write()
        content, redacted = self._screened(content)
        scope = check_scope(scope) or ctx.default_scope()
        importance = check_importance(importance)
        tags = secrets.screen_tags(check_tags(tags))
        keys = ctx.keys_for(scope)
        old = self._one(supersedes, ctx.can_change) if supersedes is not None else None
        if old is not None and old.status != ACTIVE:
            raise InvalidInput(f"memory {old.id} is already {old.status}")

        vector = self._embed_one(content)
        facts = Facts.of(content)
        similar: list[dict[str, Any]] = []
        conflicts: list[dict[str, Any]] = []
        if old is None:
            for record, cosine in self._neighbours(vector, _domain(scope, ctx.user_id, keys), content):
                verdict = judge(facts, Facts.of(record.content), cosine)
                if verdict.merge:
                    merged = self._merge(ctx, record, content, vector, importance, tags)
                    if redacted:
                        merged["redacted"] = redacted
                    return merged
                entry = {"id": record.id, "content": record.content, "score": round(cosine, 4)}
                if verdict.conflict:
                    conflicts.append(entry)
                elif verdict.similar:
                    similar.append(entry)

        t = now()
        if scope != "user":  # where it was said, so the project's admins can manage it
            keys = {"project": ctx.project, **keys}
        record = MemoryRecord(
            id=new_id(), content=content, scope=scope, user_id=ctx.user_id, users=[ctx.user_id],
            agents=appended_once([], ctx.agent_id), created_by=ctx.agent_id, created_at=t, updated_at=t,
            importance=0.5 if importance is None else importance, tags=tags,
            supersedes=old.id if old else "", expires_at=t + self.turn_ttl if scope == "turn" else 0.0,
            conflicts=[c["id"] for c in conflicts[:5]], **keys,
        )
        self._write([record], [vector])
        if old is not None:
            # Retired after the new fact is stored: a crash in between loses nothing.
            old.status, old.superseded_by, old.updated_at = SUPERSEDED, record.id, t
            self._write([old])
        result: RememberResult = {"id": record.id, "status": "superseded" if old else "created", "scope": scope, "agents": record.agents}
        if old is not None:
            result["supersedes"] = old.id  # type: ignore[typeddict-unknown-key]
        if similar:
            result["similar"] = similar[:5]
        if conflicts:
            result["conflicts"] = conflicts[:5]
        if redacted:
            result["redacted"] = redacted
        return result

    def _neighbours(self, vector: np.ndarray, domain: dict[str, Any], content: str) -> list[tuple[MemoryRecord, float]]:
        """The nearest active memories in the same scope domain, with their cosine.

        Ranked by the vector index, as they stand now (``_current``); inside ``one_commit``
        the writes staged so far count too.
        """
        self._fresh_indexes()  # another replica may have said it since
        where = Where.equal(domain)
        hits = self.vectors.score(vector).top(where, DEDUP_CANDIDATES)
        out: list[tuple[MemoryRecord, float]] = []
        if hits:
            records = self._current([h.id for h in hits], lambda meta: in_domain(meta, domain))
            # The same text after normalisation is the same fact whatever the cosine says.
            same = content_hash(content)
            out = [(records[h.id], 1.0 if h.meta.get("hash") == same else h.cosine) for h in hits if h.id in records]
        return self._staged.neighbours(out, vector, domain, content, DEDUP_CANDIDATES) if self._staged else out

    def _merge(self, ctx: Context, record: MemoryRecord, content: str, vector: np.ndarray,
               importance: float | None, tags: list[str]) -> RememberResult:
        """Fold a restatement of ``record`` into it, keeping the restatement's text as history.

        The same words from an agent and user already on the record add nothing to keep, so
        they only count; anything else becomes a restatement record (text, agent, user, time)
        that recall searches on the memory's behalf and ``unmerge`` can restore.
        """
        t = now()
        restatement = MemoryRecord(
            id=new_id(), content=content, scope=record.scope, user_id=ctx.user_id, users=[ctx.user_id],
            agents=appended_once([], ctx.agent_id), created_by=ctx.agent_id, created_at=t, updated_at=t,
            importance=record.importance if importance is None else importance, tags=tags,
            **{k: getattr(record, k) for k in ("project", "session_id", "agent_id", "turn_id")},
        )
        known = content_hash(content) == content_hash(record.content) and ctx.agent_id in record.agents and ctx.user_id in record.users
        self._fold(record, restatement, None if known else vector)
        result: RememberResult = {"id": record.id, "status": "merged", "scope": record.scope, "agents": record.agents, "duplicate_of": record.id}
        if not known:
            result["restatement"] = restatement.id
        return result

    def _fold(self, twin: MemoryRecord, restatement: MemoryRecord, vector: Any | None) -> None:
        """Merge ``restatement`` into ``twin``: provenance, counts, tags; store it as history.

        With ``vector`` None the restatement is only counted, not kept (nothing new in it).
        """
        # What this restatement brings to the memory, so that unmerge takes back only that.
        restatement.extra["added_agents"] = [a for a in restatement.agents if a and a not in twin.agents] or ["-"]
        restatement.extra["added_users"] = [u for u in restatement.users if u and u not in twin.users] or ["-"]
        twin.agents = appended_once(twin.agents + restatement.agents, "")
        twin.users = appended_once(twin.users + restatement.users, "")
        twin.seen_count += restatement.seen_count
        twin.importance = max(twin.importance, restatement.importance)
        twin.tags = list(dict.fromkeys(twin.tags + restatement.tags))
        twin.updated_at = max(twin.updated_at, restatement.updated_at)
        if twin.scope == "turn":
            twin.expires_at = now() + self.turn_ttl
        if vector is not None:
            # History first: a crash in between leaves a restatement, never a lost text. It
            # lives as long as the memory it belongs to (a turn memory expires).
            restatement.status, restatement.merged_into, restatement.expires_at = MERGED, twin.id, twin.expires_at
            self._write([restatement], [vector])
        self._write([twin])

    def restatements(self, memory_id: str) -> list[MemoryRecord]:
        """The restatements folded into ``memory_id``, oldest first."""
        got = self.collection.get(where={"$and": [{"status": MERGED}, {"merged_into": memory_id}]}, include=["documents", "metadatas"])
        records = [MemoryRecord.from_chroma(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(records, key=lambda r: r.created_at)

    def unmerge(self, ctx: Context, id: Any) -> dict[str, Any]:
        """Undo a merge: the restatement ``id`` becomes a memory of its own again.

        The memory it was folded into loses the count, and the agents and users that only
        this restatement brought. Everything is checked before anything is written.
        """
        ctx.require_write()
        restatement = self._one(id, ctx.can_change)
        if restatement.status != MERGED:
            raise InvalidInput(f"memory {restatement.id} is {restatement.status}, not a merged restatement; "
                               "unmerge takes the id of a restatement (see the memory's restatements)")
        parent = self._records([restatement.merged_into], ctx.can_change).get(restatement.merged_into)
        t = now()
        added_agents = set(restatement.extra.get("added_agents") or ()) - {"-"}
        added_users = set(restatement.extra.get("added_users") or ()) - {"-"}
        restatement.extra.update(added_agents=None, added_users=None)  # None deletes the keys
        restatement.status, restatement.merged_into, restatement.updated_at = ACTIVE, "", t
        restatement.expires_at = t + self.turn_ttl if restatement.scope == "turn" else 0.0
        self._write([restatement])
        if parent is not None:
            others = [r for r in self.restatements(parent.id) if r.id != restatement.id]
            still = {a for r in others for a in r.extra.get("added_agents", ())}
            parent.agents = [a for a in parent.agents if a not in added_agents or a in still]
            still = {u for r in others for u in r.extra.get("added_users", ())}
            parent.users = [u for u in parent.users if u not in added_users or u in still]
            parent.seen_count = max(1, parent.seen_count - restatement.seen_count)
            parent.updated_at = t
            self._write([parent])
        return {"id": restatement.id, "status": "unmerged", "unmerged_from": parent.id if parent else restatement.id}

    def import_records(self, records: list[MemoryRecord], dedup: bool = True, batch: int = 256) -> dict[str, int]:
        """Write whole records (ids, provenance, timestamps kept), embedding in batches.

        With ``dedup`` a record that is the same fact as an active memory in its scope domain
        is merged into it (agents and counts combined) instead of stored again; a record whose
        id already exists is replaced, so importing an export twice changes nothing.
        """
        counts = {"created": 0, "merged": 0, "replaced": 0, "redacted": 0}
        for n, record in enumerate(records, 1):  # checked and screened before anything is written
            if record.status == MERGED or record.merged_into:
                raise InvalidInput(f"record {n} ({record.id}) is a restatement of another memory; "
                                   "import takes memories (history is rebuilt by merging); nothing was imported")
            record.content, kinds = secrets.screen(record.content, self.secrets_policy, what=f"record {n} ({record.id})")
            counts["redacted"] += bool(kinds)
            secrets.screen_tags(record.tags, what=f"record {n} ({record.id}): ", outcome="nothing was imported")
            for key, value in record.provenance():
                if (secrets.find if key.startswith("extra.") else secrets.find_known)(value):
                    raise InvalidInput(f"record {n} ({record.id}): {key} looks like a secret; nothing was imported")
        for start in range(0, len(records), batch):
            with self.one_commit():  # one Chroma write (and fsync) per batch
                self._import_batch(records[start : start + batch], dedup, counts)
        return counts

    def _import_batch(self, chunk: list[MemoryRecord], dedup: bool, counts: dict[str, int]) -> None:
        """Import one batch inside ``one_commit``: later records see the earlier ones staged."""
        vectors = self.embedder.embed([r.content for r in chunk])
        found = self.collection.get(ids=[r.id for r in chunk], include=["documents", "metadatas"])
        existing = {i: MemoryRecord.from_chroma(i, d, m) for i, d, m in zip(found["ids"], found["documents"], found["metadatas"])}
        for record, vector in zip(chunk, vectors):
            before = existing.get(record.id)
            if before is not None and before.status == MERGED:  # imported before and folded into its twin
                counts["merged"] += 1
                continue
            if before is not None:  # a replaced memory keeps what merges added since
                record.agents = appended_once(record.agents + before.agents, "")
                record.users = appended_once(record.users + before.users, "")
                record.seen_count = max(record.seen_count, before.seen_count)
            if dedup and record.id not in existing and record.status == ACTIVE:
                twin = self._same_fact(record, vector)
                if twin is not None:
                    self._fold(twin, record, vector)
                    counts["merged"] += 1
                    continue
            counts["replaced" if record.id in existing else "created"] += 1
            self._write([record], [vector])

    def _same_fact(self, record: MemoryRecord, vector: np.ndarray) -> MemoryRecord | None:
        keys = {k: getattr(record, k) for k in SCOPE_KEYS[record.scope]}
        facts = Facts.of(record.content)
        for candidate, cosine in self._neighbours(vector, _domain(record.scope, record.user_id, keys), record.content):
            if judge(facts, Facts.of(candidate.content), cosine).merge:
                return candidate
        return None

    # ---- recall --------------------------------------------------------------------------

    def visibility(self, ctx: Context, scope: Any = None, tags: Any = None, agent: Any = None) -> Visibility:
        scope = check_scope(scope)
        tags = check_tags(tags)
        if agent is not None and not isinstance(agent, str):
            raise InvalidInput(f"agent must be a string, got {agent!r}")
        return Visibility(ctx, scopes=(scope,) if scope else Visibility.scopes, tags=tuple(tags), agent=agent or "", now=now())

    def recall(
        self,
        ctx: Context,
        query: Any,
        limit: Any = 5,
        scope: Any = None,
        tags: Any = None,
        agent: Any = None,
        min_score: Any = None,
    ) -> list[dict[str, Any]]:
        """The memories visible to ``ctx`` that best match ``query``, best first."""
        query = check_content(query, "query")
        limit = check_limit(limit, 5, MAX_RECALL_LIMIT)
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or math.isnan(min_score)):
            raise InvalidInput(f"min_score must be a number, got {min_score!r}")
        vis = self.visibility(ctx, scope, tags, agent)
        if vis.where() is None:  # nothing can be visible
            return []
        records, dense, lexical = self.candidates(query, vis, max(50, limit * POOL_FACTOR))
        t = now()
        fused = ranking.fuse(
            dense, lexical,
            {i: r.importance for i, r in records.items()},
            {i: r.age_days(t) for i, r in records.items()},
            self.weights,
        )
        ranked = [s for s in _newer_first(fused, {i: r.conflicts for i, r in records.items()})
                  if min_score is None or s.score >= min_score]
        return [{
            "id": r.id, "content": r.content, "score": round(s.score, 4), "scope": r.scope,
            "agents": r.agents, "users": r.users, "importance": r.importance, "tags": r.tags,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at),
        } for s, r in self._read_back(ranked, vis, limit)]

    def _read_back(self, ranked: list[ranking.Scored], vis: Visibility, limit: int) -> list[tuple[ranking.Scored, MemoryRecord]]:
        """The first ``limit`` of ``ranked`` as they stand now (``_current``), still visible.

        The indexes rank; ``_current`` says what is shown, read a few ids at a time (on a
        Chroma server a fetch by id costs about its length): a memory forgotten by a replica
        since the last refresh is passed over, and fields a merge changed are current.
        """
        out: list[tuple[ranking.Scored, MemoryRecord]] = []
        start = 0
        while len(out) < limit and start < len(ranked):
            batch = ranked[start : start + 2 * (limit - len(out))]
            start += len(batch)
            found = self._current([s.id for s in batch], vis.matches)
            out += [(s, found[s.id]) for s in batch if s.id in found]
        return out[:limit]

    def candidates(self, query: str, vis: Visibility, pool: int) -> tuple[dict[str, MemoryRecord], dict[str, float], dict[str, float]]:
        """The visible records a query could return, with cosine for each and BM25 for some.

        The dense top ``pool`` comes from the vector index, the lexical top ``pool`` from the
        BM25 index, both refreshed from the collection first and both filtered by the same
        visibility mask; one matrix product gives every candidate its cosine. The records
        are the indexes' copies: what ``recall`` returns it reads again (``_read_back``).
        """
        vector = self._embed_one(query)
        self._fresh_indexes()
        scores = self.vectors.score(vector)
        visible = Where.visible(vis)
        dense = {h.id: h.cosine for h in scores.top(visible, pool)}
        # Restatements are searched on behalf of the memory they were folded into, in a pool of
        # their own, so that a memory restated sixty times cannot crowd out the others.
        restated: dict[str, float] = {}  # memory id -> best cosine of its restatements
        if self.lexical.restatements:
            for h in scores.top(Where.visible(dataclasses.replace(vis, statuses=(MERGED,))), RESTATEMENT_POOL):
                parent = str(h.meta.get("merged_into") or "")
                restated[parent] = max(restated.get(parent, -1.0), h.cosine)
        searched = dataclasses.replace(vis, statuses=(ACTIVE, MERGED)) if self.lexical.restatements else vis
        lexical: dict[str, float] = {}
        for doc_id, coverage in self.lexical.search(query, scores.admits_all(Where.visible(searched)), pool + len(self.lexical.restatements)):
            meta = self.lexical.meta(doc_id)
            target = str(meta.get("merged_into") or doc_id) if meta.get("status") == MERGED else doc_id
            lexical[target] = max(lexical.get(target, 0.0), coverage)
        lexical = dict(sorted(lexical.items(), key=lambda kv: kv[1], reverse=True)[:pool])
        others = list(dict.fromkeys([*lexical, *restated]))
        admitted = dict(zip(others, scores.admits_all(visible)(others)))
        for doc_id in others:
            cosine = dense[doc_id] if doc_id in dense else scores.cosine(doc_id) if admitted[doc_id] else None
            if cosine is not None:
                dense[doc_id] = max(cosine, restated.get(doc_id, -1.0))
        records = {i: r for i in dense if (r := self.lexical.record(i)) is not None}
        dense = {i: c for i, c in dense.items() if i in records}
        lexical = {i: s for i, s in lexical.items() if i in dense}
        return records, dense, lexical

    # ---- read ----------------------------------------------------------------------------

    def get(self, ctx: Context, memory_id: Any) -> dict[str, Any]:
        """A memory the caller may see, by id, with its full provenance and history fields.

        ``restatements`` lists what was merged into it (each one can be ``unmerge``d).
        """
        record = self._one(memory_id, ctx.can_read)
        out = record.to_dict()
        out["restatements"] = [
            {"id": r.id, "content": r.content, "agents": r.agents, "users": r.users, "created_at": iso(r.created_at)}
            for r in self.restatements(record.id)
        ]
        return out

    def _pages(self, where: dict | None, include: list[str]) -> Iterable[dict[str, Any]]:
        """The collection's records matching ``where``, a page of ``_PAGE`` at a time."""
        offset = 0
        while True:
            page = self.collection.get(where=where, include=include, limit=_PAGE, offset=offset)
            yield page
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _iter_where(self, where: dict | None) -> Iterable[MemoryRecord]:
        for page in self._pages(where, ["documents", "metadatas"]):
            for i, doc_id in enumerate(page["ids"]):
                yield MemoryRecord.from_chroma(doc_id, page["documents"][i], page["metadatas"][i])

    def list(self, ctx: Context, scope: Any = None, tags: Any = None, agent: Any = None, limit: Any = None,
             forgotten: Any = False, everywhere: Any = False, merged: Any = False) -> list[dict[str, Any]]:
        """Visible memories, most recently updated first.

        ``forgotten``: the caller's forgotten memories instead, each with ``restorable_until``
        (after it ``purge`` deletes them), so that ``restore`` can be given their ids.
        ``merged``: the restatements folded into memories instead (each names its
        ``merged_into``). ``everywhere``: every memory the caller may read by id, in any
        project its grant covers and any of its sessions, not only those visible here (what
        a memory browser lists; ``Visibility.reachable``).
        """
        limit = check_limit(limit, 1_000_000, 1_000_000)
        for name, flag in (("forgotten", forgotten), ("everywhere", everywhere), ("merged", merged)):
            if not isinstance(flag, bool):
                raise InvalidInput(f"{name} must be true or false, got {flag!r}")
        if forgotten and merged:
            raise InvalidInput("give forgotten or merged, not both")
        vis = self.visibility(ctx, scope, tags, agent)
        if forgotten:  # what the caller could restore, so a writer's business only
            ctx.require_write()
        vis = dataclasses.replace(vis, statuses=(FORGOTTEN if forgotten else MERGED if merged else ACTIVE,))
        where = vis.reachable() if everywhere else vis.where()
        records = list(self._iter_where(where)) if where else []
        if everywhere:
            records = [r for r in records if vis.reaches(r.to_metadata())]
        if forgotten:
            records = [r for r in records if ctx.can_change(r.to_metadata())]
        records.sort(key=lambda r: r.updated_at, reverse=True)
        out = [r.to_dict() for r in records[:limit]]
        if forgotten:
            for item, r in zip(out, records):
                item["restorable_until"] = iso(r.updated_at + self.forget_retention)
        return out

    def context(self, ctx: Context, limit: Any = None) -> list[dict[str, Any]]:
        """The visible memories that matter most when there is no query yet (a session start).

        Ordered by ``ranking.priority``: importance first, then how often the fact was
        asserted and how recently; turn memories are left out (they belong to one prompt).
        """
        limit = check_limit(limit, 20, 200)
        where = self.visibility(ctx).where()
        records = [r for r in self._iter_where(where) if r.scope != "turn"] if where else []
        t = now()
        records.sort(key=lambda r: ranking.priority(r.importance, r.seen_count, r.age_days(t)), reverse=True)
        return [r.to_dict() for r in records[:limit]]

    def stats(self, ctx: Context) -> dict[str, Any]:
        """Active memory totals for the caller's user: by scope, agent and project."""
        by_scope: dict[str, int] = {}
        by_agent: dict[str, int] = {}
        by_project: dict[str, int] = {}
        total = retired = 0
        for r in self._iter_where({"user_id": ctx.user_id}):
            if r.status == MERGED:  # history of another memory, counted there
                continue
            if r.status != ACTIVE:
                retired += 1
                continue
            total += 1
            by_scope[r.scope] = by_scope.get(r.scope, 0) + 1
            for a in r.agents or ["unknown"]:
                by_agent[a] = by_agent.get(a, 0) + 1
            if r.project:
                by_project[r.project] = by_project.get(r.project, 0) + 1
        return {"user_id": ctx.user_id, "total": total, "retired": retired, "by_scope": by_scope, "by_agent": by_agent, "by_project": by_project}

    def update(self, ctx: Context, id: Any, importance: Any = None, tags: Any = None) -> dict[str, Any]:
        """Change an active memory's importance or tags (or both) in place; its text, id and history stay.

        ``tags`` replaces the memory's tags (``[]`` clears them). They are checked and screened
        for credentials as ``remember``'s are: tags are shown in every agent's context and
        exported. Everything is checked before anything is written, so a refused update
        changes nothing.
        """
        ctx.require_write()
        if importance is None and tags is None:
            raise InvalidInput("give importance, tags or both; nothing was changed")
        importance = check_importance(importance)
        tags = secrets.screen_tags(check_tags(tags), outcome="nothing was changed") if tags is not None else None
        record = self._one(id, ctx.can_change)
        if record.status != ACTIVE:
            newer = f" by {record.superseded_by}" if record.superseded_by else ""
            raise InvalidInput(f"memory {record.id} is {record.status}{newer}, not active; nothing was changed")
        if importance is not None:
            record.importance = importance
        if tags is not None:
            record.tags = tags
        record.updated_at = now()
        self._write([record])
        return {"id": record.id, "status": "updated", "importance": record.importance, "tags": record.tags}

    # ---- forget --------------------------------------------------------------------------

    def forget(
        self,
        ctx: Context,
        id: Any = None,
        ids: Any = None,
        query: Any = None,
        confirm: Any = False,
        limit: Any = 10,
    ) -> dict[str, Any]:
        """Retire memories by id, ids, or query; ``restore`` brings them back within the retention.

        By query only the memory the query clearly names is taken (``ranking.named_by``:
        well above recall's cut-off and clearly above the next);
        the others that matched are returned as ``candidates``, never taken, so that a
        neighbour on the same topic survives. Without ``confirm`` (a real boolean) a query
        only lists what it would take (``would_forget``); passing those ids back forgets
        exactly them. All ids are checked before any is retired: an unknown id changes nothing.
        """
        ctx.require_write()
        if not isinstance(confirm, bool):
            raise InvalidInput(f"confirm must be true or false, got {confirm!r}")
        given = [x for x in (id, ids, query) if x is not None]
        if len(given) != 1:
            raise InvalidInput("give exactly one of id, ids or query")
        candidates: list[dict[str, Any]] = []
        if query is not None:
            limit = check_limit(limit, 10, MAX_RECALL_LIMIT - 1)
            # One more than asked: whether the best stands clear of the next decides whether
            # it is named at all, and the rest are the candidates.
            taken, others = ranking.named_by(self.recall(ctx, query, limit=limit + 1))
            candidates = _briefly(others)
            if not confirm:
                return {"forgotten": [], "would_forget": _briefly(taken), "candidates": candidates, "confirm_needed": bool(taken)}
            targets = [m["id"] for m in taken]
        else:
            if ids is not None and (isinstance(ids, str) or not isinstance(ids, (list, tuple)) or not ids):
                raise InvalidInput("ids must be a non-empty list of memory ids")
            targets = [check_id(x) for x in (ids if ids is not None else [id])]
        targets = list(dict.fromkeys(targets))
        records = self._records(targets, ctx.can_change) if targets else {}
        unknown = [t for t in targets if t not in records]
        if unknown:
            raise NotFound(f"no memory with id {', '.join(map(repr, unknown))}; nothing was forgotten")
        restated = [t for t in targets if records[t].status == MERGED]
        if restated:
            raise InvalidInput(f"{', '.join(map(repr, restated))} {'is a restatement' if len(restated) == 1 else 'are restatements'} of "
                               f"{', '.join(repr(records[t].merged_into) for t in restated)}: forget that memory, or unmerge "
                               "the restatement first; nothing was forgotten")
        t = now()
        retired = [records[i] for i in targets if records[i].status == ACTIVE]
        for r in retired:
            r.status, r.updated_at = FORGOTTEN, t
        if retired:
            self._write(retired)
        out: dict[str, Any] = {"forgotten": [r.id for r in retired]}
        if query is not None:
            out["candidates"] = candidates
        return out

    def restore(self, ctx: Context, ids: Any) -> dict[str, Any]:
        """Bring forgotten memories back (until ``purge`` deletes them, ``forget_retention`` after).

        Every id must be a forgotten memory the caller may change, still within the retention,
        or nothing is restored. Restatements merged into a memory went with it and come back
        with it. When the same fact was remembered again while it was forgotten, the restored
        memory is merged into that one (``merged_into``), as a second remember would be: the
        fact is stored once, and nothing of either is lost.
        """
        ctx.require_write()
        if isinstance(ids, str) or not isinstance(ids, (list, tuple)) or not ids:
            raise InvalidInput("ids must be a non-empty list of memory ids")
        targets = list(dict.fromkeys(check_id(x) for x in ids))
        records = self._records(targets, ctx.can_change)
        unknown = [i for i in targets if i not in records]
        if unknown:
            raise NotFound(f"no memory with id {', '.join(map(repr, unknown))} (purged, or never here); nothing was restored")
        live = [i for i in targets if records[i].status != FORGOTTEN]
        if live:
            raise InvalidInput(f"{', '.join(f'{i!r} is {records[i].status}' for i in live)}, not forgotten; nothing was restored")
        t = now()
        expired = [i for i in targets if records[i].updated_at + self.forget_retention < t]
        if expired:
            raise NotFound(f"{', '.join(map(repr, expired))} passed the retention and will be purged; nothing was restored")
        vectors = self._stored_vectors(targets)
        merged: dict[str, str] = {}
        for memory_id in targets:
            record = records[memory_id]
            record.status, record.updated_at = ACTIVE, t
            vector = np.asarray(vectors[memory_id], dtype=np.float32)
            twin = self._same_fact(record, vector)
            if twin is None:
                self._write([record])
            else:
                history = self.restatements(memory_id)
                for restatement in history:  # one level of history: they belong to the twin now
                    restatement.merged_into = twin.id
                if history:
                    self._write(history)
                self._fold(twin, record, vector)
                merged[memory_id] = twin.id
        return {"restored": targets, **({"merged_into": merged} if merged else {})}

    def clear(self, ctx: Context, scope: Any = None) -> dict[str, Any]:
        """Forget every memory visible to ``ctx`` (optionally one scope)."""
        where = self.visibility(ctx, scope).where()
        ids = [r.id for r in self._iter_where(where)] if where else []
        forgotten: list[str] = []
        for start in range(0, len(ids), 500):
            forgotten += self.forget(ctx, ids=ids[start : start + 500])["forgotten"]
        return {"forgotten": len(forgotten)}

    def purge(self, older_than: float | None = None) -> int:
        """Delete memories forgotten longer ago than ``older_than`` (default the retention), and expired turn memories.

        Superseded records stay: they are the history of the fact that replaced them.
        """
        self._may_write()
        t = now()
        cutoff = t - (self.forget_retention if older_than is None else older_than)
        where = {"$or": [
            {"$and": [{"status": FORGOTTEN}, {"updated_at": {"$lt": cutoff}}]},
            {"$and": [{"scope": "turn"}, {"expires_at": {"$lt": t}}]},
        ]}
        doomed = self.collection.get(where=where, include=[])["ids"]
        if doomed:  # the history of a purged memory goes with it
            doomed += self.collection.get(where={"$and": [{"status": MERGED}, {"merged_into": {"$in": doomed}}]}, include=[])["ids"]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            self.collection.delete(ids=chunk)
            self.indexes.remove(chunk)
        return len(doomed)

    def count(self) -> int:
        return self.collection.count()
