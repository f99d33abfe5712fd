"""How headroom-mcp's own entries look in an agent's config, so install and doctor can tell them apart.

Everything install writes is recognised by its content, never by its position: a
``headroom`` server that runs another program, or a hook that only mentions headroom-mcp
(a wrapper script), is the user's and is left alone.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from typing import Any

#: Our server's name in every client's servers table.
SERVER_NAME = "headroom"
#: The header that tells a team server which project a client works in: the server reads it
#: (``auth``), ``remote`` sends it, a project-scope install writes it into the entry.
PROJECT_HEADER = "X-Headroom-Project"
#: Our program's names: the console script (any install's path to it) and ``python -m headroom_mcp``.
_OUR_PROGRAMS = ("headroom-mcp", "headroom_mcp")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: How our team entries take the token: from a variable each client expands (``--token-env``).
_BEARER_FROM_ENV = re.compile(r"Bearer \$\{[A-Za-z_][A-Za-z0-9_]*\}")


def plain(value: Any) -> Any:
    """Plain data for a tomlkit item (JSON data is plain already)."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def _names_us(words: list[Any]) -> bool:
    """Whether one of the words is our program (by any path to it)."""
    return any(re.split(r"[\\/]", str(w))[-1].removesuffix(".exe") in _OUR_PROGRAMS for w in words)


def is_our_server(entry: Any, header_keys: tuple[str, ...], token_key: str | None) -> bool:
    """Whether a ``headroom`` server entry is headroom-mcp's, so install may replace it and uninstall remove it.

    Ours: a stdio entry whose command line runs headroom-mcp (any install's path to it, or
    ``python -m headroom_mcp``), or a team entry that takes its token from an environment
    variable the way install writes it: in the first of the client's ``header_keys`` tables
    that has any, or (Codex) named by its ``token_key``. Anything else named ``headroom`` is
    another tool's.
    """
    entry = plain(entry)
    if not isinstance(entry, dict):
        return False
    if "command" in entry:
        args = entry.get("args")
        return _names_us([entry["command"], *(args if isinstance(args, list) else [])])
    headers = next((entry[key] for key in header_keys if entry.get(key)), None)
    headers = headers if isinstance(headers, dict) else {}
    return ((token_key is not None and isinstance(entry.get(token_key), str)) or PROJECT_HEADER in headers
            or bool(_BEARER_FROM_ENV.fullmatch(str(headers.get("Authorization", "")))))


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
