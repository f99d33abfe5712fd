"""How an embedded store's files fail, and what the owner tells the user instead of a traceback.

Two faults, both found by trying them (tests/test_faults.py):

**Disk full.** Chroma (1.5, Rust core) first appends a write to its log inside
``chroma.sqlite3``, then applies the log ("compaction") to its metadata segment and vector
index. When the disk fills, either step can fail. If the append failed, nothing was stored
(SQLite's "database or disk is full"). If compaction failed, the record *is* stored: it
is in the log, and the next process that opens the store applies it. Either way that
client is finished: its next write blocks forever inside Chroma while holding the GIL, so
the whole process stops answering, even after space is freed. Hence:

- writes are refused by the store itself while free space is below a reserve
  (``HEADROOM_MCP_MIN_FREE_MB``), so in the usual case (a disk filling up) Chroma never
  meets ENOSPC, reads keep working, and writes work again as soon as space is freed;
- when Chroma fails anyway, the error says what happened to the record (``classify_write``),
  and the store is *retired*: the owner must not write through that client again. The
  daemon answers, then exits; the next call starts a fresh one.

**Damaged file.** A truncated or overwritten ``chroma.sqlite3`` makes Chroma fail with a
bare SQLite code, and a zero-length one is silently initialised as a new, empty store
(losing track of the vector files beside it). ``inspect`` looks at the file before Chroma
opens it, ``explain_open_error`` names the cause when Chroma fails, and nothing is written
to a damaged file, so it stays byte-identical for recovery.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import HeadroomError, StoreDamaged, StoreFull

#: The SQLite file that holds every record (and Chroma's write log).
SQLITE_FILE = "chroma.sqlite3"
#: Files SQLite keeps beside it; they say nothing about whether the store held data.
_SQLITE_COMPANIONS = {SQLITE_FILE, f"{SQLITE_FILE}-wal", f"{SQLITE_FILE}-shm", f"{SQLITE_FILE}-journal"}
#: Free space kept in reserve, bytes: one write (an import batch of 256, or a vector index
#: file growing) must never reach ENOSPC inside Chroma.
DEFAULT_MIN_FREE = 64 * 1024 * 1024
_MAGIC = b"SQLite format 3\x00"
#: SQLite result codes as Chroma words them: "(code: 11) database disk image is malformed".
_SQLITE_CODE = re.compile(r"\(code: (\d+)\)\s*([^\n]*)")
_CORRUPT, _FULL, _NOTADB = 11, 13, 26

#: What ``classify_write`` says about a failed Chroma write.
NOT_STORED = "not stored"
STORED = "stored"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def disk_full(chroma_dir: Path, cause: str = "No space left on device", outcome: str = "nothing was stored",
              failed: str = "write") -> StoreFull:
    """The one wording of a full disk, naming the data dir."""
    return StoreFull(f"disk full: the store in {chroma_dir.parent} could not {failed} ({cause}); {outcome}; free space and retry")


def ensure_space(chroma_dir: Path, min_free: int) -> None:
    """Refuse a write, before Chroma sees it, while free space is below ``min_free``."""
    free = free_bytes(chroma_dir)
    if free < max(min_free, 1):
        raise disk_full(chroma_dir, f"No space left on device: {_mb(free)} free, {_mb(min_free)} kept in reserve")


def _sqlite_code(exc: BaseException) -> tuple[int, str] | None:
    found = _SQLITE_CODE.search(str(exc))
    return (int(found.group(1)), found.group(2).strip()) if found else None


def classify_write(exc: BaseException) -> str | None:
    """After Chroma raised on a write: ``STORED``, ``NOT_STORED``, or None when not a storage fault.

    A compaction failure comes after the record reached Chroma's log, so it is stored
    (and applied when the store is next opened); a full disk on the log append is not.
    """
    text = str(exc)
    if "Error in compaction" in text or "Failed to apply logs" in text:
        return STORED
    code = _sqlite_code(exc)
    if (code and code[0] == _FULL) or "No space left on device" in text or "disk is full" in text:
        return NOT_STORED
    return None


def damaged(chroma_dir: Path, cause: str) -> StoreDamaged:
    """The one wording of a damaged store: which file, why, and how to get the data back."""
    return StoreDamaged(
        f"the store file {chroma_dir / SQLITE_FILE} is damaged ({cause}); nothing was changed. "
        f"Restore a backup (a `headroom-mcp backup DEST` copy: run with --data-dir DEST, or put its chroma/ "
        f"in place of {chroma_dir}), or move {chroma_dir} aside to start an empty store"
    )


def _holds_more_than_sqlite(chroma_dir: Path) -> bool:
    """Are there store files besides the SQLite file (a collection's vector index)?"""
    return any(entry.name not in _SQLITE_COMPANIONS for entry in chroma_dir.iterdir())


#: A write-ahead log's first word (its two checksum byte orders), and its header and frame-header sizes.
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER, _FRAME_HEADER = 32, 24


def _wal_holds(file: Path, pages: range, page_size: int) -> bool:
    """Does the write-ahead log beside ``file`` hold every page of ``pages``, committed?

    A process killed inside a checkpoint leaves the header counting pages the file does not
    hold yet; SQLite reads them from the log on open, so the file is short but nothing is
    lost. Only frames of this log's generation (its salts) up to its last commit count: a
    stale or unrelated log beside a cut file does not make it whole.
    """
    try:
        with open(file.with_name(f"{file.name}-wal"), "rb") as wal:
            size = os.fstat(wal.fileno()).st_size
            header = wal.read(_WAL_HEADER)
            if (len(header) < _WAL_HEADER or int.from_bytes(header[:4], "big") not in _WAL_MAGIC
                    or int.from_bytes(header[8:12], "big") != page_size):
                return False
            committed: set[int] = set()
            pending: set[int] = set()
            while wal.tell() + _FRAME_HEADER + page_size <= size and (frame := wal.read(_FRAME_HEADER))[8:16] == header[16:24]:
                pending.add(int.from_bytes(frame[:4], "big"))
                if int.from_bytes(frame[4:8], "big"):  # a commit frame: the transaction is whole
                    committed |= pending
                    pending = set()
                wal.seek(page_size, os.SEEK_CUR)
    except OSError:
        return False
    return all(page in committed for page in pages)


def _header_problem(file: Path, size: int) -> str | None:
    """What is wrong with a non-empty SQLite file, judged from its 100-byte header, or None."""
    with open(file, "rb") as f:
        header = f.read(100)
    if not header.startswith(_MAGIC):
        return "file is not a database"
    if len(header) < 100:
        return f"truncated: {size} bytes, shorter than a database header"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when the "version valid for" number matches the change counter.
    if header[92:96] == header[24:28] and size < pages * page_size and not _wal_holds(file, range(size // page_size + 1, pages + 1), page_size):
        return f"truncated: {size} of {pages * page_size} bytes"
    return None


def inspect(chroma_dir: Path) -> None:
    """Raise ``StoreDamaged`` when the store's SQLite file is missing, empty or cut short.

    A brand-new data dir (no file, or an empty file and nothing else) passes: Chroma
    creates the store. An empty or missing file next to a collection's vector files is a
    lost store, never a fresh one: Chroma would otherwise initialise it over the remains.
    """
    if not chroma_dir.is_dir():
        return
    file = chroma_dir / SQLITE_FILE
    size = file.stat().st_size if file.exists() else None
    if not size:
        if _holds_more_than_sqlite(chroma_dir):
            raise damaged(chroma_dir, "the file is missing" if size is None else "the file is empty (0 bytes) "
                          "but the store's vector index files are beside it")
        return
    problem = _header_problem(file, size)
    if problem:
        raise damaged(chroma_dir, problem)


def explain_open_error(chroma_dir: Path, exc: BaseException, min_free: int) -> HeadroomError | None:
    """The clear error for Chroma failing to open a store, or None when it is not a file fault."""
    code = _sqlite_code(exc)
    if code and code[0] in (_CORRUPT, _NOTADB):
        return damaged(chroma_dir, code[1])
    outcome = classify_write(exc)
    if outcome is not None:  # opening applies the log, so it can meet a full disk too
        free = free_bytes(chroma_dir)
        if free < max(min_free, 1024 * 1024) or outcome == NOT_STORED:
            return disk_full(chroma_dir, f"No space left on device: {_mb(free)} free", failed="open",
                             outcome="opening applies the writes Chroma logged, which needs space")
    return None
