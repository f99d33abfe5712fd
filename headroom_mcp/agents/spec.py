"""What headroom-mcp knows about one agent client, in one place: ``ClientSpec``.

``install``, ``doctor``, the server's client detection and the CLI read only these specs,
so a new agent is one spec (and its module) added to ``agents.CLIENTS``. The builders and
checks a spec names are small functions in that agent's own module; the helpers here are
the parts the clients share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..ours import PROJECT_HEADER, SERVER_NAME, is_our_server, our_hooks

if TYPE_CHECKING:
    from ..install import Target

#: ``json`` is read as JSONC (comments, trailing commas) and edited keeping both.
Format = Literal["json", "toml"]
Entry = dict[str, Any]
#: A doctor finding (``checks.check``).
Finding = dict[str, Any]
#: Our server entry for a target, given the agent's name (which it passes as ``--agent``).
EntryBuilder = Callable[["Target", str], Entry]
#: The agent's own doctor checks: (home, project root, shell variables, whether any entry of ours is registered).
DoctorChecks = Callable[[Path, Path, Mapping[str, str], bool], list[Finding]]


@dataclass(frozen=True)
class ConfigFile:
    """One config file of a client: its path under the home (user scope) and under the repository (project scope)."""

    user: str
    project: str = ""  # default: the same path as under the home
    format: Format = "json"

    def path(self, scope: str, home: Path, root: Path) -> Path:
        return home / self.user if scope == "user" else root / (self.project or self.user)


def hook_group(kind: str, command: str) -> Entry:
    """One hook group as Claude Code and Codex take it: our command, with a timeout in seconds."""
    return {"hooks": [{"type": "command", "command": command, "timeout": 10}]}


def no_checks(home: Path, root: Path, shell: Mapping[str, str], registered: bool) -> list[Finding]:
    """For a client with nothing beyond the common checks."""
    return []


@dataclass(frozen=True)
class ClientSpec:
    """Everything install, doctor, the server and the CLI need to know about one agent client."""

    name: str  # as the CLI names it (``install NAME``), and the agent id its entries pass as ``--agent``
    servers: ConfigFile  # where its MCP servers are registered
    stdio_entry: EntryBuilder  # our entry launching a local stdio server
    http_entry: EntryBuilder  # our entry pointing at a team server (``install --url``)
    #: Keys of a server entry that only one transport uses. Re-installing as the other transport
    #: drops them (Codex refuses a server table that mixes ``command`` and ``url``), while the
    #: user's shared additions (timeouts, trust, tool filters) stay.
    http_keys: tuple[str, ...]
    stdio_keys: tuple[str, ...] = ("command", "args", "env")
    servers_key: str = "mcpServers"  # the table of servers in that file (the defaults are Claude Code's, which others copy)
    #: (our hook kind, the client's event name) for each hook install writes.
    hook_events: tuple[tuple[str, str], ...] = (("session-start", "SessionStart"), ("prompt", "UserPromptSubmit"))
    hooks: ConfigFile | None = None  # where its hooks live (JSON); None: in the servers file
    hook_group: Callable[[str, str], Entry] = hook_group  # (kind, command line) -> one hook group
    #: A (table, key) in the servers file that must be true for the client to run hooks at all.
    hooks_flag: tuple[str, str] | None = None
    url_keys: tuple[str, ...] = ("url",)  # where an http entry holds its URL
    header_keys: tuple[str, ...] = ("headers",)  # where an http entry holds its headers
    token_env_key: str | None = None  # the key an http entry names its token's variable in, if the client has one
    #: Whether a server the client launches sees the shell's variables (Codex gives it a minimal environment).
    servers_inherit_env: bool = True
    #: The copyable files in agent-configs/ that show our entry (stdio, team): named when an edit must be done by hand.
    samples: tuple[str, str] = ("", "")
    doctor_checks: DoctorChecks = no_checks
    #: Words in the name a client gives in MCP's ``initialize`` that identify it (default: ``name``).
    client_names: tuple[str, ...] = ()
    program: str = ""  # its CLI's name on PATH (default: ``name``)

    def __post_init__(self) -> None:
        if (self.hooks or self.servers).format != "json":
            raise ValueError(f"{self.name}: hooks are edited as JSON; their file must be one")

    def entry(self, target: Target) -> Entry:
        """Our server entry for ``target``: a stdio launch, or (with a URL) the team server."""
        return (self.http_entry if target.url else self.stdio_entry)(target, self.name)

    def is_ours(self, entry: Any) -> bool:
        """Whether a ``headroom`` entry in this client's servers table is headroom-mcp's (``ours.is_our_server``)."""
        return is_our_server(entry, self.header_keys, self.token_env_key)

    def holds_ours(self, data: Any) -> bool:
        """Whether a config holds our server entry or one of our hooks (then it is not the user's own file)."""
        if not isinstance(data, dict):
            return False
        servers = data.get(self.servers_key)
        return (isinstance(servers, dict) and self.is_ours(servers.get(SERVER_NAME))) or any(our_hooks(data.get("hooks")))

    def other_keys(self, transport: str) -> tuple[str, ...]:
        """The keys only the other transport uses (dropped from an entry re-installed as ``transport``)."""
        return self.http_keys if transport == "stdio" else self.stdio_keys

    def hooks_file(self, scope: str, home: Path, root: Path) -> Path:
        return (self.hooks or self.servers).path(scope, home, root)

    def files(self, home: Path, root: Path) -> list[tuple[Path, Format, str]]:
        """(path, format, scope) of each file that may hold our entries: the servers files, then the hooks files."""
        found: dict[Path, tuple[Path, Format, str]] = {}
        for file in (self.servers, self.hooks) if self.hooks else (self.servers,):
            for scope in ("user", "project"):
                path = file.path(scope, home, root)
                found.setdefault(path, (path, file.format, scope))  # the home may be the repository root
        return list(found.values())

    def identifies(self, client_name: str) -> bool:
        """Whether an MCP client's own name (``initialize``'s ``clientInfo.name``) is this agent."""
        lowered = client_name.lower()
        return any(word in lowered for word in self.client_names or (self.name,))

    @property
    def executable(self) -> str:
        return self.program or self.name

    def sample(self, transport: str) -> str:
        return self.samples[transport == "http"]


def launch(target: Target, agent: str) -> Entry:
    """The command line of a local stdio server for ``agent``."""
    return {"command": target.command, "args": target.args("serve", agent=agent)}


def env_if_any(target: Target) -> Entry:
    """The store settings a stdio entry carries (none when every one is the default)."""
    return {"env": dict(target.env)} if target.env else {}


def project_header(target: Target) -> dict[str, str]:
    """The header naming the project a team entry works in (project scope only)."""
    return {PROJECT_HEADER: target.project} if target.project else {}


def bearer_headers(target: Target) -> dict[str, str]:
    """Team headers for a client that expands ``${VAR}`` in them: the token stays in the environment."""
    return {"Authorization": f"Bearer ${{{target.token_variable}}}", **project_header(target)}
