"""``install`` / ``uninstall`` on temp HOMEs that already hold other servers and settings,
and the real agent CLIs (from npm, see tests/agents/package.json) reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT
from test_server import EXE

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


def cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
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


def test_uninstall_removes_exactly_what_install_added(home):
    assert cli(home, "install", "all", "--hooks").returncode == 0
    out = cli(home, "uninstall", "all")
    assert out.returncode == 0, out.stderr
    assert json.loads((home / ".claude.json").read_text()) == CLAUDE_JSON
    assert json.loads((home / ".claude" / "settings.json").read_text()) == CLAUDE_SETTINGS
    codex = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert "headroom" not in codex["mcp_servers"] and codex["mcp_servers"]["docs"]["command"] == "docs-mcp"
    assert json.loads((home / ".codex" / "hooks.json").read_text()) == {}
    assert json.loads((home / ".gemini" / "settings.json").read_text()) == GEMINI_SETTINGS


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
    (home / ".codex" / "config.toml").write_text(
        'model = "o3"\n\n[mcp_servers.headroom]\ncommand = "old"\nstartup_timeout_sec = 20\n\n[mcp_servers.headroom.env]\nHEADROOM_MCP_USER = "bob"\n')
    assert cli(home, "install", "codex").returncode == 0
    entry = tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]["headroom"]
    assert entry["startup_timeout_sec"] == 20 and entry["env"] == {"HEADROOM_MCP_USER": "bob"} and entry["args"][0] == "serve"
    dotted = 'model = "o3"\nmcp_servers.headroom = {command = "x", args = []}\napproval_policy = "never"\n'
    (home / ".codex" / "config.toml").write_text(dotted)
    out = cli(home, "install", "codex")
    assert out.returncode == 1 and "by hand" in out.stderr and (home / ".codex" / "config.toml").read_text() == dotted
    (home / ".gemini" / "settings.json").write_text('{"mcpServers": null}')
    out = cli(home, "install", "gemini")
    assert out.returncode == 1 and "mcpServers must be an object" in out.stderr


needs_clis = pytest.mark.skipif(not (CLIS / "claude").exists(), reason="agent CLIs not installed (npm install --prefix tests/agents)")


@needs_clis
def test_real_clients_see_the_registered_server(home, tmp_path, data_dir):
    project = tmp_path / "project"
    project.mkdir()
    assert cli(home, "install", "all", "--data-dir", str(data_dir)).returncode == 0
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
    assert codex and "enabled" in codex[0] and "--agent codex" in codex[0], codex


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
