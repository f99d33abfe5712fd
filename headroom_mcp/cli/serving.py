"""The verbs that run a server or speak for one: ``daemon``, ``serve``, ``ui``, ``token``, ``hook``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from ..errors import DaemonUnavailable, HeadroomError, UnsafeSocketDir
from ..store.scopes import ROLES
from .base import arg, print_result, stdin_bytes, verb

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


def _ping(settings: Any) -> dict[str, Any] | None:
    """The running daemon's own account of itself (pid, data dir, uptime, records), or None
    when none serves the data dir; never starts one."""
    from ..client import DaemonClient

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

    from ..client import store_owned
    from ..paths import DaemonPaths

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
    from ..config import Settings

    settings = Settings.resolve(data_dir=args.data_dir, chroma_url=args.chroma_url)
    info = _ping(settings)
    if info is None:
        print_result(args, {"running": False, "data_dir": str(settings.data_dir)}, f"no daemon is serving {settings.data_dir}")
        return 1 if args.action == "status" else 0
    if args.action == "stop":
        _stop_daemon(settings, info["pid"])
        print_result(args, {"stopped": info["pid"], "data_dir": info["data_dir"]},
                     f"stopped daemon {info['pid']} of {info['data_dir']} (the next call starts a new one)")
    else:
        print_result(args, {"running": True, **info}, f"daemon {info['pid']} serving {info['data_dir']}: up "
                                                        f"{_duration(info['uptime'])}, {info['records']} records")
    return 0


@verb("daemon", "run the store owner in the foreground (normally started on demand); daemon status|stop ask the running one",
      arg("action", nargs="?", choices=["status", "stop"],
          help="status: is one running (pid, data dir, uptime, records; exit 1 when none); "
               "stop: stop it once what it is doing is written"),
      arg("--idle-timeout", type=float, help="exit after this many idle seconds (HEADROOM_MCP_IDLE_TIMEOUT)"),
      arg("--verbose", action="store_true"))
def _run_daemon(args: argparse.Namespace) -> int:
    if args.action:
        return _daemon_control(args)
    from ..config import Settings
    from ..daemon import Daemon

    settings = Settings.resolve(data_dir=args.data_dir, chroma_url=args.chroma_url, idle_timeout=args.idle_timeout)
    return Daemon.serve(settings, args.verbose)




@verb("serve", "run the MCP server: stdio for an agent (default), sse or http to share one",
      arg("--transport", choices=["stdio", "sse", "http"], default="stdio"),
      arg("--host", default="127.0.0.1", help="sse/http: address to bind (127.0.0.1; 0.0.0.0 for a team)"),
      arg("--port", type=_port, default=8765, help="sse/http: port (8765)"),
      arg("--no-auth", action="store_true",
          help="sse/http: serve without bearer tokens (loopback only, with --trust-local-users)"),
      arg("--trust-local-users", action="store_true",
          help="with --no-auth: accept that every user of this machine can read and write every memory through the port"),
      arg("--tokens-file", help="sse/http: the tokens to accept (HEADROOM_MCP_TOKENS_FILE; <data dir>/tokens.json)"),
      arg("--allowed-host", dest="allowed_hosts", action="append", default=[],
          help="sse/http: a Host name clients use (repeatable; NAME:* for any port; '*' turns the check off)"),
      arg("--allowed-origin", dest="allowed_origins", action="append", default=[],
          help="sse/http: a browser Origin to accept (repeatable)"),
      arg("--max-body", type=int, default=256 * 1024, help="sse/http: largest request body, bytes (262144)"),
      arg("--rate-limit", type=float, default=600.0, help="sse/http: requests per minute per token (600; 0 = none)"),
      arg("--sessions-per-token", type=int, default=64, help="sse/http: open MCP sessions per token (64)"),
      arg("--max-connections", type=int, default=512,
          help="sse/http: open connections; past it the longest-waiting idle or slow one is closed (512; "
               "lowered to fit the open-file limit)"),
      arg("--read-timeout", type=float, default=10.0,
          help="sse/http: seconds a client has to send a whole request, headers and body (10)"),
      arg("--verbose", action="store_true", help="log debug detail to stderr"))
def _run_serve(args: argparse.Namespace) -> int:
    """Serve MCP. stdout is the stdio protocol, so every log line goes to stderr."""
    import logging

    from ..config import Settings

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="headroom-mcp %(levelname)s %(name)s: %(message)s")
    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, project=args.project,
                                session_id=args.session, chroma_url=args.chroma_url, tokens_file=args.tokens_file)
    if args.transport != "stdio":
        from ..hosting import Limits, serve_http

        limits = Limits(max_body=args.max_body, rate_per_minute=args.rate_limit, sessions_per_token=args.sessions_per_token,
                        allowed_hosts=args.allowed_hosts, allowed_origins=args.allowed_origins,
                        max_connections=args.max_connections, read_timeout=args.read_timeout)
        return serve_http(settings, args.transport, args.host, args.port, no_auth=args.no_auth, limits=limits,
                          trust_local_users=args.trust_local_users)
    from ..frontdoor import serve

    serve(settings)
    return 0


def _ui_usage(args: argparse.Namespace) -> str | None:
    from ..ui.serve import check_host

    return check_host(args.host)


@verb("ui", "serve a local memory browser (loopback, a token in the URL): browse, search, fix, see what agents are shown",
      arg("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1, ::1 or localhost)"),
      arg("--port", type=_port, help="port (8766, or a free one when that is taken)"),
      arg("--no-open", action="store_true", help="print the URL only; do not open a browser"),
      usage=_ui_usage)
def _run_ui(args: argparse.Namespace) -> int:
    from ..config import Settings
    from ..ui.serve import run_ui

    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, project=args.project,
                                session_id=args.session, chroma_url=args.chroma_url)
    return run_ui(settings, args.host, args.port, open_browser=not args.no_open, as_json=args.json)


def _token_arguments(p: argparse.ArgumentParser) -> None:
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


@verb("token", "team mode: create, list and revoke the bearer tokens an HTTP server accepts", _token_arguments,
      common=False)
def _run_token(args: argparse.Namespace) -> int:
    from ..config import Settings
    from ..tokens import TokenFile

    settings = Settings.resolve(data_dir=args.data_dir, tokens_file=args.tokens_file)
    tokens = TokenFile(settings.tokens_file)
    if args.action == "create":
        secret, grant = tokens.create(args.user, args.projects, args.role, args.name)
        print_result(args, {**grant.public(), "token": secret},
                     f"{secret}\n\ntoken {grant.id} for user {grant.user_id} ({grant.role}; projects: {', '.join(grant.projects)})\n"
                     f"This is the only time it is shown: give it to the user, e.g. as HEADROOM_MCP_TOKEN.")
    elif args.action == "list":
        grants = [g.public() for g in tokens.grants()]
        rows = [f"{g['id']}  {g['user_id']:<16} {g['role']:<6} {','.join(g['projects'])}  {g['name']}" for g in grants]
        print_result(args, {"tokens": grants, "file": str(settings.tokens_file)}, "\n".join(rows) or f"(no tokens in {settings.tokens_file})")
    else:
        grant = tokens.revoke(args.id)
        print_result(args, {"revoked": grant.public()}, f"revoked token {grant.id} of user {grant.user_id}")
    return 0



@verb("hook", "print memory context as an agent hook's JSON output (reads the hook JSON on stdin)",
      arg("kind", choices=["session-start", "prompt"]),
      arg("--agent", help="the agent the hook runs in (claude, codex, gemini)"),
      arg("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)"),
      arg("--url", help="read from this team server (its MCP endpoint) instead of the local store"),
      arg("--token-env", help="with --url: the environment variable holding the token (HEADROOM_MCP_TOKEN)"),
      arg("--project", help="with --url: the project to read (else the token's only one)"),
      common=False)
def _run_hook(args: argparse.Namespace) -> int:
    from ..hooks import run_hook

    # Decoded leniently: a hook must never fail the agent's turn, and run_hook answers
    # input it cannot read with no context.
    stdin_text = stdin_bytes().decode("utf-8", "replace")
    print(json.dumps(run_hook(args.kind, stdin_text, agent=args.agent, data_dir=args.data_dir, url=args.url,
                              token_env=args.token_env, project=args.project), ensure_ascii=False))
    return 0
