"""Project identity: the same repository gets the same id on every clone and machine.

The id is the normalised ``origin`` remote URL (``git@github.com:Acme/Atlas.git`` and
``https://github.com/acme/atlas`` both become ``github.com/acme/atlas``); without a remote,
the repository root path; outside a repository, the working directory.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path


def normalize_remote(url: str) -> str:
    """``host/owner/repo`` from any git remote form (scp-like, ssh, https, with creds or .git)."""
    url = url.strip()
    match = re.match(r"^(?:[\w.+-]+@)?([\w.-]+):(?!\d+/)(.+)$", url)  # scp-like git@host:owner/repo
    if match and "://" not in url:
        host, path = match.group(1), match.group(2)
    else:
        match = re.match(r"^[a-z][\w+.-]*://(?:[^@/]*@)?([^/:]+)(?::\d+)?/(.+)$", url, re.I)
        if not match:
            return url.rstrip("/")
        host, path = match.group(1), match.group(2)
    path = re.sub(r"\.git/?$", "", path.strip("/"))
    return f"{host.lower()}/{path.lower()}"


def find_repo_root(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        if (directory / ".git").exists():
            return directory
    return None


def _git_dir(root: Path) -> Path:
    dot_git = root / ".git"
    if dot_git.is_file():  # worktrees and submodules: "gitdir: <path>"
        text = dot_git.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            git_dir = Path(text.split(":", 1)[1].strip())
            git_dir = git_dir if git_dir.is_absolute() else (root / git_dir)
            common = git_dir / "commondir"
            if common.is_file():
                git_dir = git_dir / common.read_text().strip()
            return git_dir.resolve()
    return dot_git


def origin_url(root: Path) -> str | None:
    """The ``origin`` URL read from the repository's config file (no git subprocess)."""
    config = configparser.RawConfigParser(strict=False)
    try:
        config.read(_git_dir(root) / "config", encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    section = 'remote "origin"'
    if config.has_option(section, "url"):
        return config.get(section, "url")
    remotes = [s for s in config.sections() if s.startswith('remote "')]
    return config.get(remotes[0], "url") if remotes and config.has_option(remotes[0], "url") else None


def project_id(cwd: str | os.PathLike[str] | None = None) -> str:
    """The project identity of ``cwd`` (default: the process's working directory)."""
    start = Path(cwd or os.getcwd()).expanduser().resolve()
    root = find_repo_root(start)
    if root is None:
        return str(start)
    url = origin_url(root)
    return normalize_remote(url) if url else str(root)
