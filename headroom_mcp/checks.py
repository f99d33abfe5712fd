"""What ``doctor``'s checks share: the shape of one finding, and a lenient read of an agent's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def check(name: str, ok: bool | None, detail: str, fix: str | None = None) -> dict[str, Any]:
    """ok True/False, or None for a warning (works, but worth knowing); ``fix`` says what to do about it."""
    return {"check": name, "status": "ok" if ok else "warn" if ok is None else "fail", "detail": detail,
            **({"fix": fix} if fix and not ok else {})}


def load_config(path: Path, kind: str) -> dict[str, Any]:
    """A client config's data, or {} when it is missing or unreadable (install reports those)."""
    import tomllib  # here, not at the top: every hook and ``serve`` reads the agent specs, which name these checks

    from . import jsonc

    try:
        text = path.read_text()
        data = tomllib.loads(text) if kind == "toml" else jsonc.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
