"""The verbs that read and change memories, each a thin layer over the ``SyncMemory`` method
of the same name: ``remember``, ``recall``, ``forget``, ``clear``, ``restore``, ``unmerge``,
``update``, ``list``, ``show``, ``stats``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import HeadroomError
from ..methods import RECALL_LIMIT
from ..store.records import SCOPES
from .base import ALL, arg, print_result, say, session_named, stdin_text, verb

#: Scopes whose memories only the same session sees: each CLI call is a new session unless
#: ``--session`` (or HEADROOM_MCP_SESSION) names one.
SESSION_SCOPES = ("session", "agent")


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


def _remember_usage(args: argparse.Namespace) -> str | None:
    """A session or agent memory is seen only by its session, and each CLI call is a new one:
    without a named session such a memory would be invisible to every later call."""
    if args.scope in SESSION_SCOPES and not session_named(args):
        return (f"--scope {args.scope} needs --session ID (or HEADROOM_MCP_SESSION): each headroom-mcp call is a "
                "new session, so no later call could see this memory; pass the same --session to the calls that "
                "should see it, or use --scope project or user")
    if args.scope == "turn":
        return ("--scope turn is for an agent's own turn (its hooks and tools know the turn id; a command line has "
                "none): use --scope session with --session ID for a short-lived note, or project or user")
    return None


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


@verb("remember", "store a fact",
      arg("content", help="the fact; - reads it from stdin"),
      arg("--scope", choices=SCOPES, help="session and agent need --session: each call is a new session otherwise"),
      arg("--importance", type=float),
      arg("--tag", dest="tags", action="append", help="repeatable"),
      arg("--supersedes", help="id of the memory this one replaces"),
      store=True, usage=_remember_usage)
def _remember(args: argparse.Namespace, memory: Any) -> int:
    content = stdin_text("the content") if args.content == "-" else args.content
    if args.content == "-" and not content.strip():
        raise HeadroomError("stdin was empty: nothing to remember")
    r = memory.remember(content, scope=args.scope, importance=args.importance, tags=args.tags, supersedes=args.supersedes)
    print_result(args, r, _remembered(r))
    return 0


@verb("recall", "search memories",
      arg("query"),
      arg("--limit", type=int, default=RECALL_LIMIT),
      arg("--scope", choices=SCOPES),
      arg("--tag", dest="tags", action="append"),
      arg("--by-agent", dest="by_agent", help="only memories asserted by this agent"),
      arg("--min-score", type=float),
      store=True)
def _recall(args: argparse.Namespace, memory: Any) -> int:
    results = memory.recall(args.query, limit=args.limit, scope=args.scope, tags=args.tags, agent=args.by_agent,
                            min_score=args.min_score)
    print_result(args, {"results": results}, _table(results) or "(nothing relevant)")
    return 0


def _forgot(ids: list[str]) -> str:
    return f"forgot {' '.join(ids)} (undo: headroom-mcp restore {' '.join(ids)})"


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


def _forget_usage(args: argparse.Namespace) -> str | None:
    if not args.ids and not args.query:
        return "say what to forget: memory ids (see headroom-mcp list), or --query TEXT"
    if args.ids and args.query:
        return "give memory ids or --query, not both"
    return None


@verb("forget", "forget memories by id, or by query (with --yes)",
      arg("ids", nargs="*", help="memory ids"),
      arg("--query"),
      arg("--yes", action="store_true", help="confirm forgetting by query"),
      store=True, usage=_forget_usage)
def _forget(args: argparse.Namespace, memory: Any) -> int:
    """Exit 1 when something asked for was not forgotten (an id already forgotten or replaced,
    a confirmed query that named nothing), as ``rm`` does for a file that is not there."""
    if args.query:
        r = memory.forget(query=args.query, confirm=args.yes)
        print_result(args, r, _by_query(r))
        return 1 if args.yes and not r["forgotten"] else 0
    r = memory.forget(ids=args.ids)
    missed = [i for i in dict.fromkeys(x.strip() for x in args.ids) if i not in r["forgotten"]]
    if args.json or r["forgotten"]:
        print_result(args, r, _forgot(r["forgotten"]))
    for memory_id in missed:
        say(f"{memory_id} was already forgotten (or replaced by a newer memory): nothing to forget")
    return 1 if missed else 0


def _clear_usage(args: argparse.Namespace) -> str | None:
    if not args.yes and not (sys.stdin is not None and sys.stdin.isatty()):
        return "clear forgets every memory visible here and stdin is not a terminal to ask on: confirm with --yes"
    return None


def _confirmed(question: str) -> bool:
    """Ask on the terminal (the prompt on stderr, so stdout stays the command's output)."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@verb("clear", "forget every memory visible here (asks first; --yes when not on a terminal)",
      arg("--scope", choices=SCOPES, help="only the memories of this scope"),
      arg("--yes", action="store_true", help="do not ask (required when stdin is not a terminal)"),
      store=True, usage=_clear_usage)
