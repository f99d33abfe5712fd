"""The ``headroom-mcp`` command. Each verb mirrors a ``SyncMemory`` method or a tool.

Global flags (``--data-dir``, ``--user``, ``--agent``, ``--project``, ``--session``,
``--chroma-url``) override the ``HEADROOM_MCP_*`` variables of the same names.

Exit codes: 0 done; 1 an error the user can fix (one line on stderr says what), or part of
what was asked not done (an id already forgotten); 2 a usage error (argparse's own code,
given before any store is opened); 130 interrupted; 141 stdout closed before everything
was written (``| head``).

Each verb is one function with its arguments beside it (``base.verb``), in the module of
its kind: ``serving`` (daemon, serve, ui, token, hook), ``memories`` (remember, recall,
forget...), ``transfer`` (export, import, backup), ``setup`` (install, doctor, model).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import HeadroomError
from . import memories, serving, setup, transfer
from .base import VERBS, Verb, common, say

#: Exit status when stdout's reader left early: what a shell reports for a program stopped
#: by SIGPIPE, so a ``set -o pipefail`` script sees the output was cut, as with any tool.
CLOSED_STDOUT = 128 + signal.SIGPIPE
#: The modules that register the verbs (on import), in the order ``--help`` lists them.
MODULES = (serving, memories, transfer, setup)


def _in_order() -> list[Verb]:
    """Every verb, by ``MODULES`` and then as each module registers them."""
    names = [module.__name__ for module in MODULES]
    return sorted(VERBS.values(), key=lambda verb: names.index(verb.handler.__module__))


def build_parser() -> argparse.ArgumentParser:
    """The command line: each of ``VERBS`` with its arguments (and the global flags)."""
    parser = argparse.ArgumentParser(prog="headroom-mcp", description="Shared, persistent memory for coding agents.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in _in_order():
        p = sub.add_parser(verb.name, help=verb.help)
        if verb.common:
            common(p)
        for add in verb.arguments:
            add(p)
    return parser


def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each verb's own parser, by name: usage errors print the verb's usage, and the tests
    run every verb from this list, so a new verb is covered by them at once."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse an incoherent command line as argparse refuses a malformed one (the verb's
    usage, exit 2), before anything is opened."""
    check = VERBS[args.command].usage
    problem = check(args) if check else None
    if problem:
        verbs(parser)[args.command].error(problem)


def run(args: argparse.Namespace) -> int:
    """Run a parsed command line: a store verb gets a ``SyncMemory`` as the caller (agent ``cli``)."""
    verb = VERBS[args.command]
    if not verb.store:
        return verb.handler(args)
    from ..api import SyncMemory

    with SyncMemory(user_id=args.user, agent_id=args.agent or None, project=args.project, session_id=args.session,
                    data_dir=args.data_dir, chroma_url=args.chroma_url) as memory:
        if not memory.settings.agent_id:
            memory.settings.agent_id = "cli"
        return verb.handler(args, memory)


def _stdout_closed() -> int:
    """stdout's reader left (``| head``): stop quietly, as well-behaved CLIs do. What is still
    buffered goes to /dev/null, so the interpreter's last flush cannot fail again at exit
    ("Exception ignored ... BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return CLOSED_STDOUT


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The command line, or the exit code argparse chose (``--help``, ``--version``, a usage
    error), returned rather than raised so that its output is flushed inside ``main``."""
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # argparse would print the top-level usage; the verb's own says more
            verbs(parser)[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
        check_usage(parser, args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; every failure a user can cause ends in one line on stderr and
    an exit code (see the module's docstring), never a traceback."""
    parser = build_parser()
    try:
        parsed = _parse(parser, argv)
        if not isinstance(parsed, int) and sys.stdout is None and not (parsed.command == "daemon" and not parsed.action):
            # Started with stdout closed (``>&-``): every verb's answer would be lost after the
            # work was done (a memory stored, the caller told it failed), so do nothing.
            say("standard output is closed, so nothing was done: send it to a file, a pipe or /dev/null")
            return 1
        code = parsed if isinstance(parsed, int) else run(parsed)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except HeadroomError as exc:
        say(str(exc))
    except OSError as exc:  # a file the user named: missing, a directory, not permitted
        say(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        return 130
    return 1
