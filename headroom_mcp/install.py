"""``headroom-mcp install|uninstall``: register the server (and hooks) in each agent's config.

Each client keeps its own files, and users keep much else in them, so every change is a
read-modify-write of just our entries: idempotent (a second install changes nothing),
atomic (temp file + rename, mode kept), with the user's own file (as it was before any of
our entries) saved as ``<name>.headroom-backup``: beside it for user scope, under the
repository's git dir for project scope (never in the work tree, where a team would commit
it). Files are edited as text (JSON and JSONC through ``jsonc``, TOML through tomlkit) in
their own line endings, so comments and the entries we do not own keep their bytes.

Only our own entries are ever replaced or removed: a ``headroom`` server that does not run
headroom-mcp (another tool of that name) stops the install unless ``--force`` is given,
and then its backup gives it back on uninstall. ``uninstall`` removes exactly what
``install`` added: a file that ends up as the backup's content gets the backup's bytes
back, a file (and folder) install created is deleted, and the bookkeeping goes once the
file is back in the user's hands.

| client | servers | hooks |
|---|---|---|
| Claude Code | ``~/.claude.json`` (user) or ``<repo>/.mcp.json`` (project) | ``.claude/settings.json`` |
| Codex CLI | ``~/.codex/config.toml`` or ``<repo>/.codex/config.toml`` | ``hooks.json`` beside it |
| Gemini CLI | ``~/.gemini/settings.json`` or ``<repo>/.gemini/settings.json`` | the same file |

With a ``url`` the entry points at a team server over streamable HTTP instead of launching
a local stdio server. The token stays in an environment variable that each client expands
itself (Claude Code and Gemini CLI from ``${VAR}`` in a header, Codex from
``bearer_token_env_var``), so no file holds a secret and a project-scope entry can be
committed for the whole team.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import tomlkit

from . import jsonc
from .config import default_data_dir, os_user
from .errors import InvalidInput
from .project import project_id
from .remote import DEFAULT_TOKEN_ENV

SERVER_NAME = "headroom"
CLIENTS = ("claude", "codex", "gemini")
#: Hook events per client: (our hook kind, the client's event name).
HOOK_EVENTS = {
    "claude": (("session-start", "SessionStart"), ("prompt", "UserPromptSubmit")),
    "codex": (("session-start", "SessionStart"), ("prompt", "UserPromptSubmit")),
    "gemini": (("session-start", "SessionStart"), ("prompt", "BeforeAgent")),
}
#: Tells a team server which project the agent works in (written for project-scope installs only).
PROJECT_HEADER = "X-Headroom-Project"
#: Keys of a server entry that only one transport uses, per client. Re-installing as the other
#: transport drops them (Codex refuses a server table that mixes ``command`` and ``url``), while
#: the user's shared additions (timeouts, trust, tool filters) stay.
TRANSPORT_KEYS = {
    "claude": {"stdio": ("command", "args", "env"), "http": ("url", "headers")},
    "codex": {"stdio": ("command", "args", "env", "env_vars", "cwd"),
              "http": ("url", "bearer_token_env_var", "bearer_token", "http_headers", "env_http_headers")},
    "gemini": {"stdio": ("command", "args", "env", "cwd"), "http": ("httpUrl", "url", "headers")},
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: How our team entries take the token: from a variable each client expands (``--token-env``).
_BEARER_FROM_ENV = re.compile(r"Bearer \$\{[A-Za-z_][A-Za-z0-9_]*\}")
#: Our program's names: the console script (any install's path to it) and ``python -m headroom_mcp``.
_OUR_PROGRAMS = ("headroom-mcp", "headroom_mcp")
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


@dataclass(frozen=True)
class Notes:
    """What install remembers about one file until uninstall: the user's own file as it was
    (``backup``), or that install created it and which folders with it (``created``, a JSON
    list). Without the latter, uninstall never deletes a file or folder: it was the user's."""

    backup: Path
    created: Path
    ledger: Path | None = None  # the folder holding the notes when it is ours alone (pruned when empty)

    def read_backup(self) -> str | None:
        """The user's own file saved by an install, if any (a symlink is never followed)."""
        return _read(self.backup) if self.backup.is_file() and not self.backup.is_symlink() else None

    def created_folders(self) -> list[Path]:
        """The folders install created for the file (empty if it created none, or not the file)."""
        try:
            return [Path(p) for p in json.loads(_read(self.created) or "[]")]
        except ValueError:
            return []

    def release(self) -> None:
        """Forget the file (an uninstall is done with it), and the ledger folders left empty."""
        for note in (self.backup, self.created):
            note.unlink(missing_ok=True)
            if self.ledger is not None:
                _remove_empty([folder for folder in [note.parent, *note.parent.parents] if folder.is_relative_to(self.ledger)])


