"""``headroom-mcp doctor``: is everything in place, and if not, what to do about it."""

from __future__ import annotations

import argparse
import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import HeadroomError
from .install import SERVER_NAME, project_root


def _check(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    """ok True/False, or None for a warning (works, but worth knowing)."""
    return {"check": name, "status": "ok" if ok else "warn" if ok is None else "fail", "detail": detail}


def _registered(path: Path, kind: str) -> tuple[bool, bool]:
    """(server registered, our hooks present) in one client config file."""
    try:
        text = path.read_text()
        data = tomllib.loads(text) if kind == "toml" else json.loads(text)
    except (OSError, ValueError):
        return False, False
    servers = data.get("mcp_servers" if kind == "toml" else "mcpServers") or {}
    return SERVER_NAME in servers, "headroom-mcp" in json.dumps(data.get("hooks", {}))


def registrations(home: Path, root: Path) -> list[dict[str, Any]]:
    """Which agents have the server (and hooks) in their user and project configs."""
    found = []
    for client, files in {
        "claude": [(home / ".claude.json", "json", "user"), (root / ".mcp.json", "json", "project"),
                   (home / ".claude" / "settings.json", "json", "user hooks"), (root / ".claude" / "settings.json", "json", "project hooks")],
        "codex": [(home / ".codex" / "config.toml", "toml", "user"), (root / ".codex" / "config.toml", "toml", "project"),
                  (home / ".codex" / "hooks.json", "json", "user hooks"), (root / ".codex" / "hooks.json", "json", "project hooks")],
        "gemini": [(home / ".gemini" / "settings.json", "json", "user"), (root / ".gemini" / "settings.json", "json", "project")],
    }.items():
        where = []
        for path, kind, label in files:
            server, hooks = _registered(path, kind)
            if server:
                where.append(f"{label.split()[0]} server")
            if hooks:
                where.append(f"{label.split()[0]} hooks")
        on_path = shutil.which(client)
        detail = ", ".join(where) if where else f"not registered (headroom-mcp install {client})"
        if not on_path:
            detail += "; CLI not on PATH"
        found.append(_check(f"agent {client}", True if where else None, detail))
    return found


def tokens_check(path: Path) -> dict[str, Any] | None:
    """Team mode's tokens file: readable, private (0600), how many grants; None when absent."""
    from .tokens import TokenFile

    if not path.exists():
        return None
    mode = oct(path.stat().st_mode & 0o777)
    try:
        grants = TokenFile(path).grants()
    except HeadroomError as exc:
        return _check("team tokens", False, str(exc))
    users = sorted({g.user_id for g in grants})
    return _check("team tokens", None if mode != "0o600" else True,
                  f"{path} (mode {mode}{'; should be 0o600' if mode != '0o600' else ''}): "
                  f"{len(grants)} tokens for {len(users)} users")


def run_doctor(args: argparse.Namespace) -> int:
    from .client import DaemonClient
    from .paths import DaemonPaths
    from .store.embedder import default_model_files

    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent or "cli",
                                project=args.project, chroma_url=args.chroma_url)
    paths = DaemonPaths.for_data_dir(settings.data_dir)
    checks = []
    exists = paths.data_dir.exists()
    mode = oct(paths.data_dir.stat().st_mode & 0o777) if exists else "-"
    checks.append(_check("data dir", None if not exists else mode == "0o700",
                         f"{paths.data_dir} (mode {mode})" if exists else f"{paths.data_dir} (created on first use)"))
    try:
        model, tokenizer = default_model_files()
        checks.append(_check("embedding model", True, f"{model} ({model.stat().st_size // 1024} KB), {tokenizer.name}"))
    except Exception as exc:
        checks.append(_check("embedding model", False, f"{exc} (reinstall: pip install --force-reinstall headroom-mcp)"))
    try:
        with DaemonClient(settings) as client:
            ping = client.call("ping")
            stats = client.call("stats", context=settings.context().to_mapping())
            health = client.call("check", {"repair": True}, settings.context().to_mapping())
        checks.append(_check("store", True, f"daemon pid {ping['pid']}, {ping['records']} records in the store, "
                                            f"{stats['total']} visible to {settings.user_id}"))
        checks.append(_check("lexical index", True if not health["repaired"] else None,
                             f"{health['lexical']} of {health['active']} active records indexed"
                             + (f"; rebuilt ({health['missing']} missing, {health['extra']} stale)" if health["repaired"] else "")))
    except HeadroomError as exc:
        checks.append(_check("store", False, f"{exc} (see {paths.log})"))
    checks.append(_check("project", True, settings.project or "(none: memories default to user scope)"))
    tokens = tokens_check(settings.tokens_file)
    if tokens is not None:
        checks.append(tokens)
    checks.extend(registrations(Path.home(), project_root(Path.cwd())))
    if args.json:
        print(json.dumps({"checks": checks}, indent=2))
    else:
        width = max(len(c["check"]) for c in checks)
        for c in checks:
            print(f"{c['status']:<4}  {c['check']:<{width}}  {c['detail']}")
    return 1 if any(c["status"] == "fail" for c in checks) else 0

