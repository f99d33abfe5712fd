"""``export``, ``import`` and ``backup``: memories out of the store and back in, as JSON lines
or as a copy of the whole store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import HeadroomError
from ..store.records import SCOPES
from .base import ALL, arg, print_result, session_named, verb

#: Records sent to the daemon per import request: each is one model run of 32 texts at a time
#: and one Chroma commit, about a second here, so the progress bar moves every second or so
#: (256 a request made fewer commits, but the bar stood still for several seconds at a time).
IMPORT_BATCH = 64


def _private_file(path: str) -> Any:
    """``path`` opened for writing, readable by its owner only: an export holds every memory
    the user can see, so it gets the store's own privacy (0600), not the umask's 0644.
    A file that exists is truncated and made 0600 too (only a regular file: never a tty's mode)."""
    import os
    import stat

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


@verb("export", "write visible memories as JSON lines (to a file or stdout)",
      arg("file", nargs="?", help="output file; stdout when omitted"),
      arg("--scope", choices=SCOPES),
      store=True)
def _export(args: argparse.Namespace, memory: Any) -> int:
    memories = memory.list(scope=args.scope, limit=ALL)
    out = _private_file(args.file) if args.file else sys.stdout
    try:
        for m in reversed(memories):  # oldest first, so an import replays history in order
            out.write(json.dumps(m, ensure_ascii=False) + "\n")
    finally:
        if args.file:
            out.close()
    if args.file:
        print(f"exported {len(memories)} memories to {args.file}", file=sys.stderr)
    return 0


def _read_jsonl(path: str, ctx: Any, named: bool) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of every record of a JSONL file, completed as import completes
    it, or an error naming the first bad line: the whole file is checked before anything is sent.
    ``named``: the user named this call's session (``--session``), which session-scoped
    records without one of their own then take."""
    from ..errors import InvalidInput
    from ..importing import record_from

    records = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
                if text.strip():
                    records.append((n, record_from(json.loads(text), ctx, named).to_dict()))
            except UnicodeDecodeError as exc:
                raise HeadroomError(f"{path}:{n}: not UTF-8 text (byte {exc.start}); nothing was imported") from None
            except InvalidInput as exc:
                raise HeadroomError(f"{path}:{n}: {exc}; nothing was imported") from None
            except ValueError as exc:
                raise HeadroomError(f"{path}:{n}: not JSON ({exc}); nothing was imported") from None
    return records


def _progress(total: int) -> Any:
    """A progress bar on stderr when it is a terminal; tqdm draws nothing otherwise."""
    from tqdm import tqdm

    return tqdm(total=total, desc="import", unit=" memories", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True)


#: How ``import``'s counts read to a person (``--json`` keeps the API's keys): a record whose id
#: the store already holds is overwritten by the file's copy, which is not a supersede.
IMPORT_WORDS = {"replaced": "updated (id already in the store)"}


@verb("import", "read memories from JSON lines (deduplicated against the store)",
      arg("file", help="a file written by export, or any JSONL whose records have at least a content"),
      arg("--no-dedup", dest="dedup", action="store_false", help="keep every record, even repeats of stored facts"),
      store=True)
def _import(args: argparse.Namespace, memory: Any) -> int:
    records = _read_jsonl(args.file, memory.context, session_named(args))
    totals: dict[str, int] = {}
    with _progress(len(records)) as bar:
        for start in range(0, len(records), IMPORT_BATCH):
            batch = records[start:start + IMPORT_BATCH]
            try:
                result = memory.import_records([record for _, record in batch], dedup=args.dedup)
            except HeadroomError as exc:
                if not start:
                    raise
                raise HeadroomError(f"{args.file}:{batch[0][0]}-{batch[-1][0]}: {exc} (from line {batch[0][0]} on; "
                                    f"the {start} records before it were imported)") from None
            for key, value in result.items():
                totals[key] = totals.get(key, 0) + value
            bar.update(len(batch))
    print_result(args, totals, ", ".join(f"{IMPORT_WORDS.get(k, k)} {v}" for k, v in totals.items()) or "nothing to import")
    return 0


@verb("backup", "copy the live store into a new directory (itself a data dir)",
      arg("dest", help="a new or empty directory"),
      store=True)
def _backup(args: argparse.Namespace, memory: Any) -> int:
    from pathlib import Path

    dest = Path(args.dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise HeadroomError(f"{args.dest} is a file: back up into a new (or empty) directory")
    r = memory.backup(args.dest)
    print_result(args, r, f"backed up {r['records']} records to {r['dest']} (use it as a data dir: --data-dir {r['dest']})")
    return 0
