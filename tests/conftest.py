"""Shared fixtures: a real Chroma store in a temp dir, the real ONNX model, real daemons."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from headroom_mcp.paths import DaemonPaths
from headroom_mcp.store.embedder import OnnxEmbedder
from headroom_mcp.store.memory_store import MemoryStore
from headroom_mcp.store.scopes import Context

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    """The bundled MiniLM, loaded once for the whole run."""
    e = OnnxEmbedder()
    e.warm()
    return e


@pytest.fixture
def store(tmp_path: Path, embedder: OnnxEmbedder) -> MemoryStore:
    return MemoryStore.open(embedder, data_dir=tmp_path / "data")


@pytest.fixture
def ctx() -> Context:
    return Context("alice", project="github.com/acme/atlas", session_id="s1", agent_id="claude", turn_id="t1")


def daemon_pid(data_dir: Path) -> int | None:
    try:
        text = DaemonPaths.for_data_dir(data_dir).lock.read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return True


def kill_daemon(data_dir: Path, sig: int = signal.SIGTERM) -> None:
    pid = daemon_pid(data_dir)
    if pid and pid != os.getpid() and pid_alive(pid):  # embedded mode writes our own pid
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A data dir for daemon-backed tests; its daemon is stopped afterwards."""
    d = tmp_path / "store"
    monkeypatch.setenv("HEADROOM_MCP_DATA_DIR", str(d))
    monkeypatch.setenv("HEADROOM_MCP_IDLE_TIMEOUT", "120")
    monkeypatch.setenv("HEADROOM_MCP_USER", "alice")
    monkeypatch.setenv("HEADROOM_MCP_PROJECT", "github.com/acme/atlas")
    yield d
    kill_daemon(d)
