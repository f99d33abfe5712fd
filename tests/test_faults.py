"""Storage faults with real parts: a full disk (a 2 MB tmpfs) and a damaged ``chroma.sqlite3``.

Every test runs the real CLI, which starts the real daemon over a real Chroma store; the
faults are real too (ENOSPC from the kernel, bytes cut from the file). What is checked is
what a user sees (a clear error, a non-zero exit), that no write is lost or faked, and
that once the cause is gone the next call works without anyone killing the daemon.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import daemon_pid, kill_daemon
from test_cli import cli
from test_server import run, stdio_session

from headroom_mcp.client import DaemonClient
from headroom_mcp.config import Settings
from headroom_mcp.errors import StoreFull
from headroom_mcp.store.memory_store import MemoryStore

# ---- a full disk --------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A data dir on its own 2 MB tmpfs (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a 2 MB tmpfs needs root")
    data_dir = mount / "store"
    monkeypatch.setenv("HEADROOM_MCP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HEADROOM_MCP_IDLE_TIMEOUT", "120")
    monkeypatch.setenv("HEADROOM_MCP_USER", "alice")
    monkeypatch.setenv("HEADROOM_MCP_PROJECT", "github.com/acme/atlas")
    try:
        yield data_dir
    finally:
        kill_daemon(data_dir)
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill the file system holding ``disk`` with a file, then give back ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def check(data_dir: Path) -> dict:
    with DaemonClient(Settings.resolve(data_dir=data_dir)) as client:
        return client.call("check", {"repair": False})


def contents(data_dir: Path) -> set[str]:
    out = cli("list", "--json", "--limit", "1000")
    assert out.returncode == 0, out.stderr
    return {m["content"] for m in json.loads(out.stdout)["memories"]}


def test_a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_without_restart(small_disk, monkeypatch):
    """The usual case: the disk fills up, and the store's reserve keeps Chroma clear of ENOSPC."""
    monkeypatch.setenv("HEADROOM_MCP_MIN_FREE_MB", "0.5")
    for fact in ("the deploy uses helm", "CI runs on GitHub Actions", "the API listens on port 8080"):
        assert cli("remember", fact).returncode == 0
    pid = daemon_pid(small_disk)
    filler = fill(small_disk.parent, leave=128 * 1024)

    refused = cli("remember", "the staging database is postgres 16")
    assert refused.returncode != 0
    assert f"disk full: the store in {small_disk.resolve()} could not write (No space left on device" in refused.stderr
    assert "nothing was stored; free space and retry" in refused.stderr and "internal error" not in refused.stderr
    recalled = cli("recall", "which port does the API listen on?", "--json")  # reads work while full
    assert recalled.returncode == 0 and json.loads(recalled.stdout)["results"][0]["content"] == "the API listens on port 8080"
    assert "the staging database is postgres 16" not in contents(small_disk)

    filler.unlink()
    assert cli("remember", "the staging database is postgres 16").returncode == 0
    assert daemon_pid(small_disk) == pid  # the same daemon answered throughout
    assert len(contents(small_disk)) == 4
    report = check(small_disk)
    assert (report["active"], report["lexical"], report["missing"], report["extra"]) == (4, 4, 0, 0)


def test_chroma_meeting_enospc_neither_loses_nor_fakes_a_write(small_disk, monkeypatch):
    """No reserve: Chroma itself runs out of space mid-write. Every answer must be the truth."""
    monkeypatch.setenv("HEADROOM_MCP_MIN_FREE_MB", "0")
    assert cli("remember", "the deploy uses helm").returncode == 0
    filler = fill(small_disk.parent, leave=96 * 1024)
    acknowledged, refused = [], []
    with DaemonClient(Settings.resolve()) as client:
        for n in range(200):
            fact = f"service {n} listens on port {9000 + n} behind the gateway"
            try:
                client.call("remember", {"content": fact})
                acknowledged.append(fact)
            except StoreFull as exc:  # never "internal error", never a hang
                assert "disk full: the store in" in str(exc)
                refused.append(fact)
                if len(refused) == 3:
                    break
    assert len(refused) == 3, "the disk never filled"

    filler.unlink()
    assert cli("remember", "after the cleanup the gateway moved to envoy").returncode == 0
    stored = contents(small_disk)
    assert set(acknowledged) <= stored  # nothing acknowledged is lost...
    assert not set(refused) & stored  # ...and nothing reported as failed was kept
    report = check(small_disk)
    assert report["active"] == len(stored) == len(acknowledged) + 2
    assert (report["missing"], report["extra"]) == (0, 0)


