"""Each agent client is one ``ClientSpec``: a fourth one, defined here and nowhere else, is
installed, uninstalled, checked by doctor, named by the CLI and recognised by the server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from headroom_mcp import cli
from headroom_mcp.agents import CLIENTS, ClientSpec, ConfigFile, hook_event
from headroom_mcp.agents.spec import Finding, bearer_headers, env_if_any, launch
from headroom_mcp.checks import check
from headroom_mcp.config import Settings
from headroom_mcp.doctor import registrations
from headroom_mcp.install import Target, apply, plan
from headroom_mcp.server import agent_from_client


def _otter_checks(home: Path, root: Path, shell: Mapping[str, str], registered: bool) -> list[Finding]:
    return [check("otter sandbox", True, "no sandbox to open")] if registered else []


OTTER = ClientSpec(
    name="otter",
    servers=ConfigFile(".otter/servers.json", ".otter/servers.json"),
    servers_key="servers",
    stdio_entry=lambda target, agent: {**launch(target, agent), **env_if_any(target)},
    http_entry=lambda target, agent: {"endpoint": target.url, "requestHeaders": bearer_headers(target)},
    stdio_keys=("command", "args", "env"),
    http_keys=("endpoint", "requestHeaders"),
    hook_events=(("session-start", "Start"), ("prompt", "Prompt")),
    hooks=ConfigFile(".otter/hooks.json", ".otter/hooks.json"),
    hooks_flag=("experimental", "hooks"),
    url_keys=("endpoint",),
    header_keys=("requestHeaders",),
    doctor_checks=_otter_checks,
    client_names=("otter-agent",),
    program="otter-cli",
)


@pytest.fixture
def otter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The fourth client registered, and a home for it."""
    monkeypatch.setitem(CLIENTS, OTTER.name, OTTER)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    for name in ("HEADROOM_MCP_DATA_DIR", "HEADROOM_MCP_USER", "HEADROOM_MCP_EMBED_URL", "HEADROOM_MCP_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


def files(home: Path) -> dict[str, Any]:
    return {p.relative_to(home).as_posix(): json.loads(p.read_text())
            for p in sorted(home.rglob("*.json")) if p.is_file()}


def test_the_cli_installs_and_uninstalls_a_client_that_is_only_a_spec(otter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (otter / ".otter").mkdir()
    (otter / ".otter" / "servers.json").write_text('{"servers": {"mine": {"command": "x"}}, "theme": "dark"}\n')
    assert cli.main(["install", "otter", "--hooks"]) == 0
    written = files(otter)
    entry = written[".otter/servers.json"]["servers"]["headroom"]
    assert entry["args"] == ["serve", "--agent", "otter"] and written[".otter/servers.json"]["servers"]["mine"] == {"command": "x"}
    assert written[".otter/servers.json"]["experimental"] == {"hooks": True} and written[".otter/servers.json"]["theme"] == "dark"
    hooks = written[".otter/hooks.json"]["hooks"]
    assert sorted(hooks) == ["Prompt", "Start"] and hooks["Prompt"][0]["hooks"][0]["command"].endswith("hook prompt --agent otter")
    before = files(otter)
    assert cli.main(["install", "otter", "--hooks"]) == 0 and files(otter) == before  # idempotent
    assert "otter: unchanged" in capsys.readouterr().out

    assert cli.main(["uninstall", "otter"]) == 0
    assert (otter / ".otter" / "servers.json").read_text() == '{"servers": {"mine": {"command": "x"}}, "theme": "dark"}\n'
    assert not (otter / ".otter" / "hooks.json").exists() and not list(otter.rglob("*.headroom-*"))
    assert not (otter / ".claude.json").exists()  # `install otter` touched no other client


def test_install_all_and_doctor_include_the_new_client(otter: Path, tmp_path: Path) -> None:
    assert cli.main(["install", "all", "--hooks", "--data-dir", str(tmp_path / "store")]) == 0
    assert {".otter/servers.json", ".otter/hooks.json", ".claude.json", ".gemini/settings.json"} <= set(files(otter))
    settings = Settings.resolve(data_dir=str(tmp_path / "store"))
    checks = {c["check"]: c for c in registrations(otter, otter, {}, settings)}
    assert checks["agent otter"]["status"] == "ok", checks["agent otter"]
    assert f"-> {tmp_path / 'store'}" in checks["agent otter"]["detail"] and "user hooks" in checks["agent otter"]["detail"]
    assert "otter-cli" not in checks["agent otter"]["detail"] and "CLI not on PATH" in checks["agent otter"]["detail"]
    assert checks["one store"]["status"] == "ok", checks["one store"]
    assert checks["otter sandbox"]["status"] == "ok"


def test_a_team_entry_uses_the_specs_http_builder_and_drops_the_stdio_keys(otter: Path) -> None:
    target = Target("user", otter, otter, "headroom-mcp")
    apply(plan("otter", target))
    team = Target("user", otter, otter, "headroom-mcp", url="https://memory.example/mcp", token_env="OTTER_TOKEN")
    apply(plan("otter", team))
    entry = files(otter)[".otter/servers.json"]["servers"]["headroom"]
    assert entry == {"endpoint": "https://memory.example/mcp", "requestHeaders": {"Authorization": "Bearer ${OTTER_TOKEN}"}}
    checks = {c["check"]: c for c in registrations(otter, otter, {}, Settings.resolve())}
    assert "user server: https://memory.example/mcp -> https://memory.example/mcp" in checks["agent otter"]["detail"]
    assert not any(c.changed for c in plan("otter", team))  # known for ours by its own header table
    apply(plan("otter", team, install=False))
    assert files(otter) == {}


def test_the_server_and_hooks_know_the_client_by_its_spec(otter: Path) -> None:
    assert agent_from_client("Otter-Agent 2.0") == "otter"
    assert agent_from_client("claude-code") == "claude" and agent_from_client("Some Tool") == "some-tool"
    assert hook_event("otter", "prompt") == "Prompt" and hook_event("gemini", "prompt") == "BeforeAgent"
    assert hook_event(None, "prompt") == "UserPromptSubmit" and hook_event("otter", "session-start") == "Start"
    assert cli.build_parser().parse_args(["uninstall", "otter"]).client == "otter"
