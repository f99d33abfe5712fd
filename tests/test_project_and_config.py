"""Project identity from git remotes, and settings resolution."""

from __future__ import annotations

import subprocess

import pytest

from headroom_mcp.config import Settings
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
