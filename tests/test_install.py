"""``install`` / ``uninstall`` on temp HOMEs that already hold other servers and settings,
and the real agent CLIs (from npm, see tests/agents/package.json) reading what it wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from test_server import EXE

from headroom_mcp import jsonc

CLIS = ROOT / "tests" / "agents" / "node_modules" / ".bin"

CLAUDE_JSON = {"numStartups": 7, "theme": "dark", "mcpServers": {"github": {"type": "stdio", "command": "gh-mcp", "args": []}},
               "projects": {"/src/x": {"allowedTools": ["Bash"]}}}
CLAUDE_SETTINGS = {"permissions": {"allow": ["Bash(ls:*)"]},
                   "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}}
CODEX_TOML = '# my settings\nmodel = "o3"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\nargs = ["--fast"]\n'
GEMINI_SETTINGS = {"theme": "GitHub", "mcpServers": {"fs": {"command": "fs-mcp"}}, "security": {"auth": {"selectedType": "gemini-api-key"}}}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    (h / ".claude").mkdir(parents=True)
    (h / ".codex").mkdir()
    (h / ".gemini").mkdir()
    (h / ".claude.json").write_text(json.dumps(CLAUDE_JSON))
    (h / ".claude" / "settings.json").write_text(json.dumps(CLAUDE_SETTINGS, indent=4))
    (h / ".codex" / "config.toml").write_text(CODEX_TOML)
    (h / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
    return h


def cli(home: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), **(env or {})}
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd or home)


def snapshot(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): p.read_text() for p in sorted(home.rglob("*")) if p.is_file() and "backup" not in p.name}


def test_install_all_with_hooks_keeps_everything_else_and_is_idempotent(home, tmp_path):
    out = cli(home, "install", "all", "--hooks", "--data-dir", str(tmp_path / "store"))
    assert out.returncode == 0, out.stderr
    claude = json.loads((home / ".claude.json").read_text())
    assert claude["mcpServers"]["github"] == CLAUDE_JSON["mcpServers"]["github"] and claude["projects"] == CLAUDE_JSON["projects"]
    assert claude["mcpServers"]["headroom"]["args"][:3] == ["serve", "--agent", "claude"]
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert settings["permissions"] == CLAUDE_SETTINGS["permissions"]
    assert settings["hooks"]["SessionStart"][0] == CLAUDE_SETTINGS["hooks"]["SessionStart"][0]
    assert "hook session-start --agent claude" in json.dumps(settings["hooks"]["SessionStart"][1])
    assert "hook prompt --agent claude" in json.dumps(settings["hooks"]["UserPromptSubmit"])
    codex_text = (home / ".codex" / "config.toml").read_text()
    assert codex_text.startswith(CODEX_TOML)  # comments and layout kept
    codex = tomllib.loads(codex_text)
    assert codex["mcp_servers"]["docs"] == {"command": "docs-mcp", "args": ["--fast"]}
    assert codex["mcp_servers"]["headroom"]["args"][:3] == ["serve", "--agent", "codex"]
    assert "hook prompt --agent codex" in (home / ".codex" / "hooks.json").read_text()
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert gemini["security"] == GEMINI_SETTINGS["security"] and gemini["mcpServers"]["fs"] == {"command": "fs-mcp"}
    assert "BeforeAgent" in gemini["hooks"] and gemini["mcpServers"]["headroom"]["args"][2] == "gemini"
    assert (home / ".claude.json.headroom-backup").read_text() == json.dumps(CLAUDE_JSON)

    before = snapshot(home)
    again = cli(home, "install", "all", "--hooks", "--data-dir", str(tmp_path / "store"))
    assert again.returncode == 0 and "updated" not in again.stdout and snapshot(home) == before


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, outside .git: what a user would diff."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*")) if ".git" not in p.relative_to(root).parts}


# The user's own configs as the clients and people write them: Claude's JSON as Claude writes
# it, Codex's TOML with comments, Gemini's settings with // and /* */ comments (Gemini CLI
# reads them; it refuses trailing commas, so the one here has none) and other servers.
OWN_CLAUDE = json.dumps(CLAUDE_JSON, indent=2)
OWN_CODEX = ('# my settings\nmodel = "o3"   # the default\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\nargs = ["--fast"]\n'
             '\n# keep this\n[tui]\ntheme = "dark"\n')
OWN_GEMINI = """{
  // theme picked in /theme
  "theme": "GitHub",
  "mcpServers": {
    "fs": {"command": "fs-mcp"} /* my file server */
  },
  "security": {"auth": {"selectedType": "gemini-api-key"}}
}
"""


@pytest.fixture
def own_home(tmp_path: Path) -> Path:
    h = tmp_path / "own"
    (h / ".codex").mkdir(parents=True)
    (h / ".gemini").mkdir()
    (h / ".claude.json").write_text(OWN_CLAUDE)
    (h / ".codex" / "config.toml").write_text(OWN_CODEX)
    (h / ".gemini" / "settings.json").write_text(OWN_GEMINI)
    return h


@pytest.mark.parametrize("own_hooks", [False, True], ids=["no-hooks-files", "own-hooks-files"])
def test_install_then_uninstall_gives_every_file_back_byte_for_byte(own_home, own_hooks):
    if own_hooks:
        (own_home / ".claude").mkdir()
        (own_home / ".claude" / "settings.json").write_text(json.dumps(CLAUDE_SETTINGS, indent=4))
        (own_home / ".codex" / "hooks.json").write_text('{"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}}')
    before = tree(own_home)
    out = cli(own_home, "install", "all", "--hooks")
    assert out.returncode == 0, out.stderr
    installed = tree(own_home)
    assert "codex_hooks = true" in installed[".codex/config.toml"].decode()
    assert "hook prompt --agent codex" in installed[".codex/hooks.json"].decode()
    gemini = installed[".gemini/settings.json"].decode()
    assert "// theme picked in /theme" in gemini and "/* my file server */" in gemini and "BeforeAgent" in gemini
    assert jsonc.loads(gemini)["mcpServers"]["fs"] == {"command": "fs-mcp"}
    assert installed[".codex/config.toml"].decode().startswith(OWN_CODEX.split("[tui]")[0])
    claude = installed[".claude.json"].decode()
    assert claude.startswith(OWN_CLAUDE[:OWN_CLAUDE.index('"github"')])  # the user's entries keep their bytes

    out = cli(own_home, "uninstall", "all")
    assert out.returncode == 0, out.stderr
    assert tree(own_home) == before  # byte-identical, no backups, no files or folders of ours left
    assert cli(own_home, "uninstall", "all").returncode == 0 and tree(own_home) == before


def test_uninstall_keeps_what_the_user_changed_meanwhile_and_still_leaves_no_backups(own_home):
    assert cli(own_home, "install", "all", "--hooks").returncode == 0
    claude = json.loads((own_home / ".claude.json").read_text())
    claude["numStartups"] = 8  # Claude Code rewrites its file all the time
    (own_home / ".claude.json").write_text(json.dumps(claude, indent=2))
    with (own_home / ".codex" / "config.toml").open("a") as f:
        f.write('\n[mcp_servers.more]\ncommand = "more-mcp"\n')
    assert cli(own_home, "uninstall", "all").returncode == 0
    assert json.loads((own_home / ".claude.json").read_text()) == {**CLAUDE_JSON, "numStartups": 8}
    codex = (own_home / ".codex" / "config.toml").read_text()
    assert codex.startswith(OWN_CODEX.split("[tui]")[0]) and "headroom" not in codex and "codex_hooks" not in codex
    assert tomllib.loads(codex)["mcp_servers"]["more"] == {"command": "more-mcp"}
    assert not list(own_home.rglob("*.headroom-backup"))
    assert not (own_home / ".codex" / "hooks.json").exists() and not (own_home / ".claude").exists()


def test_the_users_own_hooks_flag_stays_after_uninstall(own_home):
    own = OWN_CODEX + "\n[features]\ncodex_hooks = true\n"
    (own_home / ".codex" / "config.toml").write_text(own)
    assert cli(own_home, "install", "codex", "--hooks").returncode == 0
    (own_home / ".codex" / "config.toml").write_text((own_home / ".codex" / "config.toml").read_text() + "# later\n")
    assert cli(own_home, "uninstall", "codex").returncode == 0
    after = (own_home / ".codex" / "config.toml").read_text()
    # Edited meanwhile, so no backup to restore: the user's flag, comments and entries stay, ours go.
    assert tomllib.loads(after) == tomllib.loads(own) and "# later" in after and "# keep this" in after
    assert not list(own_home.rglob("*.headroom-backup"))


def test_project_scope_round_trip_names_the_command_and_no_path_of_this_machine(own_home, tmp_path):
    repo = git_repo(tmp_path / "atlas")
    (repo / ".mcp.json").write_text('{"mcpServers": {"lint": {"command": "lint-mcp"}}}\n')
    (repo / "src").mkdir()
    before, home_before = tree(repo), tree(own_home)
    out = cli(own_home, "install", "all", "--scope", "project", "--hooks", cwd=repo / "src",
              env={"HEADROOM_MCP_DATA_DIR": str(tmp_path / "my-store")})
    assert out.returncode == 0, out.stderr
    assert "HEADROOM_MCP_DATA_DIR not written" in out.stderr  # said, not silently dropped
    written = {name: data.decode() for name, data in tree(repo).items() if data is not None and name not in before}
    assert set(written) >= {".claude/settings.json", ".codex/config.toml", ".codex/hooks.json", ".gemini/settings.json"}
    for name, text in {**written, ".mcp.json": (repo / ".mcp.json").read_text()}.items():
        assert str(tmp_path) not in text and ".venv" not in text, (name, text)
    assert json.loads((repo / ".mcp.json").read_text())["mcpServers"]["headroom"]["command"] == "headroom-mcp"
    assert tomllib.loads(written[".codex/config.toml"])["mcp_servers"]["headroom"]["command"] == "headroom-mcp"
    assert json.loads(written[".gemini/settings.json"])["mcpServers"]["headroom"]["command"] == "headroom-mcp"
    assert json.loads(written[".claude/settings.json"])["hooks"]["SessionStart"][0]["hooks"][0]["command"].startswith(
        "headroom-mcp hook session-start --agent claude")
    assert tree(own_home) == home_before

    assert cli(own_home, "uninstall", "all", "--scope", "project", cwd=repo).returncode == 0
    assert tree(repo) == before and tree(own_home) == home_before


def test_project_scope_outside_a_repository_is_refused_and_writes_nothing(own_home, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    for verb in (["install", "claude", "--scope", "project"], ["install", "all", "--scope", "project", "--hooks"],
                 ["uninstall", "all", "--scope", "project"]):
        out = cli(own_home, *verb, cwd=loose)
        assert out.returncode == 1 and "not inside a git repository" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert tree(loose) == {}
    out = cli(own_home, "install", "all", "--scope", "project", "--data-dir", str(tmp_path / "s"), cwd=git_repo(tmp_path / "r"))
    assert out.returncode == 1 and "--data-dir is this machine's" in out.stderr
    assert not (tmp_path / "r" / ".mcp.json").exists()


def test_the_effective_store_goes_into_every_entry(own_home, tmp_path):
    """With HEADROOM_MCP_DATA_DIR and HEADROOM_MCP_USER set in the shell (no flags), every entry,
    Codex's included, names that store and user: Codex would not pass the shell's variables on."""
    store = tmp_path / "team-store"
    out = cli(own_home, "install", "all", "--hooks", env={"HEADROOM_MCP_DATA_DIR": str(store), "HEADROOM_MCP_USER": "ada"})
    assert out.returncode == 0, out.stderr
    claude = json.loads((own_home / ".claude.json").read_text())["mcpServers"]["headroom"]
    codex = tomllib.loads((own_home / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"]
    gemini = jsonc.loads((own_home / ".gemini" / "settings.json").read_text())["mcpServers"]["headroom"]
    for entry in (claude, codex, gemini):
        assert entry["args"][-2:] == ["--data-dir", str(store)] and entry["env"] == {"HEADROOM_MCP_USER": "ada"}, entry
    for hooks in ((own_home / ".claude" / "settings.json").read_text(), (own_home / ".codex" / "hooks.json").read_text(),
                  (own_home / ".gemini" / "settings.json").read_text()):
        commands = [h["command"] for groups in jsonc.loads(hooks)["hooks"].values() for g in groups for h in g["hooks"]]
        assert commands and all(c.startswith("HEADROOM_MCP_USER=ada ") and f"--data-dir {store}" in c for c in commands)

    out = cli(own_home, "install", "all", env={"HEADROOM_MCP_DATA_DIR": "", "HEADROOM_MCP_USER": ""})
    assert out.returncode == 0  # the default store again: no --data-dir
    assert "--data-dir" not in tomllib.loads((own_home / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"]["args"]


def test_jsonc_settings_keep_their_comments_and_trailing_commas(own_home):
    text = '{\n  /* block */ "theme": "GitHub", // line\n  "mcpServers": {\n    "fs": {"command": "fs-mcp",},\n  },\n}\n'
    (own_home / ".gemini" / "settings.json").write_text(text)
    assert cli(own_home, "install", "gemini", "--hooks").returncode == 0
    after = (own_home / ".gemini" / "settings.json").read_text()
    assert after.startswith('{\n  /* block */ "theme": "GitHub", // line\n  "mcpServers": {\n    "fs": {"command": "fs-mcp",},\n')
    assert set(jsonc.loads(after)["mcpServers"]) == {"fs", "headroom"}
    assert cli(own_home, "uninstall", "gemini").returncode == 0
    assert (own_home / ".gemini" / "settings.json").read_text() == text


def test_a_plain_install_keeps_hooks_an_earlier_install_added(home):
    assert cli(home, "install", "all", "--hooks").returncode == 0
    assert cli(home, "install", "all").returncode == 0
    for path in (".claude/settings.json", ".codex/hooks.json", ".gemini/settings.json"):
        assert "hook prompt" in (home / path).read_text(), path


def test_dry_run_prints_the_diff_and_writes_nothing(home):
    before = snapshot(home)
    out = cli(home, "install", "claude", "--hooks", "--dry-run")
    assert out.returncode == 0 and "+++ " in out.stdout and '"headroom"' in out.stdout
    assert snapshot(home) == before and not (home / ".claude.json.headroom-backup").exists()


def test_project_scope_writes_the_repository_files(home, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "sub").mkdir()
    out = cli(home, "install", "all", "--scope", "project", "--hooks", cwd=repo / "sub")
    assert out.returncode == 0, out.stderr
    assert "headroom" in json.loads((repo / ".mcp.json").read_text())["mcpServers"]
    assert "UserPromptSubmit" in json.loads((repo / ".claude" / "settings.json").read_text())["hooks"]
    assert "headroom" in tomllib.loads((repo / ".codex" / "config.toml").read_text())["mcp_servers"]
    assert "headroom" in json.loads((repo / ".gemini" / "settings.json").read_text())["mcpServers"]
    assert json.loads((home / ".claude.json").read_text()) == CLAUDE_JSON  # user files untouched


def test_a_broken_config_stops_the_install_before_any_write(home):
    (home / ".gemini" / "settings.json").write_text("{ not json")
    before = snapshot(home)
    out = cli(home, "install", "all")
    assert out.returncode == 1 and "settings.json is not valid JSON" in out.stderr
    assert snapshot(home) == before


def test_a_planted_backup_symlink_is_refused_and_a_symlinked_config_written_through(home, tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=$PATH\n")
    (home / ".gemini" / "settings.json.headroom-backup").symlink_to(victim)
    out = cli(home, "install", "all")
    assert out.returncode == 1 and "is a symlink" in out.stderr and victim.read_text() == "export PATH=$PATH\n"
    assert "headroom" not in (home / ".claude.json").read_text()  # refused before any write
    (home / ".gemini" / "settings.json.headroom-backup").unlink()
    dotfiles = tmp_path / "dotfiles-settings.json"
    (home / ".gemini" / "settings.json").rename(dotfiles)
    (home / ".gemini" / "settings.json").symlink_to(dotfiles)
    assert cli(home, "install", "gemini").returncode == 0
    assert (home / ".gemini" / "settings.json").is_symlink() and "headroom" in json.loads(dotfiles.read_text())["mcpServers"]


def test_user_additions_to_the_entry_survive_and_risky_toml_is_left_alone(home):
    (home / ".codex" / "config.toml").write_text(  # ours, from an older install elsewhere
        'model = "o3"\n\n[mcp_servers.headroom]\ncommand = "/old/venv/bin/headroom-mcp"\nstartup_timeout_sec = 20\n\n'
        '[mcp_servers.headroom.env]\nHEADROOM_MCP_USER = "bob"\n')
    assert cli(home, "install", "codex").returncode == 0
    entry = tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"]
    assert entry["startup_timeout_sec"] == 20 and entry["env"] == {"HEADROOM_MCP_USER": "bob"} and entry["args"][0] == "serve"
    dotted = 'model = "o3"\nmcp_servers.headroom = {command = "headroom-mcp", args = []}\napproval_policy = "never"\n'
    (home / ".codex" / "config.toml").write_text(dotted)
    out = cli(home, "install", "codex")
    assert out.returncode == 1 and "by hand" in out.stderr and (home / ".codex" / "config.toml").read_text() == dotted
    (home / ".gemini" / "settings.json").write_text('{"mcpServers": null}')
    out = cli(home, "install", "gemini")
    assert out.returncode == 1 and "mcpServers must be an object" in out.stderr


TEAM_URL = "https://memory.example.com:8765/mcp"


def git_repo(path: Path, origin: str = "git@github.com:Acme/Atlas.git") -> Path:
    """A repository whose project id (its normalized origin) is ``github.com/acme/atlas``."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


