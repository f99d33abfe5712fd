"""Gemini CLI: servers and hooks in ``~/.gemini/settings.json`` or a project's ``.gemini/settings.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks import check, load_config
from .spec import ClientSpec, ConfigFile, Entry, Finding, bearer_headers, env_if_any, launch

if TYPE_CHECKING:
    from ..install import Target


def _stdio(target: Target, agent: str) -> Entry:
    return {**launch(target, agent), **env_if_any(target)}


def _http(target: Target, agent: str) -> Entry:
    return {"httpUrl": target.url, "headers": bearer_headers(target)}  # Gemini CLI expands ${VAR}


def _hook_group(kind: str, command: str) -> Entry:
    """Gemini CLI names its hooks, counts their timeout in milliseconds and matches groups to tools."""
    return {"hooks": [{"type": "command", "command": command, "timeout": 10_000, "name": f"headroom-mcp-{kind}"}],
            "matcher": "*"}


def _trust_rule(folder: Path, rules: dict[str, object]) -> object:
    """The trust level of the longest rule path containing ``folder`` (``TRUST_PARENT``: the rule path's parent)."""
    best, level = -1, None
    for rule, trust in rules.items():
        base = Path(rule).parent if trust == "TRUST_PARENT" else Path(rule)
        try:
            inside = folder.is_relative_to(base.expanduser().resolve())
        except OSError:
            continue
        if inside and len(rule) > best:
            best, level = len(rule), trust
    return level


def folder_trust(home: Path, folder: Path, shell: Mapping[str, str], registered: bool) -> list[Finding]:
    """Gemini CLI disables every MCP server (and hook) in a folder the user has not trusted.

    Its rules live in ``~/.gemini/trustedFolders.json`` (or ``GEMINI_CLI_TRUSTED_FOLDERS_PATH``):
    the longest rule path that contains the folder wins; ``TRUST_PARENT`` trusts the rule
    path's parent. ``security.folderTrust.enabled: false`` or ``GEMINI_CLI_TRUST_WORKSPACE``
    turn the check off (read from Gemini CLI 0.61's sources). Asked only once Gemini has an entry of ours.
    """
    if not registered:
        return []
    if shell.get("GEMINI_CLI_TRUST_WORKSPACE") == "true":
        return [check("gemini folder trust", True, "GEMINI_CLI_TRUST_WORKSPACE=true trusts every folder")]
    security = load_config(home / ".gemini" / "settings.json", "json").get("security")
    folder_trust = security.get("folderTrust") if isinstance(security, dict) else None
    if isinstance(folder_trust, dict) and folder_trust.get("enabled") is False:
        return [check("gemini folder trust", True, "folder trust is turned off in ~/.gemini/settings.json")]
    rules_file = Path(shell.get("GEMINI_CLI_TRUSTED_FOLDERS_PATH") or home / ".gemini" / "trustedFolders.json")
    here = folder.resolve()
    level = _trust_rule(here, load_config(rules_file, "json"))
    fix = (f'add "{here}": "TRUST_FOLDER" to {rules_file} (or start gemini in {here} and trust the folder when it asks)')
    if level in ("TRUST_FOLDER", "TRUST_PARENT"):
        return [check("gemini folder trust", True, f"{here} is trusted ({rules_file})")]
    state = "marked DO_NOT_TRUST" if level == "DO_NOT_TRUST" else "not trusted"
    return [check("gemini folder trust", None, f"{here} is {state}: Gemini CLI disables MCP servers and hooks here", fix)]


SPEC = ClientSpec(
    name="gemini",
    servers=ConfigFile(".gemini/settings.json"),
    stdio_entry=_stdio,
    http_entry=_http,
    http_keys=("httpUrl", "url", "headers"),
    stdio_keys=("command", "args", "env", "cwd"),
    hook_events=(("session-start", "SessionStart"), ("prompt", "BeforeAgent")),
    hook_group=_hook_group,
    url_keys=("url", "httpUrl"),
    samples=("gemini.settings.json", "gemini.team.settings.json"),
    doctor_checks=folder_trust,
)