@dataclass
class Change:
    """One file's content before and after (``None``: the file does not exist).

    ``save``: keep ``before`` as the backup (it holds none of our entries, so it is the
    user's own file); ``release``: an uninstall, after which the notes are deleted.
    """

    path: Path
    before: str | None
    after: str | None
    notes: Notes
    save: bool = False
    release: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(True), (self.after or "").splitlines(True),
            fromfile=str(self.path), tofile=str(self.path),
        ))


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


def _read(path: Path) -> str | None:
    """A file's text with its own line endings (``read_text`` would turn CRLF into LF), or None if absent."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _remove_empty(folders: list[Path]) -> None:
    """Remove each folder that is empty, deepest first."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


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


# ---- file edits ---------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """Plain data for a tomlkit item (JSON data is plain already)."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def _names_us(words: list[Any]) -> bool:
    """Whether one of the words is our program (by any path to it)."""
    return any(re.split(r"[\\/]", str(w))[-1].removesuffix(".exe") in _OUR_PROGRAMS for w in words)


def is_our_server(entry: Any) -> bool:
    """Whether a ``headroom`` server entry is headroom-mcp's, so install may replace it and uninstall remove it.

    Ours: a stdio entry whose command line runs headroom-mcp (any install's path to it, or
    ``python -m headroom_mcp``), or a team entry that takes its token from an environment
    variable the way install writes it. Anything else named ``headroom`` is another tool's.
    """
    entry = _plain(entry)
    if not isinstance(entry, dict):
        return False
    if "command" in entry:
        args = entry.get("args")
        return _names_us([entry["command"], *(args if isinstance(args, list) else [])])
    headers = entry.get("headers") or entry.get("http_headers")
    headers = headers if isinstance(headers, dict) else {}
    return (isinstance(entry.get("bearer_token_env_var"), str) or PROJECT_HEADER in headers
            or bool(_BEARER_FROM_ENV.fullmatch(str(headers.get("Authorization", "")))))


def _has_ours(data: Any, servers_key: str) -> bool:
    """Whether a config holds our server entry or one of our hooks (then it is not the user's own file)."""
    if not isinstance(data, dict):
        return False
    servers = data.get(servers_key)
    return (isinstance(servers, dict) and is_our_server(servers.get(SERVER_NAME))) or any(our_hooks(data.get("hooks")))


def _next_server(current: Any, entry: dict[str, Any] | None, restored: Any, client: str, transport: str,
                 force: bool, path: Path) -> Any:
    """What the ``headroom`` entry becomes (None: no entry).

    Installing puts ours in, keeping what the user added to an earlier one of ours; another
    tool's entry of that name is replaced only with ``force`` (its file's backup keeps it).
    Uninstalling takes ours out and gives back the entry ``--force`` replaced (``restored``),
    and leaves anyone else's alone.
    """
    foreign = current is not None and not is_our_server(current)
    if entry is None:
        return current if foreign else restored
    if foreign and not force:
        plain = _plain(current)
        what = plain.get("command") or plain.get("url") or plain.get("httpUrl") if isinstance(plain, dict) else plain
        raise InvalidInput(f"{path} already has a {SERVER_NAME!r} server that is not headroom-mcp's ({what!r}); "
                           f"nothing was changed. Rename yours, or run install with --force to replace it "
                           "(uninstall puts it back)")
    return _merged_entry(None if foreign else current, entry, client, transport)


