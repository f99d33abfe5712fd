"""One owner process per store: sharing, concurrency, start races, crashes, idle exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, daemon_pid, kill_daemon, pid_alive

from headroom_mcp import InvalidInput, StoreLocked, SyncMemory

WORKER = str(ROOT / "tests" / "workers.py")


def worker(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def daemons_for(data_dir: Path) -> list[int]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "headroom_mcp daemon" in line and str(data_dir) in line]


def test_clients_in_two_processes_share_one_store(data_dir):
    with SyncMemory(agent_id="claude") as memory:
        saved = memory.save("the payments service talks to Stripe through a queue")
        assert saved["status"] == "created"
    hits = json.loads(finish(worker("recall", "how does payments reach Stripe?")))
    assert [h["id"] for h in hits] == [saved["id"]] and hits[0]["agents"] == ["claude"]


def test_errors_cross_the_wire_as_their_own_class(data_dir):
    with SyncMemory() as memory:
        with pytest.raises(InvalidInput, match="between 0 and 1"):
            memory.save("fine content", importance=3)
        with pytest.raises(InvalidInput, match="unknown parameter"):
            memory._backend.call("remember", {"content": "x", "colour": "red"}, memory.context.to_mapping())
        with pytest.raises(InvalidInput, match="unknown method"):
            memory._backend.call("drop_everything", {}, memory.context.to_mapping())
        assert memory.stats()["total"] == 0


@pytest.mark.slow
def test_cross_process_dense_and_lexical_past_the_index_flush(data_dir):
    """One process writes 1,200 memories (past Chroma's 1,000-change HNSW flush); another finds them."""
    finish(worker("write", "1200", "W", "claude"))
    for i in (3, 1199):
        token = f"W{i:05d}"
        hits = json.loads(finish(worker("recall", f"shard {token}")))
        assert any(token in h["content"] for h in hits), token  # lexical: a unique identifier
    hits = json.loads(finish(worker("recall", "who owns the billing module for shard W01195?", "10")))
    assert any("W01195" in h["content"] for h in hits)  # dense + lexical together


@pytest.mark.slow
def test_three_processes_times_500_writes(data_dir):
    procs = [worker("write", "500", prefix, agent) for prefix, agent in (("A", "claude"), ("B", "codex"), ("C", "gemini"))]
    for p in procs:
        finish(p)
    with SyncMemory() as memory:
        stats = memory.stats()
        assert stats["total"] == 1500
        assert stats["by_agent"] == {"claude": 500, "codex": 500, "gemini": 500}
        contents = {m["content"] for m in memory.get_all()}
    assert len(contents) == 1500
    assert len(daemons_for(data_dir)) == 1


def test_racing_merges_of_one_fact_make_one_memory(data_dir):
    at = str(time.time() + 1.5)
    procs = [worker("sleep-until", at, "same-fact", agent) for agent in ("claude", "codex", "gemini")]
    for p in procs:
        finish(p)
    with SyncMemory() as memory:
        memories = memory.get_all()
    assert len(memories) == 1
    assert sorted(memories[0]["agents"]) == ["claude", "codex", "gemini"] and memories[0]["seen_count"] == 3


def test_three_clients_starting_the_daemon_at_once_end_with_one(data_dir):
    at = str(time.time() + 1.5)
    procs = [worker("sleep-until", at, "ping") for _ in range(3)]
    pids = {int(finish(p).strip()) for p in procs}
    assert len(pids) == 1
    time.sleep(0.5)  # losers exit right after failing the lock
    assert daemons_for(data_dir) == list(pids)


@pytest.mark.slow
def test_kill_9_mid_burst_loses_nothing_acknowledged(data_dir, tmp_path):
    acks = tmp_path / "acks.tsv"
    writer = worker("write", "400", "K", "claude", str(acks))
    deadline = time.monotonic() + 120
    while (not acks.exists() or len(acks.read_text().splitlines()) < 120) and time.monotonic() < deadline:
        time.sleep(0.05)
    first = daemon_pid(data_dir)
    os.kill(first, signal.SIGKILL)  # mid-burst: the writer is between requests or inside one
    finish(writer)  # the client re-connects, restarting the daemon, and goes on
    assert daemon_pid(data_dir) != first
    lines = acks.read_text().splitlines()
    acknowledged = dict(line.split("\t") for line in lines)
    assert len(lines) == 400
    kill_daemon(data_dir, signal.SIGKILL)  # and once more, idle this time
    with SyncMemory() as memory:
        stored = {m["id"]: m["content"] for m in memory.get_all()}
        assert set(acknowledged) <= set(stored)
        assert len(stored) == 400  # a request repeated after the kill merged, not duplicated
        hits = memory.search("owner for shard K00399")
        assert hits and "K00399" in hits[0]["content"]
        health = memory.check(repair=False)
        assert (health["active"], health["lexical"], health["missing"], health["extra"]) == (400, 400, 0, 0)


def test_daemon_exits_when_idle(data_dir, monkeypatch):
    monkeypatch.setenv("HEADROOM_MCP_IDLE_TIMEOUT", "1")
    with SyncMemory() as memory:
        memory.save("idle daemons go away")
        pid = daemon_pid(data_dir)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    with SyncMemory() as memory:  # and the next client brings one back, with the data
        assert [m["content"] for m in memory.get_all()] == ["idle daemons go away"]


def test_embedded_mode_needs_the_lock(data_dir):
    with SyncMemory() as memory:
        memory.save("the daemon owns this store")
        with pytest.raises(StoreLocked):
            SyncMemory(embedded=True)
    kill_daemon(data_dir)
    with SyncMemory(embedded=True) as memory:
        assert [m["content"] for m in memory.get_all()] == ["the daemon owns this store"]


def test_socket_and_data_dir_are_private(data_dir):
    with SyncMemory() as memory:
        memory.save("private by default")
        sock = memory._backend.paths.socket
    assert (data_dir.stat().st_mode & 0o077) == 0
    assert (sock.stat().st_mode & 0o077) == 0


@pytest.fixture
def owner(data_dir):
    """A daemon in this process with its store open (no socket), and a way to hold its writer."""
    from headroom_mcp.config import Settings
    from headroom_mcp.daemon import Daemon
    from headroom_mcp.owner import StoreOwner

    with StoreOwner(Settings.resolve()) as claimed:
        claimed.open().result()
        yield Daemon(claimed)


def _hold_writer(daemon):
    """Occupy the writer until the returned event is set (a long write)."""
    writing, release = threading.Event(), threading.Event()
    held = daemon.owner.worker.submit(lambda: (writing.set(), release.wait(60)))
    writing.wait(10)
    return release, held


def test_reads_run_beside_a_write_and_writes_stay_one_at_a_time(owner):
    context = owner.settings.context().to_mapping()
    stored = owner.call("remember", {"content": "the docs site is built with mkdocs"}, context)
    release, held = _hold_writer(owner)
    queued = owner._submit("remember", {"content": "the changelog lives in CHANGES.md"}, context)
    # A read is answered while the write runs; the second write waits for the first.
    found = owner.call("recall", {"query": "what builds the documentation?"}, context)["results"]
    assert [r["id"] for r in found][:1] == [stored["id"]]
    assert owner.call("ping", {}, context)["records"] >= 1
    assert not queued.done()
    release.set()
    held.result(10)
    assert queued.result(60)["status"] == "created"


def test_freed_memory_is_released_after_open_and_once_calls_pause(data_dir, monkeypatch):
    """``release_memory`` runs when the store has opened, then once store calls pause (in-process
    calls count, as under ``serve --http``), on the worker, and not again until there were more."""
    import asyncio

    from headroom_mcp import daemon as daemon_module
    from headroom_mcp import owner as owner_module
    from headroom_mcp.config import Settings

    owner_module.release_memory()  # the real one: harmless wherever it runs (a no-op off glibc)
    monkeypatch.setenv("HEADROOM_MCP_IDLE_TIMEOUT", "1")  # housekeeping looks every 0.25 s
    monkeypatch.setattr(daemon_module, "TRIM_AFTER", 0.1)
    settings = Settings.resolve()
    owner = owner_module.StoreOwner(settings)
    daemon = daemon_module.Daemon(owner, idle_exit=False)
    released: list[tuple[int, str]] = []

    def release() -> None:
        released.append((daemon._handled, threading.current_thread().name))
    monkeypatch.setattr(owner_module, "release_memory", release)  # once the store opened
    monkeypatch.setattr(daemon_module, "release_memory", release)  # once calls paused

    async def until(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(released) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        await daemon.start()
        assert [n for n, _ in released] == [0]  # once the store opened
        ctx = settings.context().to_mapping()
        await asyncio.to_thread(daemon.call, "remember", {"content": "freed memory goes back to the OS"}, ctx)
        await asyncio.to_thread(daemon.call, "recall", {"query": "memory"}, ctx)
        await until(2)
        await asyncio.sleep(1.0)  # several more looks with no calls: nothing more to release
        await daemon.stop()

    with owner:
        asyncio.run(scenario())
    assert [n for n, _ in released] == [0, 2]
    assert all(name.startswith("store") for _, name in released)


def test_a_group_commit_answers_each_request_for_itself(owner):
    """One bad request does not fail its group; a request whose caller is gone is not run."""
    context = owner.settings.context().to_mapping()
    release, held = _hold_writer(owner)
    good = owner._submit("remember", {"content": "the nightly build runs at 02:00 UTC"}, context)
    bad = owner._submit("remember", {"content": "a lone surrogate \ud800 here"}, context)
    gone = owner._submit("remember", {"content": "the caller of this one hung up"}, context)
    other = owner._submit("remember", {"content": "benchmarks live in bench/"}, context)
    assert gone.cancel()
    release.set()
    held.result(10)
    assert good.result(60)["status"] == "created" and other.result(60)["status"] == "created"
    with pytest.raises(InvalidInput, match="surrogate"):
        bad.result(60)
    assert gone.cancelled()
    contents = [m["content"] for m in owner.call("list", {}, context)["memories"]]
    assert sorted(contents) == ["benchmarks live in bench/", "the nightly build runs at 02:00 UTC"]
