"""What every verb shares: the ``verb`` registration, the global flags, output and stdin.

A verb is one function, registered with its arguments beside it (as sqlite-utils does with
click)::

    @verb("show", "show one memory with its provenance", arg("id"), store=True)
    def _show(args, memory): ...

``build_parser`` and ``run`` (in the package's ``__init__``) are loops over ``VERBS``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import HeadroomError

#: Records an export or a clear count at most (the store's own ceiling is far above any real one).
ALL = 1_000_000

#: Adds one verb's arguments to its parser.
Arguments = Callable[[argparse.ArgumentParser], Any]


@dataclass(frozen=True)
class Verb:
    """One ``headroom-mcp`` verb: its help line, arguments, usage check and handler."""

    name: str
    help: str
    arguments: tuple[Arguments, ...]
    #: ``handler(args) -> exit code``, or with ``store``, ``handler(args, memory)``.
    handler: Callable[..., int]
    #: Runs against the store: ``run`` opens a ``SyncMemory`` for it.
    store: bool
    #: Takes the global flags (``common``).
    common: bool
    #: A check of the command line argparse cannot express: the problem, or None.
    usage: Callable[[argparse.Namespace], str | None] | None


#: Every verb by name, in the order ``--help`` lists them (the order they are registered in).
VERBS: dict[str, Verb] = {}


def arg(*flags: str, **options: Any) -> Arguments:
    """One ``add_argument`` call, written where the verb is."""
    return lambda parser: parser.add_argument(*flags, **options)


def verb(name: str, help: str, *arguments: Arguments, store: bool = False, common: bool = True,
         usage: Callable[[argparse.Namespace], str | None] | None = None) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Register the decorated function as verb ``name`` taking ``arguments`` (see ``Verb``)."""

    def register(handler: Callable[..., int]) -> Callable[..., int]:
        VERBS[name] = Verb(name, help, arguments, handler, store, common, usage)
        return handler

    return register


def common(parser: argparse.ArgumentParser) -> None:
    """The global flags: each overrides the ``HEADROOM_MCP_*`` variable of the same name."""
    parser.add_argument("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)")
    parser.add_argument("--user", help="user id (HEADROOM_MCP_USER)")
    parser.add_argument("--agent", help="agent id for provenance (HEADROOM_MCP_AGENT)")
    parser.add_argument("--project", help="project id override (HEADROOM_MCP_PROJECT)")
    parser.add_argument("--session", help="session id (HEADROOM_MCP_SESSION)")
    parser.add_argument("--chroma-url", help="Chroma server URL (HEADROOM_MCP_CHROMA_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def print_result(args: argparse.Namespace, data: Any, text: str) -> None:
    """A verb's answer: ``data`` as JSON with ``--json``, else ``text`` for a person."""
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def say(text: str) -> None:
    """A message for the person (not the output a script reads): stderr, named."""
    print(f"headroom-mcp: {text}", file=sys.stderr)


def stdin_bytes() -> bytes:
    """Everything on stdin; nothing when it is closed (``<&-``), rather than an AttributeError."""
    return sys.stdin.buffer.read() if sys.stdin is not None else b""


def stdin_text(what: str) -> str:
    """stdin as text: bytes that are not UTF-8 are a clear error, not a decoding traceback."""
    data = stdin_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeadroomError(f"{what} on stdin is not UTF-8 text (byte {exc.start})") from None


def session_named(args: argparse.Namespace) -> bool:
    """Did the user name this call's session (``--session`` or HEADROOM_MCP_SESSION)? If not,
    it is a new one that no later call shares."""
    return bool(args.session or os.environ.get("HEADROOM_MCP_SESSION"))