def _replaced_entry(notes: Notes, kind: str) -> Any:
    """The user's own ``headroom`` entry that ``install --force`` replaced, from the backup (None if none).

    For TOML it is the backup's own tomlkit item, so it goes back in its own layout.
    """
    text = notes.read_backup()
    try:
        data = tomlkit.parse(text or "") if kind == "toml" else _loads(text or "", kind)
    except Exception:  # a damaged backup gives nothing back
        return None
    servers = data.get("mcp_servers" if kind == "toml" else "mcpServers") if isinstance(data, dict) else None
    entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
    return entry if entry is not None and not is_our_server(entry) else None


def _newline(text: str | None) -> str:
    """The file's line ending: CRLF when every line ends so, else LF (what a new file gets)."""
    return "\r\n" if text and "\r\n" in text and "\n" not in text.replace("\r\n", "") else "\n"


def _edit_file(path: Path, kind: str, edit: Callable[[str | None], tuple[str | None, Any, Any]],
               install: bool, notes: Notes) -> Change:
    """Run ``edit`` (LF text in: its result text, the data before and after) in the file's own line endings, then settle.

    Installing over the user's own file marks it for a backup. Uninstalling: when what is
    left differs from the backup only in whitespace (a blank line tomlkit kept), the
    backup's bytes come back; a file left empty (no comments) that install created is
    deleted; the notes go either way.
    """
    before = _read(path)
    newline = _newline(before)
    after, original, result = edit(before if before is None else before.replace(newline, "\n"))
    after = after if after is None else after.replace("\n", newline)
    if install:
        servers_key = "mcp_servers" if kind == "toml" else "mcpServers"
        return Change(path, before, after, notes, save=before is not None and not _has_ours(original, servers_key))
    saved = notes.read_backup()
    if after == before or after is None:
        pass
    elif saved is not None:
        try:
            if _content(saved, kind) == _content(after, kind) and jsonc.same(_loads(saved, kind), result):
                after = saved
        except ValueError:
            pass
    elif not result and not _content(after, kind) and notes.created.is_file():
        after = None
    return Change(path, before, after, notes, release=True)


def _loads(text: str, kind: str) -> Any:
    return tomllib.loads(text) if kind == "toml" else (jsonc.loads(text) if text.strip() else {})


def _content(text: str, kind: str) -> str:
    """The text less whitespace and (JSON) the outer braces: what the user would lose if the file
    went, and what must match the backup for its bytes to come back (an empty file is ``{}``)."""
    bare = re.sub(r"\s", "", text)
    return bare if kind == "toml" else bare.removeprefix("{").removesuffix("}")


def _json_edit(path: Path, edit: Callable[[dict[str, Any]], None], install: bool, notes: Notes) -> Change:
    """Apply ``edit`` to the file's data, then splice just the difference into its text."""

    def edit_text(before: str | None) -> tuple[str | None, Any, Any]:
        try:
            data = jsonc.loads(before) if before and before.strip() else {}
        except ValueError as exc:
            raise InvalidInput(f"{path} is not valid JSON ({exc}); fix it or move it away, nothing was changed") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{path} does not hold a JSON object; nothing was changed")
        result = copy.deepcopy(data)
        edit(result)
        if jsonc.same(result, data):
            return before, data, result
        if before is None or not before.strip():
            return (json.dumps(result, indent=2, ensure_ascii=False) + "\n" if result else before), data, result
        return jsonc.update(before, result), data, result

    return _edit_file(path, "json", edit_text, install, notes)


def _toml_edit(path: Path, edit: Callable[[Any], None], expect: Callable[[dict[str, Any]], None],
               install: bool, notes: Notes, sample: str = "codex.config.toml") -> Change:
    """Edit a TOML file keeping its layout; ``expect`` applies the same change to plain data.

    TOML can say one thing several ways (tables, inline tables, dotted keys), and a
    layout-keeping edit of an unusual one could move a user's key. So the result is read
    back and must equal the original data with exactly our change; otherwise nothing is
    written and the user is told what to add by hand.
    """
    return _edit_file(path, "toml", lambda before: _toml_text(path, before, edit, expect, install, sample), install, notes)