def _clear(args: argparse.Namespace, memory: Any) -> int:
    if not args.yes:
        visible = len(memory.list(scope=args.scope, limit=ALL))
        if not visible:
            print_result(args, {"forgotten": 0}, "(no memories)")
            return 0
        ctx = memory.context
        where = f"user {ctx.user_id}" + (f" in project {ctx.project}" if ctx.project else "")
        scope = f" {args.scope}-scope" if args.scope else ""
        if not _confirmed(f"Forget all {visible}{scope} memories visible to {where}?"):
            say("nothing was forgotten")
            return 1
    r = memory.clear(scope=args.scope)
    print_result(args, r, f"forgot {r['forgotten']} memories (undo: headroom-mcp list --forgotten, then restore their ids)")
    return 0


@verb("restore", "bring forgotten memories back (see list --forgotten)",
      arg("ids", nargs="+", help="memory ids"),
      store=True)
def _restore(args: argparse.Namespace, memory: Any) -> int:
    r = memory.restore(args.ids)
    print_result(args, r, "restored " + " ".join(r["restored"]))
    return 0


@verb("unmerge", "undo a wrong merge: a restatement becomes a memory of its own again",
      arg("id", help="the restatement's id (shown by remember, and by show MEMORY_ID)"),
      store=True)
def _unmerge(args: argparse.Namespace, memory: Any) -> int:
    r = memory.unmerge(args.id)
    print_result(args, r, f"unmerged {r['id']} from {r['unmerged_from']}")
    return 0


def _update_usage(args: argparse.Namespace) -> str | None:
    if args.importance is None and args.tags is None and not args.clear_tags:
        return "say what to change: --importance X, --tag T (repeatable) or --clear-tags"
    if args.tags and args.clear_tags:
        return "give --tag or --clear-tags, not both"
    return None


@verb("update", "change a memory's importance or tags in place (to change its text: remember --supersedes)",
      arg("id", help="the memory's id"),
      arg("--importance", type=float, help="0..1"),
      arg("--tag", dest="tags", action="append", help="the memory's tags become these (repeatable)"),
      arg("--clear-tags", action="store_true", help="remove every tag"),
      store=True, usage=_update_usage)
def _update(args: argparse.Namespace, memory: Any) -> int:
    r = memory.update(args.id, importance=args.importance, tags=[] if args.clear_tags else args.tags)
    print_result(args, r, f"updated {r['id']}: importance {r['importance']:g}, tags {', '.join(r['tags']) or '-'}")
    return 0


def _list_usage(args: argparse.Namespace) -> str | None:
    return "give --forgotten or --merged, not both" if args.forgotten and args.merged else None


@verb("list", "list visible memories, newest first",
      arg("--scope", choices=SCOPES),
      arg("--limit", type=int, default=50),
      arg("--forgotten", action="store_true", help="forgotten memories that can still be restored"),
      arg("--merged", action="store_true", help="the restatements merged into memories (see unmerge)"),
      arg("--everywhere", action="store_true",
          help="every memory you may read, in every project and session, not only those visible here"),
      store=True, usage=_list_usage)
def _list(args: argparse.Namespace, memory: Any) -> int:
    memories = memory.list(scope=args.scope, limit=args.limit, forgotten=args.forgotten, merged=args.merged,
                           everywhere=args.everywhere)
    print_result(args, {"memories": memories},
                 _table(memories) or ("(nothing forgotten)" if args.forgotten else "(no memories)"))
    return 0


@verb("show", "show one memory with its provenance", arg("id"), store=True)
def _show(args: argparse.Namespace, memory: Any) -> int:
    m = memory.get(args.id)
    print_result(args, m, "\n".join(f"{k}: {v}" for k, v in m.items()))
    return 0


@verb("stats", "totals by scope, agent and project", store=True)
def _stats(args: argparse.Namespace, memory: Any) -> int:
    s = memory.stats()
    text = f"user {s['user_id']}: {s['total']} memories ({s['retired']} retired)"
    for key in ("by_scope", "by_agent", "by_project"):
        text += f"\n{key.replace('_', ' ')}: " + (", ".join(f"{k} {v}" for k, v in sorted(s[key].items())) or "-")
    print_result(args, s, text)
    return 0
