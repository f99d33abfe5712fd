"""``headroom-mcp doctor``: is everything in place, and if not, what to do about it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .agents import CLIENTS, ClientSpec
from .checks import check, load_config
from .config import Settings, default_data_dir, os_user
from .errors import HeadroomError
from .install import project_root
from .ours import SERVER_NAME, our_hooks, split_hook
from .paths import DaemonPaths


@dataclass(frozen=True)
class Pointer:
    """Where one registered entry (server or hook) of an agent sends its memories."""

    agent: str
    what: str  # "user server", "project hooks", ...
    command: str
    store: str  # the data dir, or the team server's URL
    user: str
    embedder: str

    def describe(self) -> str:
        return f"{self.what}: {self.command} -> {self.store} (user {self.user}, embedder {self.embedder})"


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def _pointer(spec: ClientSpec, what: str, command: str, args: list[str], env: dict[str, str],
             shell: dict[str, str]) -> Pointer:
    """Resolve an entry the way the launched process will: its flags, then its env, then (unless
    the client starts servers with a minimal environment, as Codex does) the shell's variables."""
    inherited = {} if not spec.servers_inherit_env and "server" in what else shell
    setting = {**{k: v for k, v in inherited.items() if k.startswith("HEADROOM_MCP_")}, **env}
    url = _flag(args, "--url")
    store = url or _flag(args, "--data-dir") or setting.get("HEADROOM_MCP_DATA_DIR") or str(default_data_dir())
    embedder = setting.get("HEADROOM_MCP_EMBED_URL") or setting.get("HEADROOM_MCP_EMBED_MODEL_DIR") or "default"
    user = _flag(args, "--user") or setting.get("HEADROOM_MCP_USER") or os_user()
    return Pointer(spec.name, what, command, store if url else str(Path(store).expanduser()), user, embedder)


def _server_pointer(spec: ClientSpec, label: str, entry: dict[str, Any], shell: dict[str, str]) -> Pointer:
    """Our server entry in one file, resolved."""
    args = [str(a) for a in entry.get("args") or []] if isinstance(entry.get("args"), list) else []
    env = {str(k): str(v) for k, v in entry["env"].items()} if isinstance(entry.get("env"), dict) else {}
    url = next((entry[k] for k in spec.url_keys if entry.get(k)), None)
    return _pointer(spec, f"{label} server", str(entry.get("command") or url or "?"),
                    ["--url", str(url)] if url else args, env, shell)


def _hook_pointers(spec: ClientSpec, label: str, hooks: Any, shell: dict[str, str]) -> list[Pointer]:
    """Our hooks in one file, resolved (the first is enough: install writes them all alike)."""
    for _, _, _, hook in our_hooks(hooks):
        assigned, words = split_hook(str(hook["command"]))
        return [_pointer(spec, f"{label} hooks", words[0], words[1:], assigned, shell)]
    return []


def pointers(home: Path, root: Path, shell: dict[str, str]) -> list[Pointer]:
    """Every entry of ours in each agent's user and project configs, resolved to the store it opens."""
    found = []
    for spec in CLIENTS.values():
        for path, kind, label in spec.files(home, root):
            data = load_config(path, kind)
            servers = data.get(spec.servers_key)
            entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
            if isinstance(entry, dict):
                found.append(_server_pointer(spec, label, entry, shell))
            found.extend(_hook_pointers(spec, label, data.get("hooks"), shell))
    return found


def registrations(home: Path, root: Path, shell: dict[str, str], settings: Settings) -> list[dict[str, Any]]:
    """Which agents have the server (and hooks), where each entry points, and whether they agree on one store."""
    found = pointers(home, root, shell)
    checks = []
    for agent, spec in CLIENTS.items():
        mine = [p for p in found if p.agent == agent]
        detail = "; ".join(p.describe() for p in mine) if mine else "not registered"
        if not shutil.which(spec.executable):
            detail += "; CLI not on PATH"
        checks.append(check(f"agent {agent}", True if mine else None, detail, f"headroom-mcp install {agent} --hooks"))
    stores = {(p.store, p.user, p.embedder) for p in found}
    if len(stores) > 1:
        split = "; ".join(f"{p.agent} {p.what} -> {p.store} (user {p.user}, embedder {p.embedder})" for p in found)
        checks.append(check("one store", False, f"the agents do not share one memory: {split}",
                             "run `headroom-mcp install all --hooks` (add --data-dir DIR for another store) from the shell "
                             "whose store they should share: it writes that store into every entry"))
    elif stores:
        store, user, embedder = next(iter(stores))
        here = (str(settings.data_dir), settings.user_id)
        checks.append(check("one store", True if (store, user) == here or store.startswith("http") else None,
                             f"every agent opens {store} as {user}" + ("" if (store, user) == here or store.startswith("http")
                                                                        else f"; this shell opens {here[0]} as {here[1]}"),
                             "set the same HEADROOM_MCP_* variables here as the agents use, or re-run install from this shell"))
    checks.extend(checkout_entries(found))
    for agent, spec in CLIENTS.items():
        checks.extend(spec.doctor_checks(home, root, shell, any(p.agent == agent for p in found)))
    return checks