def _toml_text(path: Path, before: str | None, edit: Callable[[Any], None], expect: Callable[[dict[str, Any]], None],
               install: bool, sample: str) -> tuple[str | None, Any, Any]:
    """``_toml_edit`` on the text: the new text, the data before and after."""
    try:
        doc = tomlkit.parse(before or "")
        original = doc.unwrap()
        edit(doc)
        after = tomlkit.dumps(doc)
        result = tomllib.loads(after)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"could not edit {path} ({type(exc).__name__}: {exc}); nothing was changed") from None
    wanted = json.loads(json.dumps(original))
    expect(wanted)
    if result != wanted:
        raise InvalidInput(f"could not edit {path} without disturbing its other settings; nothing was changed. "
                           f"Add the entry from agent-configs/{sample} by hand")
    if result == original:
        return before, original, result
    if not install and after.strip():
        after = after.rstrip("\n") + "\n"  # tomlkit leaves the blank line that preceded a removed table
    elif not after.strip() and before is None:
        return None, original, result
    return after, original, result


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


def _server_entry(target: Target, client: str) -> dict[str, Any]:
    """Our entry: a stdio launch of this install, or (with ``url``) the team server's endpoint."""
    if target.url is None:
        entry: dict[str, Any] = {"command": target.command, "args": target.args("serve", agent=client)}
        env = dict(target.env)
        if client == "claude":
            return {"type": "stdio", **entry, "env": env}
        if client == "codex" and target.pass_env:
            entry["env_vars"] = list(target.pass_env)  # Codex passes on only the variables it is told to
        return {**entry, **({"env": env} if env else {})}
    project = {PROJECT_HEADER: target.project} if target.project else {}
    if client == "codex":
        return {"url": target.url, "bearer_token_env_var": target.token_variable, **({"http_headers": project} if project else {})}
    headers = {"Authorization": f"Bearer ${{{target.token_variable}}}", **project}  # both clients expand ${VAR}
    if client == "claude":
        return {"type": "http", "url": target.url, "headers": headers}
    return {"httpUrl": target.url, "headers": headers}


def _merged_entry(existing: Any, entry: dict[str, Any], client: str, transport: str) -> dict[str, Any]:
    """Ours over what the user added to our entry (env, timeouts, extra headers), minus the other transport's keys."""
    other = TRANSPORT_KEYS[client]["http" if transport == "stdio" else "stdio"]
    plain = _plain(existing)
    merged = {k: v for k, v in plain.items() if k not in other} if isinstance(plain, dict) else {}
    for key, value in entry.items():
        mine = merged.get(key)
        merged[key] = {**mine, **value} if isinstance(value, dict) and isinstance(mine, dict) else value
    return merged


def split_hook(command: str) -> tuple[dict[str, str], list[str]]:
    """A hook's command line as its leading ``VAR=value`` assignments and the words after ({}, [] if not shell words)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return {}, []
    assigned = dict(w.split("=", 1) for w in itertools.takewhile(_ASSIGNMENT.match, words))
    return assigned, words[len(assigned):]


def is_our_hook(hook: Any) -> bool:
    """A hook that runs ``headroom-mcp hook ...`` itself; one that only mentions it (a wrapper script) is the user's."""
    if not isinstance(hook, dict):
        return False
    _, words = split_hook(str(hook.get("command", "")))
    return len(words) > 1 and _names_us(words[:1]) and words[1] == "hook"


def our_hooks(hooks: Any) -> Iterator[tuple[str, int, int, dict[str, Any]]]:
    """(event, group index, handler index, hook) of each of our hooks in a client's ``hooks`` setting."""
    for event, groups in hooks.items() if isinstance(hooks, dict) else ():
        for g, group in enumerate(groups if isinstance(groups, list) else ()):
            inner = group.get("hooks") if isinstance(group, dict) else None
            for h, hook in enumerate(inner if isinstance(inner, list) else ()):
                if is_our_hook(hook):
                    yield event, g, h, hook


