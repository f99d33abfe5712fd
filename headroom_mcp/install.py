"""``headroom-mcp install|uninstall``: register the server (and hooks) in each agent's config.

Each client keeps its own files (which, in what format, and how our entries look there is
its ``agents.ClientSpec``), and users keep much else in them, so every change is a
read-modify-write of just our entries (``config_edit``): idempotent (a second install
changes nothing), atomic, with the user's own file (as it was before any of our entries)
saved as ``<name>.headroom-backup``: beside it for user scope, under the repository's git
dir for project scope (never in the work tree, where a team would commit it).

Only our own entries are ever replaced or removed: a ``headroom`` server that does not run
headroom-mcp (another tool of that name) stops the install unless ``--force`` is given,
and then its backup gives it back on uninstall. ``uninstall`` removes exactly what
``install`` added: a file that ends up as the backup's content gets the backup's bytes
back, a file (and folder) install created is deleted, and the bookkeeping goes once the
file is back in the user's hands.

With a ``url`` the entry points at a team server over streamable HTTP instead of launching
a local stdio server. The token stays in an environment variable that each client expands
itself (Claude Code and Gemini CLI from ``${VAR}`` in a header, Codex from
``bearer_token_env_var``), so no file holds a secret and a project-scope entry can be
committed for the whole team.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit

from .agents import CLIENTS, ClientSpec
from .config import default_data_dir, os_user
from .config_edit import Change, Notes, apply, json_edit, loads, replaced_entry, set_flag, settle_servers, settle_toml_servers, toml_edit
from .errors import InvalidInput
from .ours import SERVER_NAME, is_our_hook, plain
from .project import project_id
from .remote import DEFAULT_TOKEN_ENV

__all__ = ["Change", "Target", "apply", "default_executable", "plan", "project_root", "repository_root", "target_for"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Settings besides the data dir that decide which store and embedder a server uses. When one
#: differs from its default, install writes it into every entry: Claude Code and Gemini CLI pass
#: the shell's environment to their servers, Codex does not, and agents that disagree split the
#: memory in two.
STORE_VARIABLES = ("HEADROOM_MCP_USER", "HEADROOM_MCP_CHROMA_URL", "HEADROOM_MCP_EMBED_URL",
                   "HEADROOM_MCP_EMBED_MODEL", "HEADROOM_MCP_EMBED_MODEL_DIR")
#: Secrets an embedding endpoint may need: never written, only named for Codex to pass on.
API_KEY_VARIABLES = {"HEADROOM_MCP_EMBED_API_KEY", "OPENAI_API_KEY"}


@dataclass(frozen=True)
class Target:
    """Where to register: whose home, which project root, and how to launch us."""

    scope: str  # "user" or "project"
    home: Path
    project_root: Path
    executable: str
    data_dir: str | None = None
    url: str | None = None  # a team server's MCP endpoint: register it instead of a local stdio server
    token_env: str | None = None  # the variable holding the token for ``url`` (default DEFAULT_TOKEN_ENV)
    #: ``HEADROOM_MCP_*`` settings other than the data dir that choose the store (user, embedder,
    #: Chroma server), written into every entry: Codex starts its servers without the shell's.
    env: tuple[tuple[str, str], ...] = ()
    #: Variables named for Codex to pass on from its own environment (an embedding endpoint's key).
    pass_env: tuple[str, ...] = ()
    #: Where install keeps its bookkeeping for project files (inside the repository's git dir);
    #: None: beside each file (user scope).
    ledger: Path | None = None

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def token_variable(self) -> str:
        return self.token_env or DEFAULT_TOKEN_ENV

    @property
    def command(self) -> str:
        """What the entries launch. Project files are committed for everyone: they name the
        command (each teammate has headroom-mcp on PATH), never this machine's path to it."""
        return "headroom-mcp" if self.scope == "project" else self.executable

    @property
    def project(self) -> str:
        """The project a team entry names (project scope only; user scope leaves it to the token)."""
        return project_id(self.project_root) if self.url and self.scope == "project" else ""

    def args(self, *verb: str, agent: str) -> list[str]:
        """Our command line: the store to use, or for hooks of a team entry, the server to ask."""
        if self.url:
            extra = ["--url", self.url, "--token-env", self.token_variable, *(["--project", self.project] if self.project else [])]
        else:
            extra = ["--data-dir", self.data_dir] if self.data_dir else []
        return [*verb, "--agent", agent, *extra]

    def hook_command(self, kind: str, agent: str) -> str:
        """A shell command line; the store settings go first as assignments (every client runs hooks through a shell)."""
        assignments = [f"{name}={shlex.quote(value)}" for name, value in self.env]
        return " ".join([*assignments, *(shlex.quote(p) for p in [self.command, *self.args("hook", kind, agent=agent)])])

    def notes(self, path: Path) -> Notes:
        """Install's bookkeeping for ``path``: beside it, or under the ledger when project files have one."""
        if self.ledger is None:
            return Notes(path.with_name(path.name + ".headroom-backup"), path.with_name(path.name + ".headroom-created"))
        base = self.ledger / path.relative_to(self.project_root)
        return Notes(base.with_name(base.name + ".headroom-backup"), base.with_name(base.name + ".headroom-created"),
                     self.ledger)


