"""Backups and portability: exact export/import round trips, consistent copies of a live store."""

from __future__ import annotations

import time

import pytest
from conftest import kill_daemon
from test_daemon import finish, worker

from headroom_mcp import InvalidInput, SyncMemory


def memories(memory: SyncMemory) -> list[dict]:
    return sorted(memory.get_all(limit=100_000), key=lambda m: m["id"])


def test_export_import_round_trip_is_exact(tmp_path):
    who = dict(user_id="alice", agent_id="claude", project="github.com/acme/atlas", session_id="s1")
    with SyncMemory(**who, data_dir=tmp_path / "a", embedded=True) as a:
        a.save("this repo uses uv, not pip", tags=["build"], importance=0.8)
        a.save("the user prefers tabs", scope="user")
        a.save("we are mid-way through the auth refactor", scope="session")
        a.save("I keep my scratch notes in notes/claude.md", scope="agent")
        old = a.save("the API listens on port 8080", scope="project")["id"]
        a.save("the API listens on port 9090", supersedes=old)
        a.settings.agent_id = "codex"
        a.save("The repository uses uv instead of pip.")  # merged: two agents, seen twice
        a.settings.agent_id = "claude"
        exported = memories(a)
    assert {m["scope"] for m in exported} == {"user", "project", "session", "agent"}
    assert any(m["seen_count"] == 2 and m["agents"] == ["claude", "codex"] for m in exported)
    with SyncMemory(**who, data_dir=tmp_path / "b", embedded=True) as b:
        assert b.import_records(exported)["created"] == len(exported)
        assert memories(b) == exported  # ids, provenance, timestamps, scopes, tags, counts


@pytest.mark.slow
def test_backup_of_a_live_store_is_consistent(data_dir, tmp_path):
    acks = tmp_path / "acks.tsv"
    writer = worker("write", "300", "B", "claude", str(acks))
    deadline = time.monotonic() + 120
    while (not acks.exists() or len(acks.read_text().splitlines()) < 100) and time.monotonic() < deadline:
        time.sleep(0.05)
    before = set(line.split("\t")[0] for line in acks.read_text().splitlines())
    with SyncMemory() as memory:
        result = memory.backup(tmp_path / "backup")  # while the writer keeps writing
    finish(writer)
    assert result["records"] >= len(before)
    kill_daemon(data_dir)
    with SyncMemory(data_dir=tmp_path / "backup", embedded=True) as copy:
        stored = {m["id"]: m["content"] for m in copy.get_all(limit=100_000)}
        assert len(stored) == result["records"] and before <= set(stored)
        hit = copy.search("module owner for shard B00042")
        assert hit and "B00042" in hit[0]["content"]
        assert copy.check(repair=False)["missing"] == 0


def test_backup_refuses_a_non_empty_or_inner_destination(data_dir, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with SyncMemory() as memory:
        memory.save("CI runs on GitHub Actions")
        with pytest.raises(InvalidInput, match="not empty"):
            memory.backup(tmp_path / "full")
        with pytest.raises(InvalidInput, match="outside"):
            memory.backup(data_dir / "inside")
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_a_backup_is_a_data_dir_the_cli_can_open_at_once(data_dir, tmp_path):
    """What ``backup`` prints (use it as --data-dir DEST) works as said: the copy is private
    (0700), as a data dir that holds the daemon's socket must be, whatever the umask."""
    from test_cli_robust import cli

    assert cli("remember", "the nightly job rotates the logs").returncode == 0
    copy = tmp_path / "copies" / "monday"
    made = cli("backup", str(copy))
    assert made.returncode == 0, made.stderr
    opened = cli("recall", "which job rotates the logs?", "--data-dir", str(copy))
    try:
        assert opened.returncode == 0, opened.stderr
        assert "the nightly job rotates the logs" in opened.stdout
        assert oct(copy.stat().st_mode & 0o777) == "0o700"
    finally:
        kill_daemon(copy)