def _set_hooks(hooks: dict[str, Any], target: Target, client: str, install: bool) -> None:
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
    if not install:
        return
    for kind, event in HOOK_EVENTS[client]:
        hook: dict[str, Any] = {"type": "command", "command": target.hook_command(kind, client), "timeout": 10}
        group: dict[str, Any] = {"hooks": [hook]}
        if client == "gemini":
            hook["name"] = f"headroom-mcp-{kind}"
            hook["timeout"] = 10_000  # milliseconds in Gemini CLI
            group["matcher"] = "*"
        hooks.setdefault(event, []).append(group)


def _json_servers(data: dict[str, Any], settle: Callable[[Any], Any]) -> None:
    """Our entry in ``mcpServers`` becomes what ``settle`` makes of the current one (see ``_next_server``)."""
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise InvalidInput(f"mcpServers must be an object, found {type(servers).__name__}; nothing was changed")
    value = settle(servers.get(SERVER_NAME))
    if value is None:
        servers.pop(SERVER_NAME, None)
    else:
        servers[SERVER_NAME] = value
    if not servers:
        del data["mcpServers"]


def _toml_servers(doc: Any, settle: Callable[[Any], Any]) -> None:
    """Our entry in a Codex config becomes what ``settle`` makes of the current one, as a real table.

    A user's entry that ``settle`` gives back (from the backup) keeps its own layout; one it
    leaves alone is not touched at all.
    """
    servers = doc.get("mcp_servers")
    current = servers.get(SERVER_NAME) if servers is not None else None
    value = settle(current)
    if value is current:
        return
    if isinstance(value, tomlkit.items.Item):
        servers[SERVER_NAME] = value
    elif value is None:
        del servers[SERVER_NAME]
        if not servers:
            del doc["mcp_servers"]
    else:
        if servers is None:
            servers = tomlkit.table(is_super_table=True)
            doc["mcp_servers"] = servers
        elif not isinstance(servers, tomlkit.items.Table):  # an inline table: make it a real one
            plain = servers.unwrap()
            del doc["mcp_servers"]
            servers = tomlkit.table(is_super_table=True)
            for name, entry in plain.items():
                servers[name] = entry
            doc["mcp_servers"] = servers
        table = tomlkit.table()
        for key, item in value.items():
            table[key] = item
        if SERVER_NAME in servers and not isinstance(servers[SERVER_NAME], tomlkit.items.Table):
            del servers[SERVER_NAME]  # an inline or dotted entry: replaced by a real table
        servers[SERVER_NAME] = table  # a table is replaced in place, keeping the blank lines around it


def _json_hooks(data: dict[str, Any], target: Target, client: str, install: bool) -> None:
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict) or not all(isinstance(v, list) for v in hooks.values() if v is not None):
        raise InvalidInput("the hooks setting is not an object of lists; fix it or install without --hooks (nothing was changed)")
    for event in [e for e, v in hooks.items() if v is None]:
        del hooks[event]
    _set_hooks(hooks, target, client, install)
    if not data.get("hooks"):
        data.pop("hooks", None)