def default_executable() -> str:
    """The absolute path of our console script, so agents need nothing on their PATH."""
    beside = Path(sys.executable).parent / "headroom-mcp"
    if beside.exists():
        return str(beside)
    return shutil.which("headroom-mcp") or "headroom-mcp"


def _git_path(cwd: Path, flag: str) -> Path | None:
    """``git rev-parse <flag>`` from ``cwd`` as a path, or None outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", flag], cwd=cwd, capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def repository_root(cwd: Path) -> Path | None:
    """The git work tree holding ``cwd``, or None outside one."""
    return _git_path(cwd, "--show-toplevel")


def project_root(cwd: Path) -> Path:
    """The repository root, else ``cwd`` itself."""
    return repository_root(cwd) or cwd


def target_for(scope: str, cwd: Path, data_dir: str | None = None, url: str | None = None,
               token_env: str | None = None, env: Mapping[str, str] | None = None) -> tuple[Target, list[str]]:
    """The target an install from ``cwd`` registers, and notes for the user.

    User scope carries the effective store (``--data-dir`` or ``HEADROOM_MCP_DATA_DIR``, and
    the ``STORE_VARIABLES`` set in ``env``) into every entry whenever it is not the default,
    so every agent opens the store this shell does. Project files are committed for the
    team: they get neither this machine's paths nor its settings, and exist only in a
    repository.
    """
    env = os.environ if env is None else env
    root = repository_root(cwd)
    if scope == "project" and root is None:
        raise InvalidInput(f"--scope project writes files into a repository, and {cwd} is not inside a git repository; "
                           "run it from your repository, or use --scope user (nothing was changed)")
    if scope == "project" and data_dir and not url:
        raise InvalidInput("--data-dir is this machine's: project files are shared with the team, so they name no "
                           "store; install it with --scope user (nothing was changed)")
    chosen = data_dir or (None if url else env.get("HEADROOM_MCP_DATA_DIR"))
    store = str(Path(chosen).expanduser().resolve()) if chosen else None
    if store and Path(store) == default_data_dir().resolve():
        store = None
    settings = tuple((name, env[name]) for name in STORE_VARIABLES if env.get(name))
    settings = tuple((n, v) for n, v in settings if (n, v) != ("HEADROOM_MCP_USER", os_user()))
    pass_env = tuple(sorted(n for n in API_KEY_VARIABLES if env.get(n))) if dict(settings).get("HEADROOM_MCP_EMBED_URL") else ()
    notes = []
    if url:
        settings, pass_env = (), ()  # the team server keeps the store
    elif scope == "project" and (store or settings):
        names = ", ".join(["HEADROOM_MCP_DATA_DIR"] * bool(store) + [n for n, _ in settings])
        notes.append(f"{names} not written: project files are shared, and Codex starts servers without your shell's "
                     "variables, so it would use the default store; run `headroom-mcp install all` (user scope) too")
        store, settings, pass_env = None, (), ()
    # This work tree's own git dir (a linked worktree has one of its own): never committed, never shared.
    ledger = _git_path(cwd, "--absolute-git-dir") if scope == "project" else None
    return Target(scope, Path.home(), root or cwd, default_executable(), store, url, token_env, settings, pass_env,
                  ledger and ledger / "headroom-mcp"), notes


def _is_http_url(url: str) -> bool:
    """An http(s) URL with a host and a well-formed port: what every client can connect to."""
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError on a malformed port  # noqa: B018
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def _check_team_target(target: Target) -> None:
    """Refuse a team-server target that could not work, or would put a secret in a file.

    ``data_dir`` does not go with ``url``: the team server keeps the store (its hooks ask
    the server too).
    """
    if target.url is None:
        if target.token_env is not None:
            raise InvalidInput("--token-env only applies with --url (nothing was changed)")
        return
    if not _is_http_url(target.url):
        raise InvalidInput(f"--url must be an http:// or https:// URL with a host, like http://memory.example:8765/mcp; "
                           f"got {target.url!r} (nothing was changed)")
    if "@" in urlsplit(target.url).netloc:
        raise InvalidInput("--url must not carry credentials: put the token in the environment variable named by "
                           "--token-env (nothing was changed)")
    if not _ENV_NAME.fullmatch(target.token_variable):
        raise InvalidInput(f"--token-env takes the NAME of an environment variable (letters, digits, _), "
                           f"not {target.token_variable!r}; the token itself never goes in a file (nothing was changed)")
    if target.data_dir:
        raise InvalidInput("--data-dir does not apply with --url: the team server keeps the store (nothing was changed)")


# ---- our entries --------------------------------------------------------------------------

def _next_server(current: Any, entry: dict[str, Any] | None, restored: Any, spec: ClientSpec, transport: str,
                 force: bool, path: Path) -> Any:
    """What the ``headroom`` entry becomes (None: no entry).

    Installing puts ours in, keeping what the user added to an earlier one of ours; another
    tool's entry of that name is replaced only with ``force`` (its file's backup keeps it).
    Uninstalling takes ours out and gives back the entry ``--force`` replaced (``restored``),
    and leaves anyone else's alone.
    """
    foreign = current is not None and not spec.is_ours(current)
    if entry is None:
        return current if foreign else restored
    if foreign and not force:
        value = plain(current)
        what = (value.get("command") or next((value[k] for k in spec.url_keys if value.get(k)), None)
                if isinstance(value, dict) else value)
        raise InvalidInput(f"{path} already has a {SERVER_NAME!r} server that is not headroom-mcp's ({what!r}); "
                           f"nothing was changed. Rename yours, or run install with --force to replace it "
                           "(uninstall puts it back)")
    return _merged_entry(None if foreign else current, entry, spec.other_keys(transport))


def _merged_entry(existing: Any, entry: dict[str, Any], other: tuple[str, ...]) -> dict[str, Any]:
    """Ours over what the user added to our entry (env, timeouts, extra headers), minus the other transport's keys."""
    value = plain(existing)
    merged = {k: v for k, v in value.items() if k not in other} if isinstance(value, dict) else {}
    for key, new in entry.items():
        mine = merged.get(key)
        merged[key] = {**mine, **new} if isinstance(new, dict) and isinstance(mine, dict) else new
    return merged


