"""``headroom-mcp doctor``: is everything in place, and if not, what to do about it."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import jsonc
from .config import Settings, default_data_dir, os_user
from .errors import HeadroomError
from .install import CLIENTS, SERVER_NAME, our_hooks, project_root, split_hook
from .paths import DaemonPaths


def _check(name: str, ok: bool | None, detail: str, fix: str | None = None) -> dict[str, Any]:
    """ok True/False, or None for a warning (works, but worth knowing); ``fix`` says what to do about it."""
    return {"check": name, "status": "ok" if ok else "warn" if ok is None else "fail", "detail": detail,
            **({"fix": fix} if fix and not ok else {})}


def _load(path: Path, kind: str) -> dict[str, Any]:
    """A client config's data, or {} when it is missing or unreadable (install reports those)."""
    try:
        text = path.read_text()
        data = tomllib.loads(text) if kind == "toml" else jsonc.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


def _pointer(agent: str, what: str, command: str, args: list[str], env: dict[str, str], shell: dict[str, str]) -> Pointer:
    """Resolve an entry the way the launched process will: its flags, then its env, then (except
    under Codex, which starts servers with a minimal environment) the shell's variables."""
    inherited = {} if agent == "codex" and "server" in what else shell
    setting = {**{k: v for k, v in inherited.items() if k.startswith("HEADROOM_MCP_")}, **env}
    url = _flag(args, "--url")
    store = url or _flag(args, "--data-dir") or setting.get("HEADROOM_MCP_DATA_DIR") or str(default_data_dir())
    embedder = setting.get("HEADROOM_MCP_EMBED_URL") or setting.get("HEADROOM_MCP_EMBED_MODEL_DIR") or "default"
    user = _flag(args, "--user") or setting.get("HEADROOM_MCP_USER") or os_user()
    return Pointer(agent, what, command, store if url else str(Path(store).expanduser()), user, embedder)


def _hook_pointers(agent: str, label: str, hooks: Any, shell: dict[str, str]) -> list[Pointer]:
    """Our hooks in one file, resolved (the first is enough: install writes them all alike)."""
    for _, _, _, hook in our_hooks(hooks):
        assigned, words = split_hook(str(hook["command"]))
        return [_pointer(agent, f"{label} hooks", words[0], words[1:], assigned, shell)]
    return []


def pointers(home: Path, root: Path, shell: dict[str, str]) -> list[Pointer]:
    """Every entry of ours in each agent's user and project configs, resolved to the store it opens."""
    found = []
    for agent, files in {
        "claude": [(home / ".claude.json", "json", "user"), (root / ".mcp.json", "json", "project"),
                   (home / ".claude" / "settings.json", "json", "user"), (root / ".claude" / "settings.json", "json", "project")],
        "codex": [(home / ".codex" / "config.toml", "toml", "user"), (root / ".codex" / "config.toml", "toml", "project"),
                  (home / ".codex" / "hooks.json", "json", "user"), (root / ".codex" / "hooks.json", "json", "project")],
        "gemini": [(home / ".gemini" / "settings.json", "json", "user"), (root / ".gemini" / "settings.json", "json", "project")],
    }.items():
        seen = set()
        for path, kind, label in files:
            if path in seen:  # the home is the repository root
                continue
            seen.add(path)
            data = _load(path, kind)
            servers = data.get("mcp_servers" if kind == "toml" else "mcpServers")
            entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
            if isinstance(entry, dict):
                args = [str(a) for a in entry.get("args") or []] if isinstance(entry.get("args"), list) else []
                env = {str(k): str(v) for k, v in entry["env"].items()} if isinstance(entry.get("env"), dict) else {}
                url = entry.get("url") or entry.get("httpUrl")
                found.append(_pointer(agent, f"{label} server", str(entry.get("command") or url or "?"),
                                      ["--url", str(url)] if url else args, env, shell))
            found.extend(_hook_pointers(agent, label, data.get("hooks"), shell))
    return found


