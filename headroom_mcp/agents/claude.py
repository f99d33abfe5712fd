"""Claude Code: servers in ``~/.claude.json`` or a project's ``.mcp.json``, hooks in ``.claude/settings.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks import check, load_config
from ..ours import SERVER_NAME
from .spec import ClientSpec, ConfigFile, Entry, Finding, bearer_headers, launch

if TYPE_CHECKING:
    from ..install import Target


def _stdio(target: Target, agent: str) -> Entry:
    return {"type": "stdio", **launch(target, agent), "env": dict(target.env)}


def _http(target: Target, agent: str) -> Entry:
    return {"type": "http", "url": target.url, "headers": bearer_headers(target)}  # Claude Code expands ${VAR}


def project_approval(home: Path, root: Path, shell: Mapping[str, str], registered: bool) -> list[Finding]:
    """Claude Code starts a server from a project's ``.mcp.json`` only once the user approves it
    (``claude mcp list``: "Pending approval"); until then the agent has no memory tools.

    The choice is recorded in its settings files (user, project, local) as
    ``enabledMcpjsonServers`` / ``enableAllProjectMcpServers``, or ``disabledMcpjsonServers``
    for a refusal (read from Claude Code 2.1's bundle; an approval for one session only is
    kept in memory, so this may warn about a server approved just for the running session).
    """
    servers = load_config(root / ".mcp.json", "json").get("mcpServers")
    if root == home or not isinstance(servers, dict) or SERVER_NAME not in servers:
        return []
    files = [home / ".claude" / "settings.json", root / ".claude" / "settings.json", root / ".claude" / "settings.local.json"]
    settings = [load_config(path, "json") for path in files]

    def listed(key: str) -> bool:
        return any(isinstance(s.get(key), list) and SERVER_NAME in s[key] for s in settings)

    approved = not listed("disabledMcpjsonServers") and (
        listed("enabledMcpjsonServers") or any(s.get("enableAllProjectMcpServers") is True for s in settings))
    state = "approved" if approved else "rejected" if listed("disabledMcpjsonServers") else "pending approval"
    return [check("claude project approval", approved or None,
                  f"{SERVER_NAME} in {root / '.mcp.json'} is {state}" + ("" if approved else ": Claude Code does not start it"),
                  f"run `claude` in {root} and approve the {SERVER_NAME} server (or add "
                  f'"enabledMcpjsonServers": ["{SERVER_NAME}"] to {files[2]})')]


SPEC = ClientSpec(
    name="claude",
    servers=ConfigFile(".claude.json", ".mcp.json"),
    stdio_entry=_stdio,
    http_entry=_http,
    http_keys=("url", "headers"),
    hooks=ConfigFile(".claude/settings.json"),
    samples=("claude-code.mcp.json", "claude-code.team.mcp.json"),
    doctor_checks=project_approval,
)