# ---- a damaged store file -----------------------------------------------------------------


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:50_000])


def _garbage(file: Path) -> None:
    file.write_bytes(os.urandom(file.stat().st_size))


def _empty(file: Path) -> None:
    file.write_bytes(b"")


DAMAGE = {
    "truncated": (_truncate, "truncated: 50000 of"),
    "garbage": (_garbage, "file is not a database"),
    "empty": (_empty, "the file is empty (0 bytes)"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_store_file_is_named_left_as_it_was_and_recovers(data_dir, tmp_path, damage):
    assert cli("remember", "the deploy uses helm").returncode == 0
    assert cli("remember", "CI runs on GitHub Actions").returncode == 0
    kill_daemon(data_dir)
    file = data_dir.resolve() / "chroma" / "chroma.sqlite3"
    good = tmp_path / "good.sqlite3"
    shutil.copy(file, good)
    spoil, cause = DAMAGE[damage]
    spoil(file)
    damaged = file.read_bytes()
    expected = f"the store file {file} is damaged ({cause}"

    recalled = cli("recall", "how do we deploy?")
    assert recalled.returncode != 0
    assert expected in recalled.stderr and "Restore a backup" in recalled.stderr, recalled.stderr
    doctor = cli("doctor")
    assert doctor.returncode == 1 and expected in doctor.stdout, doctor.stdout

    async def tool_call():
        async with stdio_session(data_dir, "--agent", "claude") as (session, _):
            return await session.call_tool("recall", {"query": "how do we deploy?"})

    result = run(tool_call)
    assert result.is_error and expected in result.content[0].text
    written = cli("remember", "a write to a damaged store")
    assert written.returncode != 0 and expected in written.stderr
    assert hashlib.sha256(file.read_bytes()).digest() == hashlib.sha256(damaged).digest()  # nothing overwritten

    shutil.copy(good, file)  # the cause is gone: the next call works, nobody killed anything
    recovered = cli("recall", "how do we deploy?", "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout)["results"][0]["content"] == "the deploy uses helm"


def test_a_file_cut_short_inside_a_checkpoint_is_not_called_damaged(tmp_path):
    """A kill -9 inside a WAL checkpoint leaves the header counting a page the file does not
    hold yet; the log beside it still has that page, and SQLite replays it on open."""
    import sqlite3

    from headroom_mcp.errors import StoreDamaged
    from headroom_mcp.store import faults

    live, cut = tmp_path / "live", tmp_path / "chroma"
    live.mkdir()
    cut.mkdir()
    db = live / faults.SQLITE_FILE
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 100)
    conn.commit()  # these pages are in the log only
    shutil.copy(db.with_name(db.name + "-wal"), cut / (faults.SQLITE_FILE + "-wal"))
    conn.execute("PRAGMA wal_checkpoint(FULL)")  # the header now counts them: the checkpoint as finished
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    (cut / faults.SQLITE_FILE).write_bytes(db.read_bytes()[:-page])  # ...but killed before its last page

    whole = db.read_bytes()
    faults.inspect(cut)
    assert sqlite3.connect(cut / faults.SQLITE_FILE).execute("SELECT count(*) FROM t").fetchone() == (100,)

    (cut / (faults.SQLITE_FILE + "-wal")).unlink()  # without the log the same file is cut short
    (cut / faults.SQLITE_FILE).write_bytes(whole[:-page])
    with pytest.raises(StoreDamaged, match="truncated"):
        faults.inspect(cut)
    conn = sqlite3.connect(db)  # ...and so it is beside a log that does not hold the missing pages
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE t SET x = 'y' WHERE rowid = 1")
    conn.commit()
    shutil.copy(db.with_name(db.name + "-wal"), cut / (faults.SQLITE_FILE + "-wal"))
    conn.close()
    (cut / faults.SQLITE_FILE).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(StoreDamaged, match="truncated"):
        faults.inspect(cut)


def test_a_new_data_dir_still_just_works(tmp_path, embedder):
    """No store file, or an empty one with nothing beside it, is a fresh store, not a damaged one."""
    from headroom_mcp.store.scopes import Context

    ctx = Context("alice")
    fresh = MemoryStore.open(embedder, data_dir=tmp_path / "fresh")
    assert fresh.remember(ctx, "the deploy uses helm")["status"] == "created"
    (tmp_path / "touched" / "chroma").mkdir(parents=True)
    (tmp_path / "touched" / "chroma" / "chroma.sqlite3").write_bytes(b"")
    touched = MemoryStore.open(embedder, data_dir=tmp_path / "touched")
    assert touched.remember(ctx, "the deploy uses helm")["status"] == "created"