def registrations(home: Path, root: Path, shell: dict[str, str], settings: Settings) -> list[dict[str, Any]]:
    """Which agents have the server (and hooks), where each entry points, and whether they agree on one store."""
    found = pointers(home, root, shell)
    checks = []
    for agent in CLIENTS:
        mine = [p for p in found if p.agent == agent]
        detail = "; ".join(p.describe() for p in mine) if mine else "not registered"
        if not shutil.which(agent):
            detail += "; CLI not on PATH"
        checks.append(_check(f"agent {agent}", True if mine else None, detail, f"headroom-mcp install {agent} --hooks"))
    stores = {(p.store, p.user, p.embedder) for p in found}
    if len(stores) > 1:
        split = "; ".join(f"{p.agent} {p.what} -> {p.store} (user {p.user}, embedder {p.embedder})" for p in found)
        checks.append(_check("one store", False, f"the agents do not share one memory: {split}",
                             "run `headroom-mcp install all --hooks` (add --data-dir DIR for another store) from the shell "
                             "whose store they should share: it writes that store into every entry"))
    elif stores:
        store, user, embedder = next(iter(stores))
        here = (str(settings.data_dir), settings.user_id)
        checks.append(_check("one store", True if (store, user) == here or store.startswith("http") else None,
                             f"every agent opens {store} as {user}" + ("" if (store, user) == here or store.startswith("http")
                                                                        else f"; this shell opens {here[0]} as {here[1]}"),
                             "set the same HEADROOM_MCP_* variables here as the agents use, or re-run install from this shell"))
    checks.extend(checkout_entries(found))
    if any(p.agent == "gemini" for p in found):
        checks.append(gemini_trust(home, root, shell))
    checks.extend(claude_approval(home, root))
    checks.extend(codex_trust(home, root))
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
    return [_check("entry location", None, f"the entries run {command}, inside the git checkout {clone}: "
                   "moving or deleting that clone breaks every agent",
                   "install headroom-mcp as a tool (in the checkout: uv tool install . or pipx install .), then run "
                   "`headroom-mcp install all --hooks` again from a shell where it is on PATH")]


def gemini_trust(home: Path, folder: Path, shell: dict[str, str]) -> dict[str, Any]:
    """Gemini CLI disables every MCP server (and hook) in a folder the user has not trusted.

    Its rules live in ``~/.gemini/trustedFolders.json`` (or ``GEMINI_CLI_TRUSTED_FOLDERS_PATH``):
    the longest rule path that contains the folder wins; ``TRUST_PARENT`` trusts the rule
    path's parent. ``security.folderTrust.enabled: false`` or ``GEMINI_CLI_TRUST_WORKSPACE``
    turn the check off (read from Gemini CLI 0.61's sources).
    """
    if shell.get("GEMINI_CLI_TRUST_WORKSPACE") == "true":
        return _check("gemini folder trust", True, "GEMINI_CLI_TRUST_WORKSPACE=true trusts every folder")
    security = _load(home / ".gemini" / "settings.json", "json").get("security")
    folder_trust = security.get("folderTrust") if isinstance(security, dict) else None
    if isinstance(folder_trust, dict) and folder_trust.get("enabled") is False:
        return _check("gemini folder trust", True, "folder trust is turned off in ~/.gemini/settings.json")
    rules_file = Path(shell.get("GEMINI_CLI_TRUSTED_FOLDERS_PATH") or home / ".gemini" / "trustedFolders.json")
    rules = _load(rules_file, "json")
    here = folder.resolve()
    best, level = -1, None
    for rule, trust in rules.items():
        base = Path(rule).parent if trust == "TRUST_PARENT" else Path(rule)
        try:
            inside = here.is_relative_to(base.expanduser().resolve())
        except OSError:
            continue
        if inside and len(rule) > best:
            best, level = len(rule), trust
    fix = (f'add "{here}": "TRUST_FOLDER" to {rules_file} (or start gemini in {here} and trust the folder when it asks)')
    if level in ("TRUST_FOLDER", "TRUST_PARENT"):
        return _check("gemini folder trust", True, f"{here} is trusted ({rules_file})")
    state = "marked DO_NOT_TRUST" if level == "DO_NOT_TRUST" else "not trusted"
    return _check("gemini folder trust", None, f"{here} is {state}: Gemini CLI disables MCP servers and hooks here", fix)