def test_install_url_registers_the_team_server_with_the_token_left_in_the_environment(home):
    out = cli(home, "install", "all", "--url", TEAM_URL, "--token-env", "ACME_MEMORY_TOKEN",
              env={"ACME_MEMORY_TOKEN": "hmcp_do-not-write-me"})
    assert out.returncode == 0, out.stderr
    claude = json.loads((home / ".claude.json").read_text())
    assert claude["mcpServers"]["headroom"] == {"type": "http", "url": TEAM_URL,
                                                "headers": {"Authorization": "Bearer ${ACME_MEMORY_TOKEN}"}}
    assert claude["mcpServers"]["github"] == CLAUDE_JSON["mcpServers"]["github"] and claude["projects"] == CLAUDE_JSON["projects"]
    codex_text = (home / ".codex" / "config.toml").read_text()
    assert codex_text.startswith(CODEX_TOML)
    assert tomllib.loads(codex_text)["mcp_servers"]["headroom"] == {"url": TEAM_URL, "bearer_token_env_var": "ACME_MEMORY_TOKEN"}
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert gemini["mcpServers"]["headroom"] == {"httpUrl": TEAM_URL, "headers": {"Authorization": "Bearer ${ACME_MEMORY_TOKEN}"}}
    assert gemini["security"] == GEMINI_SETTINGS["security"]
    files = snapshot(home)
    assert not any("hmcp_do-not-write-me" in text or "X-Headroom-Project" in text for text in files.values())
    assert json.loads(files[".claude/settings.json"]) == CLAUDE_SETTINGS  # no hooks were added

    again = cli(home, "install", "all", "--url", TEAM_URL, "--token-env", "ACME_MEMORY_TOKEN")
    assert again.returncode == 0 and "updated" not in again.stdout and snapshot(home) == files
    assert "set ACME_MEMORY_TOKEN" in again.stderr  # not set in this environment: say so
    assert cli(home, "uninstall", "all").returncode == 0
    assert json.loads((home / ".claude.json").read_text()) == CLAUDE_JSON
    assert tomllib.loads((home / ".codex" / "config.toml").read_text()) == tomllib.loads(CODEX_TOML)
    assert json.loads((home / ".gemini" / "settings.json").read_text()) == GEMINI_SETTINGS


