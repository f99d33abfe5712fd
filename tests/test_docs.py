"""The README and docs/ say what works: every link resolves inside the repository and every
command in a ``sh`` block runs.

Blocks fenced as ```` ```sh ```` are commands a reader can paste; each file's blocks run in
order, as one shell session (a later block may use what an earlier one stored), in a sandbox:
a throwaway HOME and data dir, a git repository with an ``origin`` remote as the working
directory (``.venv`` and ``bench`` link to this checkout's), and ``headroom-mcp`` on PATH.
Synopses and sample output are fenced ```` ```text ```` and are not run. Installing
headroom-mcp as a tool (``.venv/bin/uv tool install .``) runs for real, from this checkout, into the
sandbox's HOME, and the commands after it use that install. Three kinds of command cannot
run here as written, and each is exercised another way:

- installing (``python3 -m venv``, ``pip install``, ``npm install``): ``.ci/run`` runs the same
  installs on a fresh machine, so the test checks each one appears there;
- the test command itself (``python -m pytest``): it is what is running;
- a benchmark (``bench/*.py``, minutes to an hour): run with ``--help`` (it exists, imports and
  takes those options), and a team server (``serve --transport http|sse``): started in the
  background, asked for ``/healthz``, then stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, kill_daemon

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
AGENT_BIN = ROOT / "tests" / "agents" / "node_modules" / ".bin"

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
_INSTALL = re.compile(r"^(python3 -m venv|\S*pip install|npm install)\b")
_TOOL = re.compile(r"^(\S*/)?(uv tool install|pipx install) \.(\s|$)")
_SERVE = re.compile(r"^headroom-mcp serve --transport (http|sse)\b.*?--port (\d+)")


def _prose(text: str) -> str:
    """The page without its fenced blocks (links inside code are not links)."""
    return _FENCE.sub("", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    out = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6} (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower().replace("`", ""))
            out.add(slug.replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository(page: Path):
    for m in _LINK.finditer(_prose(page.read_text(encoding="utf-8"))):
        url = m.group(1) or m.group(2)
        if re.match(r"^[a-z]+:", url):  # http(s), mailto: outside links are not checked
            continue
        path, _, anchor = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: link {url!r} points at nothing"
        assert ROOT in target.parents or target == ROOT, f"{page.name}: link {url!r} leaves the repository"
        if anchor:
            assert target.suffix == ".md" and anchor in _anchors(target), f"{page.name}: no heading for {url!r}"


def _commands(page: Path) -> list[str]:
    """The command lines of a page's ``sh`` blocks (comments and blank lines dropped)."""
    lines = []
    for lang, body in _FENCE.findall(page.read_text(encoding="utf-8")):
        if lang == "sh":
            lines += [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return lines


def _script(commands: list[str]) -> str:
    """The shell session a page's commands run as (see the module docstring)."""
    out = ["set -euo pipefail"]
    for command in commands:
        for part in re.split(r" && ", command):
            if _INSTALL.match(part.strip()):
                continue  # checked against .ci/run
            if re.search(r"python -m pytest\b", part):
                continue
            serve = _SERVE.match(part.strip())
            if _TOOL.match(part.strip()):
                out.append(f"(cd {ROOT} && {part.split(' #')[0]})")
            elif serve:
                port = serve.group(2)
                out += [f"{part.split(' #')[0]} & server=$!",
                        f"for _ in $(seq 150); do curl -sf -o /dev/null http://127.0.0.1:{port}/healthz && break; sleep 0.2; done",
                        f"curl -sf -o /dev/null http://127.0.0.1:{port}/healthz",
                        "kill $server; wait $server || true"]
            elif re.search(r"(^|\s)bench/\S+\.py", part):
                out.append(f"{part.split(' #')[0]} --help > /dev/null")
            else:
                out.append(part)
    return "\n".join(out) + "\n"


RUNNABLE = [page for page in PAGES if _commands(page)]


def _install_words(command: str) -> list[str]:
    """An install command's words, with what does not change what is installed dropped."""
    command = re.sub(r"\S*python3? -m pip\b", "pip", command.split(" #")[0])
    return [w.rsplit("/", 1)[-1] if i == 0 else w for i, w in enumerate(command.split())
            if w not in ("--quiet", "--no-audit", "--no-fund", "--loglevel=error")]


def _ci_installs() -> list[list[str]]:
    """What ``.ci/run`` installs: its own install lines and the README's first block, which it runs."""
    first = _FENCE.search(PAGES[0].read_text(encoding="utf-8"))
    lines = CI.splitlines() + (first.group(2).split(" && ") if first else [])
    return [_install_words(line.strip()) for line in lines if _INSTALL.match(line.strip().removeprefix(".venv/bin/"))
            or re.match(r"^\S*python3? -m pip install", line.strip())]


def test_ci_runs_the_readmes_first_command():
    """The README's first command (install, remember, recall) is what a new user runs first."""
    first = _FENCE.search(PAGES[0].read_text(encoding="utf-8"))
    assert first and first.group(1) == "sh" and "pip install" in first.group(2)
    assert "README.md" in CI and "^```sh" in CI


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_install_command_is_one_that_ci_runs(page: Path):
    installs = _ci_installs()
    for command in _commands(page):
        for part in command.split(" && "):
            if _INSTALL.match(part.strip()):
                words = _install_words(part.strip())
                assert any(words[0] == ci[0] and set(words) <= set(ci) for ci in installs), \
                    f"{page.name}: {part!r} is not what .ci/run installs"


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_runs(page: Path, tmp_path: Path):
    home, data, repo = tmp_path / "home", tmp_path / "data", tmp_path / "repo"
    home.mkdir()
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "https://github.com/acme/atlas.git"], check=True)
    for name in (".venv", "bench"):
        (repo / name).symlink_to(ROOT / name)
    # A tool install puts headroom-mcp in ~/.local/bin, which then comes first, as on a user's PATH.
    path = [str(home / ".local" / "bin"), str(ROOT / ".venv" / "bin")] + ([str(AGENT_BIN)] if AGENT_BIN.is_dir() else [])
    # The machine's own settings (certificates, package indexes, proxies) pass through; what
    # would point a command at the user's real store or agent configs does not.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HEADROOM_MCP_", "XDG_CONFIG", "XDG_DATA", "XDG_CACHE", "CODEX_", "GEMINI_", "CLAUDE_", "VIRTUAL_ENV"))}
    env.update({"HOME": str(home), "PATH": os.pathsep.join([*path, os.environ["PATH"]]), "HEADROOM_MCP_DATA_DIR": str(data),
                "HEADROOM_MCP_IDLE_TIMEOUT": "60",
                # uv's download cache is the user's own: the sandbox's HOME would fetch every wheel again.
                "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))})
    script = _script(_commands(page))
    if not AGENT_BIN.is_dir() and re.search(r"^(claude|codex|gemini) ", script, re.M):
        pytest.skip("the agent CLIs are not installed (npm install --prefix tests/agents)")
    try:
        done = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    finally:
        kill_daemon(data)
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, f"{page.name}: a command failed\n--- script\n{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
