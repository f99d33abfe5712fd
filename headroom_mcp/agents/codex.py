"""Codex CLI: servers in ``~/.codex/config.toml`` (or a project's ``.codex/``), hooks in ``hooks.json`` beside it.

Codex starts its servers with a minimal environment, so a stdio entry names the variables
it must pass on (``env_vars``), and its hooks run only behind the ``[features]
codex_hooks`` flag and once the user has trusted them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import check, load_config
from ..ours import SERVER_NAME, our_hooks
from .spec import ClientSpec, ConfigFile, Entry, Finding, env_if_any, launch, project_header

if TYPE_CHECKING:
    from ..install import Target


def _stdio(target: Target, agent: str) -> Entry:
    passed = {"env_vars": list(target.pass_env)} if target.pass_env else {}  # Codex passes on only these
    return {**launch(target, agent), **passed, **env_if_any(target)}


def _http(target: Target, agent: str) -> Entry:
    headers = project_header(target)
    return {"url": target.url, "bearer_token_env_var": target.token_variable, **({"http_headers": headers} if headers else {})}


def _hook_trust(hooks_file: Path, state: dict[str, Any]) -> Finding | None:
    """How many of our hooks in ``hooks_file`` Codex trusts (None: it holds none of ours)."""
    hooks = load_config(hooks_file, "json").get("hooks")
    keys = [f"{hooks_file}:{re.sub(r'(?<!^)(?=[A-Z])', '_', event).lower()}:{g}:{h}" for event, g, h, _ in our_hooks(hooks)]
    if not keys:
        return None
    trusted = [k for k in keys if isinstance(state.get(k), dict) and state[k].get("trusted_hash")]
    return check("codex hook trust", len(trusted) == len(keys) or None,
                 f"{len(trusted)} of {len(keys)} of our hooks in {hooks_file} trusted"
                 + ("" if len(trusted) == len(keys) else "; Codex skips the others"),
                 "run `codex` in a terminal and choose 'Trust all and continue' when it says hooks need review "
                 "(or review them with /hooks)")


def trust(home: Path, root: Path, shell: Mapping[str, str], registered: bool) -> list[Finding]:
    """Codex runs a hook only after the user trusts it, and reads a project's .codex/ only in a trusted project.

    Hook trust is recorded in ``~/.codex/config.toml`` as ``[hooks.state."<hooks.json path>:<event>:<group>:<handler>"]``
    with a ``trusted_hash``; project trust as ``[projects."<path>"] trust_level = "trusted"``.
    """
    user_config = load_config(home / ".codex" / "config.toml", "toml")
    hooks_cfg = user_config.get("hooks")
    state = hooks_cfg.get("state") if isinstance(hooks_cfg, dict) else None
    state = state if isinstance(state, dict) else {}
    checks = [found for hooks_file in dict.fromkeys([home / ".codex" / "hooks.json", root / ".codex" / "hooks.json"])
              if (found := _hook_trust(hooks_file, state)) is not None]
    project_servers = load_config(root / ".codex" / "config.toml", "toml").get("mcp_servers")
    if root != home and isinstance(project_servers, dict) and SERVER_NAME in project_servers:
        projects = user_config.get("projects")
        entry = projects.get(str(root)) if isinstance(projects, dict) else None
        ok = isinstance(entry, dict) and entry.get("trust_level") == "trusted"
        checks.append(check("codex project trust", ok or None,
                            f"{root} is {'trusted' if ok else 'not trusted'}: Codex reads {root / '.codex'} only in trusted projects",
                            f'trust the project when codex asks, or add [projects."{root}"] trust_level = "trusted" '
                            "to ~/.codex/config.toml"))
    return checks


SPEC = ClientSpec(
    name="codex",
    servers=ConfigFile(".codex/config.toml", format="toml"),
    stdio_entry=_stdio,
    http_entry=_http,
    http_keys=("url", "bearer_token_env_var", "bearer_token", "http_headers", "env_http_headers"),
    stdio_keys=("command", "args", "env", "env_vars", "cwd"),
    servers_key="mcp_servers",
    header_keys=("headers", "http_headers"),
    token_env_key="bearer_token_env_var",
    hooks=ConfigFile(".codex/hooks.json"),
    hooks_flag=("features", "codex_hooks"),
    servers_inherit_env=False,
    samples=("codex.config.toml", "codex.team.config.toml"),
    doctor_checks=trust,
)
