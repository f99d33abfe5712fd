"""Whole turns of the real Claude Code and Gemini CLI against a scripted model on loopback:
what one agent remembers another recalls, and the installed hooks put memory into a new
session's first request."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from pathlib import Path

import pytest
from scripted_model import ScriptedModel
from test_install import CLIS, cli, needs_clis

from headroom_mcp import SyncMemory


@pytest.fixture
def setup(tmp_path: Path, data_dir):
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".gemini").mkdir(parents=True)
    project.mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    out = cli(home, "install", "all", "--hooks", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    with SyncMemory(agent_id="codex") as memory:  # something for the session-start hook to inject
        memory.save("the staging cluster runs on spot instances", scope="user", importance=0.9)
    env = {**os.environ, "HOME": str(home), "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_AUTOUPDATER": "1"}
    return home, project, env


def run_agent(argv: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


@needs_clis
def test_claude_remembers_and_gemini_recalls_with_hook_context(setup, data_dir):
    home, project, env = setup
    model = ScriptedModel([("mcp__headroom__remember", {"content": "this repo uses uv, not pip"})])
    try:
        run_agent([str(CLIS / "claude"), "-p", "remember that this repo uses uv, not pip", "--allowedTools", "mcp__headroom"],
                  {**env, "ANTHROPIC_BASE_URL": model.url, "ANTHROPIC_API_KEY": "sk-test"}, project)
    finally:
        model.close()
    turns = [r["body"] for r in model.requests if r["path"].startswith("/v1/messages") and r["body"].get("tools")]
    assert "mcp__headroom__remember" in {t["name"] for t in turns[0]["tools"]}
    # The session-start hook's context is in the first request the model sees.
    assert "the staging cluster runs on spot instances" in json.dumps(turns[0]["messages"])
    result = turns[-1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and json.loads(result["content"])["status"] == "created"
    with SyncMemory() as memory:
        stored = [m for m in memory.get_all() if m["content"] == "this repo uses uv, not pip"]
    assert len(stored) == 1 and stored[0]["agents"] == ["claude"]

    model = ScriptedModel([("mcp_headroom_recall", {"query": "which package manager does this repo use?"})])
    try:
        run_agent([str(CLIS / "gemini"), "-p", "which package manager does this repo use?", "--yolo", "-m", "gemini-2.5-pro"],
                  {**env, "GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": "test-key"}, project)
    finally:
        model.close()
    bodies = [json.dumps(r["body"]) for r in model.requests if "GenerateContent" in r["path"]]
    answered = [b for b in bodies if "functionResponse" in b]
    assert answered, "gemini never sent the tool result back"
    assert "this repo uses uv, not pip" in answered[-1] and "claude" in answered[-1]


@needs_clis
def test_codex_remembers_through_the_server_with_hook_context(setup, data_dir):
    home, project, env = setup
    model = ScriptedModel([("mcp__headroom__remember", {"content": "integration tests need docker compose up first"})])
    config = home / ".codex" / "config.toml"
    config.write_text('model = "gpt-5"\nmodel_provider = "fake"\n\n' + config.read_text() +
                      f'\n[model_providers.fake]\nname = "fake"\nbase_url = "{model.url}/v1"\nenv_key = "FAKE_KEY"\nwire_api = "responses"\n')
    try:
        run_agent([str(CLIS / "codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "--dangerously-bypass-hook-trust",
                   "remember that integration tests need docker compose up first"], {**env, "FAKE_KEY": "x"}, project)
    finally:
        model.close()
    turns = [r["body"] for r in model.requests if r["path"].startswith("/v1/responses") and r["body"].get("tools")]
    assert any(t.get("name") == "mcp__headroom" for t in turns[0]["tools"])
    assert "the staging cluster runs on spot instances" in json.dumps(turns[0])  # SessionStart hook
    outputs = [i for i in turns[-1]["input"] if i.get("type") == "function_call_output"]
    saved = json.loads(outputs[-1]["output"].split("Output:", 1)[-1])
    assert saved["status"] == "created" and saved["agents"] == ["codex"]
    # Codex passes MCP servers a minimal environment, so the memory belongs to the OS user.
    with SyncMemory(user_id=getpass.getuser()) as memory:
        assert memory.get(saved["id"])["content"] == "integration tests need docker compose up first"