# ---- per client ---------------------------------------------------------------------------

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
    user = target.scope == "user"
    entry = _server_entry(target, client) if install else None
    want_hooks = install and hooks
    # Hooks are (re)written when asked for and removed on uninstall; a plain install
    # leaves whatever hooks an earlier ``install --hooks`` put there.
    touch_hooks = want_hooks or not install

    def settler(path: Path, kind: str) -> Callable[[Any], Any]:
        """What our entry in ``path`` becomes, given the current one."""
        restored = None if install else _replaced_entry(target.notes(path), kind)
        return lambda current: _next_server(current, entry, restored, client, target.transport, force, path)

    def hooks_edit(path: Path) -> Change:
        return _json_edit(path, lambda d: _json_hooks(d, target, client, want_hooks), install, target.notes(path))

    changes: list[Change] = []
    if client == "claude":
        servers_file = target.home / ".claude.json" if user else target.project_root / ".mcp.json"
        settings_file = (target.home if user else target.project_root) / ".claude" / "settings.json"
        settle = settler(servers_file, "json")
        changes.append(_json_edit(servers_file, lambda d: _json_servers(d, settle), install, target.notes(servers_file)))
        if want_hooks or (touch_hooks and settings_file.exists()):
            changes.append(hooks_edit(settings_file))
    elif client == "codex":
        base = (target.home if user else target.project_root) / ".codex"
        config = target.notes(base / "config.toml")
        settle = settler(base / "config.toml", "toml")
        # Uninstalling takes back the hooks feature flag unless the user's own file had it.
        try:
            users = tomllib.loads(config.read_backup() or "")
        except ValueError:  # a damaged backup: take the flag back as if there were none
            users = {}
        users_features = users.get("features") if isinstance(users.get("features"), dict) else None
        drop_flag = not install and (users_features or {}).get("codex_hooks") is not True
        drop_features = drop_flag and users_features is None

        def edit_config(doc: Any) -> None:
            _toml_servers(doc, settle)
            if want_hooks:
                features = doc.get("features")
                if features is None:
                    features = tomlkit.table()
                    doc["features"] = features
                features["codex_hooks"] = True
            features = doc.get("features")
            if drop_flag and isinstance(features, dict) and "codex_hooks" in features:
                del features["codex_hooks"]
                if not features and drop_features:
                    del doc["features"]

        def expect_config(data: dict[str, Any]) -> None:
            servers = data.setdefault("mcp_servers", {})
            value = _plain(settle(servers.get(SERVER_NAME)))
            if value is None:
                servers.pop(SERVER_NAME, None)
            else:
                servers[SERVER_NAME] = value
            if not servers:
                del data["mcp_servers"]
            if want_hooks:
                data.setdefault("features", {})["codex_hooks"] = True
            if drop_flag and isinstance(data.get("features"), dict) and "codex_hooks" in data["features"]:
                del data["features"]["codex_hooks"]
                if not data["features"] and drop_features:
                    del data["features"]

        sample = "codex.team.config.toml" if target.url else "codex.config.toml"
        changes.append(_toml_edit(base / "config.toml", edit_config, expect_config, install, config, sample))
        if want_hooks or (touch_hooks and (base / "hooks.json").exists()):
            changes.append(hooks_edit(base / "hooks.json"))
    else:
        settings_file = (target.home if user else target.project_root) / ".gemini" / "settings.json"
        settle = settler(settings_file, "json")

        def edit_gemini(d: dict[str, Any]) -> None:
            _json_servers(d, settle)
            if want_hooks or (touch_hooks and "hooks" in d):
                _json_hooks(d, target, client, want_hooks)

        changes.append(_json_edit(settings_file, edit_gemini, install, target.notes(settings_file)))
    return changes


def apply(changes: list[Change]) -> list[Change]:
    """Write (or delete) the changed files atomically, noting first what install found.

    A config that is a symlink (dotfile managers) is written through to its target. Its
    notes (see ``Notes``) are never followed if they are symlinks (a repository could
    plant one pointing at ~/.bashrc) and are created 0600: the backup holds the file as it
    was with none of our entries; a file install creates gets a note naming the folders it
    created with it. An uninstall deletes the notes: by then the file is back in the user's
    hands. A file we delete takes with it the folders install created for it, once empty.
    """
    for change in changes:  # every check before the first write
        for note in (change.notes.backup, change.notes.created):
            if note.is_symlink():
                raise InvalidInput(f"{note} is a symlink; remove it first (nothing was changed)")
    done, emptied = [], []
    for change in changes:
        path = change.path.resolve() if change.path.is_symlink() else change.path
        if change.changed and change.after is None:
            path.unlink(missing_ok=True)
            emptied += change.notes.created_folders()
            done.append(change)
        elif change.changed:
            created = [str(p) for p in itertools.takewhile(lambda p: not p.exists(), path.parents)]
            path.parent.mkdir(parents=True, exist_ok=True)
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
            if change.save and change.before is not None:
                _write_note(change.notes.backup, change.before)
            if change.before is None and not change.release:
                _write_note(change.notes.created, json.dumps(created))
            _write(path, change.after or "", mode)
            done.append(change)
        if change.release:
            change.notes.release()
    _remove_empty(emptied)
    return done


def _write_note(path: Path, text: str) -> None:
    """A note of install's, private to the user (its folder, under a git dir, made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, text, 0o600)


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically: a temp file beside ``path``, then a rename over it (over a link, not through it).
    The text goes as it is, line endings included."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