def _set_hooks(hooks: dict[str, Any], target: Target, spec: ClientSpec, install: bool) -> None:
    """Drop our hook groups from every event, then (installing) add the current ones."""
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(inner, list) and any(is_our_hook(h) for h in inner):
                rest = [h for h in inner if not is_our_hook(h)]
                if rest:
                    kept.append({**group, "hooks": rest})
                continue
            kept.append(group)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if install:
        for kind, event in spec.hook_events:
            hooks.setdefault(event, []).append(spec.hook_group(kind, target.hook_command(kind, spec.name)))


def _json_hooks(data: dict[str, Any], target: Target, spec: ClientSpec, install: bool) -> None:
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict) or not all(isinstance(v, list) for v in hooks.values() if v is not None):
        raise InvalidInput("the hooks setting is not an object of lists; fix it or install without --hooks (nothing was changed)")
    for event in [e for e, v in hooks.items() if v is None]:
        del hooks[event]
    _set_hooks(hooks, target, spec, install)
    if not data.get("hooks"):
        data.pop("hooks", None)


# ---- the plan -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """One client's install or uninstall: what its files become."""

    spec: ClientSpec
    target: Target
    install: bool
    hooks: bool  # (re)write our hooks; uninstalling always removes them
    force: bool

    @property
    def touch_hooks(self) -> bool:
        """Hooks are (re)written when asked for and removed on uninstall; a plain install
        leaves whatever hooks an earlier ``install --hooks`` put there."""
        return self.hooks or not self.install

    def path(self, hooks: bool = False) -> Path:
        scope, home, root = self.target.scope, self.target.home, self.target.project_root
        return self.spec.hooks_file(scope, home, root) if hooks else self.spec.servers.path(scope, home, root)

    def settle(self, path: Path) -> Callable[[Any], Any]:
        """What our entry in ``path`` becomes, given the current one."""
        entry = self.spec.entry(self.target) if self.install else None
        restored = None if self.install else replaced_entry(self.target.notes(path), self.spec)
        return lambda current: _next_server(current, entry, restored, self.spec, self.target.transport, self.force, path)

    def flag(self, notes: Notes) -> Callable[[Any, Callable[[], Any]], None]:
        """The edit of the client's hooks flag (``ClientSpec.hooks_flag``): on with our hooks, and
        taken back on uninstall unless the user's own file had it."""
        flag = self.spec.hooks_flag
        if flag is None:
            return lambda data, table: None
        try:
            users = loads(notes.read_backup() or "", self.spec.servers.format)
        except ValueError:  # a damaged backup: take the flag back as if there were none
            users = {}
        section = users.get(flag[0]) if isinstance(users, dict) and isinstance(users.get(flag[0]), dict) else None
        off = not self.install and (section or {}).get(flag[1]) is not True
        return lambda data, table: set_flag(data, flag, self.hooks, off, off and section is None, table)

    def servers_change(self) -> Change:
        """The servers file: our entry, the hooks flag, and our hooks when they live in the same file."""
        path, spec, key = self.path(), self.spec, self.spec.servers_key
        notes = self.target.notes(path)
        settle, flag = self.settle(path), self.flag(notes)

        def edit(data: dict[str, Any]) -> None:
            settle_servers(data, settle, key)
            flag(data, dict)
            if spec.hooks is None and (self.hooks or (self.touch_hooks and "hooks" in data)):
                _json_hooks(data, self.target, spec, self.hooks)

        if spec.servers.format == "json":
            return json_edit(path, edit, self.install, notes, spec)

        def edit_toml(doc: Any) -> None:
            settle_toml_servers(doc, settle, key)
            flag(doc, tomlkit.table)

        return toml_edit(path, edit_toml, edit, self.install, notes, spec, spec.sample(self.target.transport))

    def changes(self) -> list[Change]:
        changes = [self.servers_change()]
        hooks_file = self.path(hooks=True)
        if hooks_file != self.path() and (self.hooks or (self.touch_hooks and hooks_file.exists())):
            changes.append(json_edit(hooks_file, lambda d: _json_hooks(d, self.target, self.spec, self.hooks),
                                     self.install, self.target.notes(hooks_file), self.spec))
        return changes


def plan(client: str, target: Target, install: bool = True, hooks: bool = False, force: bool = False) -> list[Change]:
    """The file changes that install (or uninstall) the server, and hooks if asked, for one client.

    Uninstalling always removes our hooks too; installing without ``hooks`` leaves them as
    they are. ``force``: replace a ``headroom`` server that is not ours (see ``_next_server``).
    """
    if client not in CLIENTS:
        raise InvalidInput(f"unknown client {client!r}; choose from {', '.join(CLIENTS)} or all")
    if target.scope not in ("user", "project"):
        raise InvalidInput(f"scope must be user or project, got {target.scope!r}")
    if install:
        _check_team_target(target)
    return _Plan(CLIENTS[client], target, install, install and hooks, force).changes()
