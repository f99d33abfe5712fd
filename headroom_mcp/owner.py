"""Owning a store: its lock, the open ``MemoryStore`` and the threads that run its calls.

Embedded Chroma is not safe for several processes writing one directory, so exactly one
process at a time owns a data dir: the daemon (``daemon``), the HTTP host
(``hosting.serve_http``), or a script with ``Memory(embedded=True)``. All three own it the
same way, through ``StoreOwner``:

>>> with StoreOwner(settings) as owner:     # doctest: +SKIP
...     store = owner.open().result()

Building one takes the data dir's lock (``StoreLocked`` when another process holds it) and
starts the threads; the store opens on the one writer thread, so calls queued behind the
opening wait for it; leaving lets queued calls finish, then frees the lock.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import HeadroomError
from .paths import DaemonPaths, StoreLock

if TYPE_CHECKING:
    from .store.memory_store import MemoryStore

#: The daemon's logger: its log (``daemon.log``) tells when and how the store opened.
log = logging.getLogger("headroom_mcp.daemon")

#: Threads that run reads beside the writer: enough for the cores to stay busy while a
#: read waits on Chroma's SQLite.
READERS = 4


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Return the C heap's free pages to the OS.

    glibc keeps freed memory for reuse, and the owner's heaps are shared by onnxruntime,
    Chroma's Rust core, the Go secret scanner and Python: after a store opens (the model's
    weights are folded from int8 to float32 through temporary copies) or a burst of writes,
    tens to hundreds of MB sit free inside them, fragmented, and count against the
    process's RSS for as long as it lives (bench/results/rss.md). ``malloc_trim`` gives
    them back; it takes 5-40 ms at 10,000 memories, so the daemon runs it once it has gone quiet.
    """
    if _TRIM is not None:
        _TRIM(0)


def open_store(settings: Settings) -> MemoryStore:
    """Open the store the settings describe (the caller must hold the lock); concurrent
    requests' texts are embedded together (``batching``)."""
    from .store.batching import Coalescing
    from .store.embedder import shared_embedder
    from .store.memory_store import MemoryStore

    return MemoryStore.open(Coalescing(shared_embedder(settings.embedder)), data_dir=settings.data_dir,
                            chroma_url=settings.chroma_url or None, turn_ttl=settings.turn_ttl,
                            secrets_policy=settings.secrets, forget_retention=settings.forget_retention,
                            min_free=settings.min_free)


class StoreOwner:
    """This process's claim on a data dir: the lock, the writer and readers, and the store.

    Every write runs on the one ``worker`` thread, so merges of the same fact cannot race;
    reads may run beside it on ``readers`` (the indexes and onnxruntime release the GIL).
    A context manager: leaving it closes everything in order.
    """

    def __init__(self, settings: Settings, serving: bool = True):
        """Claim the store: take its lock (``StoreLocked`` when another process holds it) and
        start its threads; ``open`` opens the store.

        ``serving``: a process that will answer many calls (the daemon, the HTTP host) warms
        the model and checks the derived indexes as it opens, so the first caller does not wait
        on either; a script's embedded store (``serving=False``) opens as it is, as a short
        script wants."""
        self.settings = settings
        self.serving = serving
        self.paths = DaemonPaths.for_data_dir(settings.data_dir)
        self.paths.prepare()
        self._lock = StoreLock(self.paths.lock)
        self._lock.acquire()
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.readers = concurrent.futures.ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read")
        #: The open store; None until ``opened`` is set, and after a failed opening.
        self.store: MemoryStore | None = None
        #: Why the store did not open (then every call is answered with it).
        self.open_error: HeadroomError | None = None
        #: Set once the store is open, or failed to: reads wait for it (writes queue behind it).
        self.opened = threading.Event()
        self._opening: concurrent.futures.Future[MemoryStore] | None = None

    def open(self) -> concurrent.futures.Future[MemoryStore]:
        """Open the store on the writer (once; later calls return the same future)."""
        if self._opening is None:
            self._opening = self.worker.submit(self._open)
        return self._opening

    def _open(self) -> MemoryStore:
        """Open, warm the embedder and check the derived indexes (rebuilt if they do not match
        the collection); on failure, record why before any queued call runs (same thread)."""
        t = time.perf_counter()
        try:
            store = open_store(self.settings)
            health = self._prepare(store) if self.serving else None
        except Exception as exc:
            self.open_error = exc if isinstance(exc, HeadroomError) else HeadroomError(
                f"could not open the store in {self.paths.data_dir}: {type(exc).__name__}: {exc} (see {self.paths.log})")
            raise
        else:
            self.store = store
        finally:
            self.opened.set()
        if health is not None:
            log.info("store open in %.2fs: %s", time.perf_counter() - t, health)
        return store

    @staticmethod
    def _prepare(store: MemoryStore) -> dict[str, Any]:
        """Ready a store for serving: the model warmed, the indexes checked against the
        collection (and rebuilt if they differ), and the memory that took handed back."""
        store.embedder.embed(["warm up"])
        health = store.check()
        release_memory()
        return health

    def ready(self) -> MemoryStore:
        """The open store, once the opening is done; its failure, raised."""
        self.opened.wait()
        if self.open_error is not None:
            raise self.open_error
        assert self.store is not None
        return self.store

    def close(self) -> None:
        """Let queued calls finish (the store closes with its threads), then free the lock."""
        self.readers.shutdown(wait=True)
        self.worker.shutdown(wait=True)
        self._lock.release()

    def __enter__(self) -> StoreOwner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

