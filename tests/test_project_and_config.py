"""Project identity from git remotes, and settings resolution."""

from __future__ import annotations

import subprocess

import pytest

from headroom_mcp.config import Settings
from headroom_mcp.errors import InvalidInput
from headroom_mcp.project import normalize_remote, project_id


@pytest.mark.parametrize("url", [
    "git@github.com:Acme/Atlas.git",
    "https://github.com/acme/atlas",
    "https://github.com/acme/atlas.git/",
    "https://x-token:secret@github.com/acme/atlas.git",
    "ssh://git@github.com/acme/atlas.git",
    "ssh://git@github.com:22/acme/atlas",
])
def test_remote_forms_normalise_to_one_id(url):
    assert normalize_remote(url) == "github.com/acme/atlas"


def test_nested_groups_are_kept():
    assert normalize_remote("git@gitlab.example.com:group/sub/proj.git") == "gitlab.example.com/group/sub/proj"


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_two_clones_agree_and_subdirs_share_the_repo_id(tmp_path):
    a, b = tmp_path / "clone-a", tmp_path / "clone-b"
    for d, url in ((a, "git@github.com:Acme/Atlas.git"), (b, "https://github.com/acme/atlas")):
        d.mkdir()
        _git("init", "-q", cwd=d)
        _git("remote", "add", "origin", url, cwd=d)
    (a / "src" / "deep").mkdir(parents=True)
    assert project_id(a) == project_id(b) == project_id(a / "src" / "deep") == "github.com/acme/atlas"


def test_repo_without_remote_uses_its_root_and_plain_dirs_use_themselves(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    assert project_id(repo / "pkg") == str(repo.resolve())
    plain = tmp_path / "plain"
    plain.mkdir()
    assert project_id(plain) == str(plain.resolve())


def test_settings_precedence(tmp_path):
    env = {"HEADROOM_MCP_USER": "env-user", "HEADROOM_MCP_AGENT": "codex", "HEADROOM_MCP_DATA_DIR": str(tmp_path / "d"),
           "CLAUDE_PROJECT_DIR": str(tmp_path), "HEADROOM_MCP_SESSION": "sess-1"}
    s = Settings.resolve(env=env)
    assert (s.user_id, s.agent_id, s.session_id, s.data_dir) == ("env-user", "codex", "sess-1", tmp_path / "d")
    assert s.project == str(tmp_path.resolve())
    assert Settings.resolve(user_id="flag-user", env=env).user_id == "flag-user"
    assert Settings.resolve(env={**env, "HEADROOM_MCP_PROJECT": "my/proj"}).project == "my/proj"
    assert Settings.resolve(env={}).session_id != Settings.resolve(env={}).session_id  # one per process/client


def test_a_spawned_daemon_resolves_the_store_settings_its_client_had(tmp_path):
    """``Settings.to_env`` is what a daemon is started with: read back, it is the same store,
    opened the same way (idle timeout, turn TTL, retention, secrets, disk reserve, embedder)."""
    env = {"HEADROOM_MCP_DATA_DIR": str(tmp_path / "d"), "HEADROOM_MCP_CHROMA_URL": "http://chroma:8000",
           "HEADROOM_MCP_TOKENS_FILE": str(tmp_path / "t.json"), "HEADROOM_MCP_TURN_TTL": "90m",
           "HEADROOM_MCP_FORGET_RETENTION": "2w", "HEADROOM_MCP_SECRETS": "refuse", "HEADROOM_MCP_MIN_FREE_MB": "0.5",
           "HEADROOM_MCP_EMBED_URL": "http://embed:1/v1", "HEADROOM_MCP_EMBED_MODEL": "m", "OPENAI_API_KEY": "k"}
    client = Settings.resolve(idle_timeout=42, env=env)
    daemon = Settings.resolve(env=client.to_env())
    store = ("data_dir", "chroma_url", "tokens_file", "idle_timeout", "turn_ttl", "forget_retention", "secrets",
             "min_free", "embedder")
    assert [getattr(daemon, name) for name in store] == [getattr(client, name) for name in store]
    assert (daemon.idle_timeout, daemon.turn_ttl, daemon.embedder.api_key) == (42, 5400, "k")
    with pytest.raises(InvalidInput, match="HEADROOM_MCP_IDLE_TIMEOUT"):
        Settings.resolve(idle_timeout=-1, env=env)


def test_a_default_agent_gives_way_to_the_one_the_environment_names():
    assert Settings.resolve(default_agent="cli", env={}).agent_id == "cli"
    assert Settings.resolve(default_agent="cli", env={"HEADROOM_MCP_AGENT": "codex"}).agent_id == "codex"
    assert Settings.resolve(agent_id="gemini", default_agent="cli", env={"HEADROOM_MCP_AGENT": "codex"}).agent_id == "gemini"