def inside_checkout(command: str) -> Path | None:
    """The git work tree an entry's program lives in (a clone's ``.venv``), or None."""
    program = Path(command)
    if not program.is_absolute():
        return None  # found on PATH when the agent starts it
    return next((parent for parent in program.parents if (parent / ".git").exists()), None)


def checkout_entries(found: list[Pointer]) -> list[dict[str, Any]]:
    """Entries that run headroom-mcp from inside a clone: moving or deleting the clone breaks
    every agent at once, with nothing in the agent's own output to say why."""
    inside = {p.command: clone for p in found if (clone := inside_checkout(p.command)) is not None}
    if not inside:
        return []
    command, clone = next(iter(inside.items()))
    return [check("entry location", None, f"the entries run {command}, inside the git checkout {clone}: "
                   "moving or deleting that clone breaks every agent",
                   "install headroom-mcp as a tool (in the checkout: uv tool install . or pipx install .), then run "
                   "`headroom-mcp install all --hooks` again from a shell where it is on PATH")]


def tokens_check(path: Path) -> dict[str, Any] | None:
    """Team mode's tokens file: readable, private (0600), how many grants; None when absent."""
    from .tokens import TokenFile

    if not path.exists():
        return None
    mode = oct(path.stat().st_mode & 0o777)
    try:
        grants = TokenFile(path).grants()
    except HeadroomError as exc:
        return check("team tokens", False, str(exc))
    users = sorted({g.user_id for g in grants})
    return check("team tokens", None if mode != "0o600" else True,
                  f"{path} (mode {mode}{'; should be 0o600' if mode != '0o600' else ''}): "
                  f"{len(grants)} tokens for {len(users)} users")


def _store_checks(settings: Settings, paths: DaemonPaths) -> list[dict[str, Any]]:
    """The store as its daemon sees it (started if need be): records, and the indexes repaired if they drifted."""
    from .client import DaemonClient

    checks = []
    try:
        with DaemonClient(settings) as client:
            ping = client.call("ping")
            stats = client.call("stats", context=settings.context().to_mapping())
            health = client.call("check", {"repair": True}, settings.context().to_mapping())
        checks.append(check("store", True, f"daemon pid {ping['pid']}, {ping['records']} records in the store, "
                                            f"{stats['total']} visible to {settings.user_id}"))
        checks.append(check("lexical index", True if not health["repaired"] else None,
                             f"{health['lexical']} of {health['active']} active records indexed"
                             + (f"; rebuilt ({health['missing']} missing, {health['extra']} stale)" if health["repaired"] else "")))
    except HeadroomError as exc:
        checks.append(check("store", False, f"{exc} (see {paths.log})"))
    return checks


def run_doctor(args: argparse.Namespace) -> int:
    from .store.embedder import default_model_files

    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, default_agent="cli",
                                project=args.project, chroma_url=args.chroma_url)
    paths = DaemonPaths.for_data_dir(settings.data_dir)
    checks = []
    exists = paths.data_dir.exists()
    mode = oct(paths.data_dir.stat().st_mode & 0o777) if exists else "-"
    checks.append(check("data dir", None if not exists else mode == "0o700",
                         f"{paths.data_dir} (mode {mode})" if exists else f"{paths.data_dir} (created on first use)"))
    try:
        model, tokenizer = default_model_files()
        checks.append(check("embedding model", True, f"{model} ({model.stat().st_size // 1024} KB), {tokenizer.name}"))
    except Exception as exc:
        checks.append(check("embedding model", False, f"{exc} (reinstall: pip install --force-reinstall headroom-mcp)"))
    if not exists and not settings.chroma_url:
        # Asking would start a daemon that creates an empty store there: a mistyped --data-dir
        # must not leave one behind.
        checks.append(check("store", None, f"none yet in {paths.data_dir}: the first remember creates it "
                                            "(if you expected memories there, check the path)"))
    else:
        checks.extend(_store_checks(settings, paths))
    checks.append(check("project", True, settings.project or "(none: memories default to user scope)"))
    tokens = tokens_check(settings.tokens_file)
    if tokens is not None:
        checks.append(tokens)
    checks.extend(registrations(Path.home(), project_root(Path.cwd()), dict(os.environ), settings))
    if args.json:
        print(json.dumps({"checks": checks}, indent=2))
    else:
        width = max(len(c["check"]) for c in checks)
        for c in checks:
            print(f"{c['status']:<4}  {c['check']:<{width}}  {c['detail']}" + (f"\n      {'':<{width}}  fix: {c['fix']}" if "fix" in c else ""))
    return 1 if any(c["status"] == "fail" for c in checks) else 0

