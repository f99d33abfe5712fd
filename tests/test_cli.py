"""The command line for people: remember/recall/list/show/stats, export/import, doctor."""

from __future__ import annotations

import json
import subprocess

from conftest import kill_daemon
from test_server import EXE


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=180, input=stdin)


def test_remember_recall_show_stats_as_text_and_json(data_dir):
    saved = json.loads(cli("remember", "deploys go through make deploy", "--tag", "ops", "--json").stdout)
    assert saved["status"] == "created" and saved["agents"] == ["cli"]
    text = cli("recall", "how do we deploy?").stdout
    assert saved["id"] in text and "deploys go through make deploy" in text
    shown = json.loads(cli("show", saved["id"], "--json").stdout)
    assert shown["tags"] == ["ops"] and shown["seen_count"] == 1
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["total"] == 1 and stats["by_agent"] == {"cli": 1}
    bad = cli("remember", "x", "--importance", "3")
    assert bad.returncode == 1 and "importance" in bad.stderr


def test_export_then_import_into_another_store_round_trips(data_dir, tmp_path, monkeypatch):
    for fact in ("this repo uses uv, not pip", "the API listens on port 8080", "staging deploys need the VPN"):
        cli("remember", fact, "--agent", "claude")
    dump = tmp_path / "memories.jsonl"
    assert cli("export", str(dump)).returncode == 0
    exported = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [m["content"] for m in exported] == ["this repo uses uv, not pip", "the API listens on port 8080", "staging deploys need the VPN"]

    monkeypatch.setenv("HEADROOM_MCP_DATA_DIR", str(tmp_path / "other-store"))
    try:
        result = json.loads(cli("import", str(dump), "--json").stdout)
        assert result.get("created") == 3, result
        again = json.loads(cli("import", str(dump), "--json").stdout)
        assert again.get("created", 0) == 0, again  # deduplicated against what is there
        listed = json.loads(cli("list", "--json").stdout)["memories"]
        assert sorted((m["id"], m["content"], tuple(m["agents"]), m["created_at"]) for m in listed) == \
            sorted((m["id"], m["content"], tuple(m["agents"]), m["created_at"]) for m in exported)
    finally:
        kill_daemon(tmp_path / "other-store")


def test_import_of_a_bad_file_names_the_line_and_imports_nothing(data_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "mem_a", "content": "fine"}\nnot json\n')
    out = cli("import", str(bad))
    assert out.returncode == 1 and "bad.jsonl:2" in out.stderr
    assert json.loads(cli("stats", "--json").stdout)["total"] == 0


def test_doctor_on_a_data_dir_that_does_not_exist_creates_nothing(data_dir):
    out = cli("doctor", "--json")
    store = {c["check"]: c for c in json.loads(out.stdout)["checks"]}["store"]
    assert store["status"] == "warn" and "none yet in" in store["detail"]
    assert not data_dir.exists()  # no store made, no daemon started for a mistyped path


def test_doctor_reports_store_model_and_registrations(data_dir):
    assert cli("remember", "the deploy uses helm").returncode == 0
    out = cli("doctor", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    checks = {c["check"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["store"]["status"] == "ok" and "daemon pid" in checks["store"]["detail"]
    assert checks["embedding model"]["status"] == "ok"
    assert {"agent claude", "agent codex", "agent gemini"} <= set(checks)
    assert "team tokens" not in checks  # no tokens file: team mode is simply off


def test_doctor_reports_the_team_tokens_file(data_dir):
    assert cli("token", "create", "--user", "alice", "--project", "*").returncode == 0
    assert cli("token", "create", "--user", "bob", "--project", "p", "--role", "read").returncode == 0
    tokens = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)["checks"]}["team tokens"]
    assert tokens["status"] == "ok" and "2 tokens for 2 users" in tokens["detail"]
    (data_dir / "tokens.json").chmod(0o644)
    tokens = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)["checks"]}["team tokens"]
    assert tokens["status"] == "warn" and "should be 0o600" in tokens["detail"]


def test_a_merge_shows_its_restatement_and_unmerge_undoes_it(data_dir):
    first = json.loads(cli("remember", "this repo uses uv, not pip", "--agent", "claude", "--json").stdout)
    text = cli("remember", "The repository uses uv instead of pip.", "--agent", "codex").stdout
    assert text.startswith(f"merged {first['id']}") and "headroom-mcp unmerge mem_" in text
    restatement = text.split("headroom-mcp unmerge ")[1].split(")")[0]
    shown = json.loads(cli("show", first["id"], "--json").stdout)
    assert [r["id"] for r in shown["restatements"]] == [restatement] and shown["agents"] == ["claude", "codex"]
    out = cli("unmerge", restatement)
    assert out.returncode == 0 and out.stdout.strip() == f"unmerged {restatement} from {first['id']}"
    listed = {m["id"]: m for m in json.loads(cli("list", "--json").stdout)["memories"]}
    assert set(listed) == {first["id"], restatement} and listed[first["id"]]["agents"] == ["claude"]
    again = cli("unmerge", restatement)
    assert again.returncode == 1 and "not a merged restatement" in again.stderr