def claude_approval(home: Path, root: Path) -> list[dict[str, Any]]:
    """Claude Code starts a server from a project's ``.mcp.json`` only once the user approves it
    (``claude mcp list``: "Pending approval"); until then the agent has no memory tools.

    The choice is recorded in its settings files (user, project, local) as
    ``enabledMcpjsonServers`` / ``enableAllProjectMcpServers``, or ``disabledMcpjsonServers``
    for a refusal (read from Claude Code 2.1's bundle; an approval for one session only is
    kept in memory, so this may warn about a server approved just for the running session).
    """
    servers = _load(root / ".mcp.json", "json").get("mcpServers")
    if root == home or not isinstance(servers, dict) or SERVER_NAME not in servers:
        return []
    files = [home / ".claude" / "settings.json", root / ".claude" / "settings.json", root / ".claude" / "settings.local.json"]
    settings = [_load(path, "json") for path in files]

    def listed(key: str) -> bool:
        return any(isinstance(s.get(key), list) and SERVER_NAME in s[key] for s in settings)

    approved = not listed("disabledMcpjsonServers") and (
        listed("enabledMcpjsonServers") or any(s.get("enableAllProjectMcpServers") is True for s in settings))
    state = "approved" if approved else "rejected" if listed("disabledMcpjsonServers") else "pending approval"
    return [_check("claude project approval", approved or None,
                   f"{SERVER_NAME} in {root / '.mcp.json'} is {state}" + ("" if approved else ": Claude Code does not start it"),
                   f"run `claude` in {root} and approve the {SERVER_NAME} server (or add "
                   f'"enabledMcpjsonServers": ["{SERVER_NAME}"] to {files[2]})')]


def codex_trust(home: Path, root: Path) -> list[dict[str, Any]]:
    """Codex runs a hook only after the user trusts it, and reads a project's .codex/ only in a trusted project.

    Hook trust is recorded in ``~/.codex/config.toml`` as ``[hooks.state."<hooks.json path>:<event>:<group>:<handler>"]``
    with a ``trusted_hash``; project trust as ``[projects."<path>"] trust_level = "trusted"``.
    """
    user_config = _load(home / ".codex" / "config.toml", "toml")
    hooks_cfg = user_config.get("hooks")
    state = hooks_cfg.get("state") if isinstance(hooks_cfg, dict) else None
    state = state if isinstance(state, dict) else {}
    checks = []
    for hooks_file in dict.fromkeys([home / ".codex" / "hooks.json", root / ".codex" / "hooks.json"]):
        hooks = _load(hooks_file, "json").get("hooks")
        keys = [f"{hooks_file}:{re.sub(r'(?<!^)(?=[A-Z])', '_', event).lower()}:{g}:{h}"
                for event, g, h, _ in our_hooks(hooks)]
        if not keys:
            continue
        trusted = [k for k in keys if isinstance(state.get(k), dict) and state[k].get("trusted_hash")]
        checks.append(_check("codex hook trust", len(trusted) == len(keys) or None,
                             f"{len(trusted)} of {len(keys)} of our hooks in {hooks_file} trusted"
                             + ("" if len(trusted) == len(keys) else "; Codex skips the others"),
                             "run `codex` in a terminal and choose 'Trust all and continue' when it says hooks need review "
                             "(or review them with /hooks)"))
    project_servers = _load(root / ".codex" / "config.toml", "toml").get("mcp_servers")
    if root != home and isinstance(project_servers, dict) and SERVER_NAME in project_servers:
        projects = user_config.get("projects")
        entry = projects.get(str(root)) if isinstance(projects, dict) else None
        ok = isinstance(entry, dict) and entry.get("trust_level") == "trusted"
        checks.append(_check("codex project trust", ok or None,
                             f"{root} is {'trusted' if ok else 'not trusted'}: Codex reads {root / '.codex'} only in trusted projects",
                             f'trust the project when codex asks, or add [projects."{root}"] trust_level = "trusted" '
                             "to ~/.codex/config.toml"))
    return checks


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


def _store_checks(settings: Settings, paths: DaemonPaths) -> list[dict[str, Any]]:
    """The store as its daemon sees it (started if need be): records, and the indexes repaired if they drifted."""
    from .client import DaemonClient

    checks = []
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
    return checks


def run_doctor(args: argparse.Namespace) -> int:
    from .store.embedder import default_model_files

    settings = Settings.resolve(data_dir=args.data_dir, user_id=args.user, agent_id=args.agent, default_agent="cli",
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
    if not exists and not settings.chroma_url:
        # Asking would start a daemon that creates an empty store there: a mistyped --data-dir
        # must not leave one behind.
        checks.append(_check("store", None, f"none yet in {paths.data_dir}: the first remember creates it "
                                            "(if you expected memories there, check the path)"))
    else:
        checks.extend(_store_checks(settings, paths))
    checks.append(_check("project", True, settings.project or "(none: memories default to user scope)"))
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

