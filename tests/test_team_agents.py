"""Team mode with the real agent CLIs: teammates' agents share one headroom-mcp over HTTP.

Alice's Claude Code and Bob's Gemini CLI each run a whole turn against a scripted model on
loopback, registered with ``install all --url --scope project --hooks`` in the same
repository and each holding their own token in the environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scripted_model import ScriptedModel
from test_agents_e2e import run_agent
from test_install import CLIS, cli, git_repo, needs_clis
from test_server import EXE
from test_team import P, TeamServer


@needs_clis
def test_alices_claude_remembers_and_bobs_gemini_recalls_through_the_team_server(tmp_path: Path, data_dir):
    team = TeamServer(data_dir)
    try:
        url = team.start("http")
        home, project = tmp_path / "home", git_repo(tmp_path / "atlas")  # project id: github.com/acme/atlas == P
        (home / ".gemini").mkdir(parents=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
        (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.local.json").write_text('{"enableAllProjectMcpServers": true}')
        out = cli(home, "install", "all", "--scope", "project", "--url", url, "--hooks", cwd=project)
        assert out.returncode == 0, out.stderr
        assert json.loads((project / ".mcp.json").read_text())["mcpServers"]["headroom"]["headers"]["X-Headroom-Project"] == P
        # The committed hooks call `headroom-mcp` by name: each teammate has it on PATH.
        path = f"{Path(EXE).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "HOME": str(home), "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "DISABLE_AUTOUPDATER": "1", "PATH": path}

        def claude_turn(user: str, content: str) -> list[dict]:
            """A Claude Code turn as ``user`` whose model calls remember; the model requests it made."""
            model = ScriptedModel([("mcp__headroom__remember", {"content": content})])
            try:
                run_agent([str(CLIS / "claude"), "-p", f"remember: {content}", "--allowedTools", "mcp__headroom"],
                          {**env, "HEADROOM_MCP_TOKEN": team.token[user], "ANTHROPIC_BASE_URL": model.url,
                           "ANTHROPIC_API_KEY": "sk-test"}, project)
            finally:
                model.close()
            return [r["body"] for r in model.requests if r["path"].startswith("/v1/messages") and r["body"].get("tools")]

        saved = json.loads(claude_turn("alice", "deploys to production need the ops VPN up first")[-1]["messages"][-1]["content"][0]["content"])
        assert saved["status"] == "created" and saved["scope"] == "project" and saved["agents"] == ["claude"]

        model = ScriptedModel([("mcp_headroom_recall", {"query": "what do I need before deploying to production?"})])
        try:
            run_agent([str(CLIS / "gemini"), "-p", "what do I need before deploying?", "--yolo", "-m", "gemini-2.5-pro"],
                      {**env, "HEADROOM_MCP_TOKEN": team.token["bob"], "GOOGLE_GEMINI_BASE_URL": model.url,
                       "GEMINI_API_KEY": "test-key"}, project)
        finally:
            model.close()
        answered = [json.dumps(r["body"]) for r in model.requests if "GenerateContent" in r["path"] and "functionResponse" in json.dumps(r["body"])]
        assert answered, "gemini never sent the tool result back"
        assert "deploys to production need the ops VPN up first" in answered[-1]
        assert "alice" in answered[-1]  # provenance: the memory lists alice among its users

        # Carol's token is read-only: her session starts with the team's memory (the
        # SessionStart hook asks the team server), and her remember comes back as a tool error.
        turns = claude_turn("carol", "carol thinks deploys are fine without the VPN")
        assert "deploys to production need the ops VPN up first" in json.dumps(turns[0]["messages"])
        refused = turns[-1]["messages"][-1]["content"][0]
        assert refused.get("is_error") and "read-only" in json.dumps(refused)
    finally:
        team.stop()