def test_team_hooks_ask_the_team_server(home, tmp_path):
    repo = git_repo(tmp_path / "atlas")
    out = cli(home, "install", "claude", "--scope", "project", "--url", TEAM_URL, "--token-env", "ACME_MEMORY_TOKEN", "--hooks", cwd=repo)
    assert out.returncode == 0, out.stderr
    settings = json.loads((repo / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    # Committed for the whole team: the command by name, not this machine's path to it.
    assert command == (f"headroom-mcp hook session-start --agent claude --url {TEAM_URL} --token-env ACME_MEMORY_TOKEN "
                       "--project github.com/acme/atlas")
    assert "--data-dir" not in json.dumps(settings)


def test_project_scope_url_names_the_project_so_teammates_agree(home, tmp_path):
    repo = git_repo(tmp_path / "atlas")
    (repo / "src").mkdir()
    out = cli(home, "install", "all", "--scope", "project", "--url", TEAM_URL, cwd=repo / "src")
    assert out.returncode == 0, out.stderr
    headers = {"Authorization": "Bearer ${HEADROOM_MCP_TOKEN}", "X-Headroom-Project": "github.com/acme/atlas"}
    assert json.loads((repo / ".mcp.json").read_text())["mcpServers"]["headroom"] == {"type": "http", "url": TEAM_URL, "headers": headers}
    assert tomllib.loads((repo / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"] == {
        "url": TEAM_URL, "bearer_token_env_var": "HEADROOM_MCP_TOKEN", "http_headers": {"X-Headroom-Project": "github.com/acme/atlas"}}
    assert json.loads((repo / ".gemini" / "settings.json").read_text())["mcpServers"]["headroom"] == {"httpUrl": TEAM_URL, "headers": headers}
    assert json.loads((home / ".claude.json").read_text()) == CLAUDE_JSON  # user files untouched


def test_reinstalling_switches_between_stdio_and_http_keeping_the_users_additions(home):
    assert cli(home, "install", "all").returncode == 0
    claude = json.loads((home / ".claude.json").read_text())
    claude["mcpServers"]["headroom"]["env"] = {"HEADROOM_MCP_USER": "bob"}
    claude["mcpServers"]["headroom"]["timeout"] = 30000
    (home / ".claude.json").write_text(json.dumps(claude, indent=2))
    (home / ".codex" / "config.toml").write_text((home / ".codex" / "config.toml").read_text()
                                                 + 'startup_timeout_sec = 20\nenv = { HEADROOM_MCP_USER = "bob" }\n')
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    gemini["mcpServers"]["headroom"].update(trust=True, env={"HEADROOM_MCP_USER": "bob"})
    (home / ".gemini" / "settings.json").write_text(json.dumps(gemini, indent=2))

    dry = cli(home, "install", "all", "--url", TEAM_URL, "--dry-run")
    assert dry.returncode == 0 and '-      "command"' in dry.stdout and f'+url = "{TEAM_URL}"' in dry.stdout
    assert cli(home, "install", "all", "--url", TEAM_URL).returncode == 0
    bearer = {"Authorization": "Bearer ${HEADROOM_MCP_TOKEN}"}
    assert json.loads((home / ".claude.json").read_text())["mcpServers"]["headroom"] == {
        "type": "http", "timeout": 30000, "url": TEAM_URL, "headers": bearer}
    codex = tomllib.loads((home / ".codex" / "config.toml").read_text())  # Codex refuses url beside command or env
    assert codex["mcp_servers"]["headroom"] == {"startup_timeout_sec": 20, "url": TEAM_URL, "bearer_token_env_var": "HEADROOM_MCP_TOKEN"}
    assert codex["mcp_servers"]["docs"] == {"command": "docs-mcp", "args": ["--fast"]}
    assert json.loads((home / ".gemini" / "settings.json").read_text())["mcpServers"]["headroom"] == {
        "trust": True, "httpUrl": TEAM_URL, "headers": bearer}

    with_header = json.loads((home / ".claude.json").read_text())
    with_header["mcpServers"]["headroom"]["headers"]["X-Trace"] = "on"  # the user's own header survives a re-install
    (home / ".claude.json").write_text(json.dumps(with_header))
    assert cli(home, "install", "claude", "--url", TEAM_URL, "--token-env", "OTHER").returncode == 0
    assert json.loads((home / ".claude.json").read_text())["mcpServers"]["headroom"]["headers"] == {
        "Authorization": "Bearer ${OTHER}", "X-Trace": "on"}

    assert cli(home, "install", "all").returncode == 0  # and back to the local server
    back = json.loads((home / ".claude.json").read_text())["mcpServers"]["headroom"]
    assert back["type"] == "stdio" and back["timeout"] == 30000 and "url" not in back and "headers" not in back
    assert back["args"][:3] == ["serve", "--agent", "claude"]
    codex = tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"]
    assert set(codex) == {"startup_timeout_sec", "command", "args"}
    gemini_entry = json.loads((home / ".gemini" / "settings.json").read_text())["mcpServers"]["headroom"]
    assert gemini_entry["trust"] is True and "httpUrl" not in gemini_entry and "headers" not in gemini_entry
    assert cli(home, "uninstall", "all").returncode == 0
    assert "headroom" not in tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]


@pytest.mark.parametrize("args, message", [
    (["--url", "ftp://memory.example.com/mcp"], "must be an http:// or https:// URL"),
    (["--url", "memory.example.com:8765/mcp"], "must be an http:// or https:// URL"),
    (["--url", "http:///mcp"], "must be an http:// or https:// URL"),
    (["--url", "http://memory.example.com:99999/mcp"], "must be an http:// or https:// URL"),
    (["--url", "http://memory.example.com/m cp"], "must be an http:// or https:// URL"),
    (["--url", "https://alice:hmcp_x@memory.example.com/mcp"], "must not carry credentials"),
    (["--url", TEAM_URL, "--token-env", "hmcp_abc-def"], "NAME of an environment variable"),
    (["--url", TEAM_URL, "--token-env", "1TOKEN"], "NAME of an environment variable"),
    (["--token-env", "ACME_TOKEN"], "only applies with --url"),
    (["--url", TEAM_URL, "--data-dir", "/tmp/store"], "--data-dir does not apply with --url"),
])
def test_a_bad_team_install_is_refused_before_anything_is_written(home, args, message):
    before = snapshot(home)
    out = cli(home, "install", "all", *args)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert snapshot(home) == before and not list(home.rglob("*.headroom-backup"))


needs_clis = pytest.mark.skipif(not (CLIS / "claude").exists(), reason="agent CLIs not installed (npm install --prefix tests/agents)")


@needs_clis
def test_real_clients_see_the_registered_server(home, tmp_path, data_dir):
    project = tmp_path / "project"
    project.mkdir()
    (home / ".gemini" / "settings.json").write_text(OWN_GEMINI)  # comments, which Gemini CLI reads
    assert cli(home, "install", "all", "--hooks").returncode == 0  # the store from HEADROOM_MCP_DATA_DIR
    assert "/* my file server */" in (home / ".gemini" / "settings.json").read_text()
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    env = {**os.environ, "HOME": str(home), "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "GEMINI_API_KEY": "test-key"}

    def listing(client: str) -> str:
        out = subprocess.run([str(CLIS / client), "mcp", "list"], capture_output=True, text=True, timeout=180, env=env, cwd=project)
        return out.stdout + out.stderr

    claude = [line for line in listing("claude").splitlines() if line.startswith("headroom:")]
    assert claude and "Connected" in claude[0], claude
    gemini = [line for line in listing("gemini").splitlines() if "headroom" in line]
    assert gemini and "Connected" in gemini[0], gemini
    codex = [line for line in listing("codex").splitlines() if line.startswith("headroom ")]
    assert codex and "enabled" in codex[0] and f"--agent codex --data-dir {data_dir}" in codex[0], codex


@dataclass
class TeamServer:
    """A loopback stand-in for a team server: every request's path and headers, and the one token it accepts."""

    token: str
    url: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def mcp_headers(self) -> list[dict[str, str]]:
        """The headers of each request made to the MCP endpoint since the last ``clear``."""
        return [headers for path, headers in self.seen if path.startswith("/mcp")]


@pytest.fixture
def team_server() -> Iterator[TeamServer]:
    """A real streamable HTTP MCP server that answers 401 (as the team server does) unless the
    request carries ``Authorization: Bearer <token>``, run by uvicorn on a free loopback port."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    mcp = MCPServer("headroom")

    @mcp.tool()
    def recall(query: str) -> dict[str, Any]:
        """Search memories."""
        return {"results": []}

    app = mcp.streamable_http_app()
    server = TeamServer(token="hmcp_team-secret-4f9c")

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            server.seen.append((scope["path"], headers))
            if headers.get("authorization") != f"Bearer {server.token}":
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="headroom-mcp", error="invalid_token"')]})
                await send({"type": "http.response.body", "body": b'{"error": "invalid_token"}'})
                return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server.url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    uv = uvicorn.Server(uvicorn.Config(guarded, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "the test MCP server did not start"
    yield server
    uv.should_exit = True
    thread.join(10)


@needs_clis
@pytest.mark.parametrize("scope", ["user", "project"])
def test_real_clients_reach_a_team_server_with_the_token_from_the_environment(home, tmp_path, team_server, scope):
    """Claude Code and Gemini CLI expand ${VAR} in the header, Codex reads bearer_token_env_var:
    each sends the token the variable holds (never written to a file), and a wrong one does not connect."""
    project = git_repo(tmp_path / "atlas")
    base = team_server.url.removesuffix("/mcp")
    # Codex has no live `mcp list`; `codex exec` connects to its MCP servers first, then asks
    # the model, here the same server, whose 401 ends the run at once.
    (home / ".codex" / "config.toml").write_text(
        f'model = "gpt-5"\nmodel_provider = "fake"\n\n[model_providers.fake]\nname = "fake"\nbase_url = "{base}/v1"\n'
        f'env_key = "FAKE_KEY"\nwire_api = "responses"\nrequest_max_retries = 0\nstream_max_retries = 0\n\n'
        f'[projects."{project}"]\ntrust_level = "trusted"\n')
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.local.json").write_text('{"enableAllProjectMcpServers": true}')  # approve .mcp.json
    out = cli(home, "install", "all", "--scope", scope, "--url", team_server.url, "--token-env", "ACME_MEMORY_TOKEN", cwd=project)
    assert out.returncode == 0, out.stderr
    assert not any(team_server.token in text for text in {**snapshot(home), **snapshot(project)}.values())
    expected = {"authorization": f"Bearer {team_server.token}"}
    if scope == "project":
        expected["x-headroom-project"] = "github.com/acme/atlas"

    def run(client: str, *args: str, token: str) -> tuple[str, list[dict[str, str]]]:
        """The client's output and the headers of its requests to the MCP endpoint."""
        team_server.seen.clear()
        env = {**os.environ, "HOME": str(home), "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "GEMINI_API_KEY": "test-key", "FAKE_KEY": "x", "ACME_MEMORY_TOKEN": token}
        done = subprocess.run([str(CLIS / client), *args], capture_output=True, text=True, timeout=180, env=env, cwd=project)
        return done.stdout + done.stderr, team_server.mcp_headers()

    def status(output: str) -> str:
        return next((line for line in output.splitlines() if "headroom" in line and team_server.url in line), output)

    for client in ("claude", "gemini"):
        output, sent = run(client, "mcp", "list", token=team_server.token)
        assert "Connected" in status(output) and "Disconnected" not in status(output), (client, output)
        assert sent and all({k: h.get(k) for k in expected} == expected for h in sent), (client, sent)
        if scope == "user":
            assert not any("x-headroom-project" in h for h in sent), (client, sent)
        output, sent = run(client, "mcp", "list", token="hmcp_wrong")
        assert "Connected" not in status(output).replace("Disconnected", ""), (client, output)
        assert sent and all(h.get("authorization") == "Bearer hmcp_wrong" for h in sent), (client, sent)

    output, _ = run("codex", "mcp", "list", token=team_server.token)
    codex = [line for line in output.splitlines() if line.startswith("headroom ")]
    assert codex and team_server.url in codex[0] and "ACME_MEMORY_TOKEN" in codex[0] and "enabled" in codex[0], output
    output, sent = run("codex", "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "hello",
                       token=team_server.token)
    assert sent and all({k: h.get(k) for k in expected} == expected for h in sent), json.dumps(sent)


def test_agent_configs_folder_matches_what_install_writes(tmp_path):
    """The copyable files in agent-configs/ are the entries install writes, with a bare command."""
    from headroom_mcp.install import Target, plan

    configs = ROOT / "agent-configs"
    home = tmp_path / "h"
    target = Target("user", home, tmp_path, "headroom-mcp")
    written = {c.path.relative_to(home).as_posix(): c.after for client in ("claude", "codex", "gemini")
               for c in plan(client, target, hooks=True)}
    assert json.loads(written[".claude.json"]) == json.loads((configs / "claude-code.mcp.json").read_text())
    assert json.loads(written[".claude/settings.json"]) == json.loads((configs / "claude-code.settings.json").read_text())
    assert tomllib.loads(written[".codex/config.toml"]) == tomllib.loads((configs / "codex.config.toml").read_text())
    assert json.loads(written[".codex/hooks.json"]) == json.loads((configs / "codex.hooks.json").read_text())
    assert json.loads(written[".gemini/settings.json"]) == json.loads((configs / "gemini.settings.json").read_text())

    repo = git_repo(tmp_path / "repo", origin="https://github.com/your-org/your-repo.git")
    team = Target("project", home, repo, "headroom-mcp", url="https://memory.example.com/mcp")
    written = {c.path.relative_to(repo).as_posix(): c.after for client in ("claude", "codex", "gemini") for c in plan(client, team)}
    assert json.loads(written[".mcp.json"]) == json.loads((configs / "claude-code.team.mcp.json").read_text())
    assert tomllib.loads(written[".codex/config.toml"]) == tomllib.loads((configs / "codex.team.config.toml").read_text())
    assert json.loads(written[".gemini/settings.json"]) == json.loads((configs / "gemini.team.settings.json").read_text())


def test_doctor_shows_where_each_entry_points_and_flags_split_stores_and_trust(own_home, tmp_path, data_dir):
    """Claude and Gemini on one store, Codex registered from a shell with another: doctor names
    both stores and fails; it also says Gemini's folder is untrusted and Codex's hooks untrusted,
    with the fix for each."""
    project = git_repo(tmp_path / "atlas")
    other = tmp_path / "other-store"
    assert cli(own_home, "install", "all", "--hooks", cwd=project).returncode == 0  # data_dir's store, from the env
    assert cli(own_home, "install", "codex", "--data-dir", str(other), cwd=project).returncode == 0

    def doctor() -> dict[str, dict[str, Any]]:
        out = cli(own_home, "doctor", "--json", cwd=project)
        assert "Traceback" not in out.stderr, out.stderr
        return {c["check"]: c for c in json.loads(out.stdout)["checks"]} | {"exit": {"code": out.returncode}}

    checks = doctor()
    assert checks["exit"]["code"] == 1 and checks["one store"]["status"] == "fail"
    assert f"codex user server -> {other}" in checks["one store"]["detail"]
    assert f"claude user server -> {data_dir}" in checks["one store"]["detail"] and "install all" in checks["one store"]["fix"]
    assert f"-> {other} (user alice" in checks["agent codex"]["detail"]
    assert checks["gemini folder trust"]["status"] == "warn" and "TRUST_FOLDER" in checks["gemini folder trust"]["fix"]
    assert checks["codex hook trust"]["status"] == "warn" and "0 of 2" in checks["codex hook trust"]["detail"]

    assert cli(own_home, "install", "all", "--hooks", cwd=project).returncode == 0  # one store again
    (own_home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project.parent): "TRUST_FOLDER"}))
    hooks_file = own_home / ".codex" / "hooks.json"
    with (own_home / ".codex" / "config.toml").open("a") as f:  # as Codex records a trust
        for key in (f"{hooks_file}:session_start:0:0", f"{hooks_file}:user_prompt_submit:0:0"):
            f.write(f'\n[hooks.state."{key}"]\ntrusted_hash = "sha256:0"\n')
    checks = doctor()
    assert checks["exit"]["code"] == 0 and checks["one store"]["status"] == "ok", checks["one store"]
    assert checks["gemini folder trust"]["status"] == "ok" and checks["codex hook trust"]["status"] == "ok"


# ---- entries, files and folders that are the user's, not ours -------------------------------

FOREIGN = {  # a `headroom` server of the user's own (another tool of that name), and the file it sits in
    "codex": (".codex/config.toml", '[mcp_servers.headroom]\ncommand = "my-own-headroom"\n'),
    "claude": (".claude.json", '{"mcpServers":{"headroom":{"command":"my-own-headroom"}},"theme":"x"}'),
    "gemini": (".gemini/settings.json", '{\n  "mcpServers": {\n    "headroom": {"command": "my-own-headroom", "args": ["--x"]}\n  }\n}\n'),
}


@pytest.mark.parametrize("client", sorted(FOREIGN))
def test_a_headroom_entry_we_did_not_write_is_refused_kept_and_given_back_after_force(tmp_path, client):
    home = tmp_path / "home"
    name, text = FOREIGN[client]
    (home / name).parent.mkdir(parents=True, exist_ok=True)
    (home / name).write_text(text)
    before = tree(home)
    out = cli(home, "install", client, "--hooks")
    assert out.returncode == 1 and "not headroom-mcp's" in out.stderr and "--force" in out.stderr, out.stderr
    assert "my-own-headroom" in out.stderr and tree(home) == before
    out = cli(home, "uninstall", client)
    assert out.returncode == 0 and tree(home) == before, out.stdout  # neither the entry nor the file goes

    out = cli(home, "install", client, "--hooks", "--force")
    assert out.returncode == 0, out.stderr
    assert "my-own-headroom" not in (home / name).read_text() and "serve" in (home / name).read_text()
    assert cli(home, "install", client, "--hooks").returncode == 0  # ours now: a plain re-install is fine
    out = cli(home, "uninstall", client)
    assert out.returncode == 0, out.stderr
    assert tree(home) == before  # the user's entry and file back byte for byte, no backup left


def test_uninstall_deletes_only_the_files_and_folders_install_created(tmp_path):
    """An empty ~/.codex the user had stays; a settings.json copied from agent-configs/ (ours,
    so install updates it without asking) is the user's file: emptied of our entries, not deleted."""
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text((ROOT / "agent-configs" / "gemini.settings.json").read_text())
    assert cli(home, "install", "all", "--hooks").returncode == 0
    assert (home / ".codex" / "config.toml").exists() and (home / ".claude" / "settings.json").exists()
    assert cli(home, "uninstall", "all").returncode == 0
    assert (home / ".codex").is_dir() and not (home / ".codex" / "config.toml").exists()
    assert not (home / ".claude").exists() and not (home / ".claude.json").exists()  # created by install: gone
    assert jsonc.loads((home / ".gemini" / "settings.json").read_text()) == {}
    assert sorted(p.name for p in home.rglob("*")) == [".codex", ".gemini", "settings.json"]


def test_a_hook_that_only_mentions_headroom_mcp_is_the_users(home):
    wrapper = {"type": "command", "command": "bash -c 'headroom-mcp hook prompt --agent claude >> ~/hook.log'"}
    settings = {"hooks": {"UserPromptSubmit": [{"hooks": [wrapper]}]}}
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    assert cli(home, "install", "claude", "--hooks").returncode == 0
    hooks = json.loads((home / ".claude" / "settings.json").read_text())["hooks"]["UserPromptSubmit"]
    assert hooks[0] == {"hooks": [wrapper]} and len(hooks) == 2
    assert cli(home, "uninstall", "claude").returncode == 0
    assert json.loads((home / ".claude" / "settings.json").read_text()) == settings


def test_project_scope_keeps_its_bookkeeping_out_of_the_work_tree(own_home, tmp_path):
    repo = git_repo(tmp_path / "atlas")
    (repo / ".mcp.json").write_text('{"mcpServers": {"lint": {"command": "lint-mcp"}}}\n')
    (repo / ".gemini").mkdir()
    (repo / ".gemini" / "settings.json").write_text(OWN_GEMINI)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    before = tree(repo)
    out = cli(own_home, "install", "all", "--scope", "project", "--hooks", cwd=repo)
    assert out.returncode == 0, out.stderr
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert sorted(line[3:] for line in status.splitlines()) == [
        ".claude/settings.json", ".codex/config.toml", ".codex/hooks.json", ".gemini/settings.json", ".mcp.json"], status
    assert (repo / ".git" / "headroom-mcp" / ".mcp.json.headroom-backup").read_text() == before[".mcp.json"].decode()
    assert cli(own_home, "uninstall", "all", "--scope", "project", cwd=repo).returncode == 0
    assert tree(repo) == before and not (repo / ".git" / "headroom-mcp").exists()


@pytest.mark.parametrize("files", [
    {".claude.json": '{\r\n  "theme": "x"\r\n}\r\n', ".gemini/settings.json": '{\r\n  // mine\r\n  "theme": "x"\r\n}\r\n',
     ".codex/config.toml": '# mine\r\nmodel = "o3"\r\n\r\n[tui]\r\ntheme = "dark"\r\n'},
    {".gemini/settings.json": "", ".claude.json": "", ".codex/config.toml": ""},
], ids=["crlf", "empty"])
def test_line_endings_and_empty_files_survive_the_round_trip(tmp_path, files):
    home = tmp_path / "home"
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(text.encode())
    before = tree(home)
    assert cli(home, "install", "all", "--hooks").returncode == 0
    for name, text in files.items():
        written = (home / name).read_bytes().decode()
        assert "headroom" in written and ("\r\n" in text) == ("\r\n" in written), (name, written)
        assert "\r\n" not in text or written.count("\n") == written.count("\r\n"), (name, written)  # no bare LF added
    assert cli(home, "uninstall", "all").returncode == 0
    assert tree(home) == before


def test_install_says_created_and_uninstall_names_only_what_it_changed(home, tmp_path):
    repo = git_repo(tmp_path / "atlas")
    out = cli(home, "install", "all", "--scope", "project", "--hooks", cwd=repo)
    assert out.returncode == 0, out.stderr
    for name in (".mcp.json", ".claude/settings.json", ".codex/config.toml", ".codex/hooks.json", ".gemini/settings.json"):
        assert f"created {repo / name}" in out.stdout, out.stdout
    assert "updated" not in out.stdout
    assert cli(home, "install", "claude").returncode == 0  # the server only: ~/.claude/settings.json is not touched
    out = cli(home, "uninstall", "claude")
    assert out.returncode == 0 and out.stdout.splitlines() == [f"claude: updated {home / '.claude.json'}"], out.stdout
    out = cli(home, "uninstall", "claude")
    assert out.returncode == 0 and "settings.json" not in out.stdout and ".claude.json" not in out.stdout, out.stdout


@needs_clis
def test_doctor_warns_when_claude_has_not_approved_the_project_server(home, tmp_path, data_dir):
    """What doctor says matches what the real `claude mcp list` shows, before and after approval."""
    repo = git_repo(tmp_path / "atlas")
    assert cli(home, "install", "claude", "--scope", "project", cwd=repo).returncode == 0
    env = {**os.environ, "HOME": str(home), "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}

    def states() -> tuple[str, dict[str, Any]]:
        listed = subprocess.run([str(CLIS / "claude"), "mcp", "list"], capture_output=True, text=True, timeout=180,
                                env=env, cwd=repo)
        line = next((row for row in listed.stdout.splitlines() if row.startswith("headroom:")), listed.stdout)
        checks = json.loads(cli(home, "doctor", "--json", cwd=repo).stdout)["checks"]
        return line, next(c for c in checks if c["check"] == "claude project approval")

    line, check = states()
    assert "Pending approval" in line and check["status"] == "warn" and "pending approval" in check["detail"], (line, check)
    assert "enabledMcpjsonServers" in check["fix"]
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.local.json").write_text('{"enabledMcpjsonServers": ["headroom"]}')
    line, check = states()
    assert "headroom-mcp serve" in line and "Pending" not in line and check["status"] == "ok", (line, check)


def test_doctor_warns_when_the_entries_run_headroom_mcp_from_inside_a_clone(home, tmp_path):
    """This checkout's .venv is inside a git work tree: an agent registered from it breaks
    when the clone moves, so doctor says so and how to install it as a tool instead."""
    from headroom_mcp.doctor import inside_checkout

    assert cli(home, "install", "claude", "--data-dir", str(tmp_path / "store")).returncode == 0
    command = json.loads((home / ".claude.json").read_text())["mcpServers"]["headroom"]["command"]
    checks = {c["check"]: c for c in json.loads(cli(home, "doctor", "--json", "--data-dir", str(tmp_path / "store")).stdout)["checks"]}
    clone = inside_checkout(command)
    assert clone is not None, f"the tests run from this checkout's .venv: {command}"
    assert checks["entry location"]["status"] == "warn" and str(clone) in checks["entry location"]["detail"]
    assert "uv tool install ." in checks["entry location"]["fix"]


def test_a_program_outside_any_git_work_tree_is_not_inside_a_checkout(tmp_path):
    from headroom_mcp.doctor import inside_checkout

    (tmp_path / "clone" / ".git").mkdir(parents=True)
    (tmp_path / "tools" / "bin").mkdir(parents=True)
    assert inside_checkout(str(tmp_path / "clone" / ".venv" / "bin" / "headroom-mcp")) == tmp_path / "clone"
    assert inside_checkout(str(tmp_path / "tools" / "bin" / "headroom-mcp")) is None
    assert inside_checkout("headroom-mcp") is None  # on PATH
