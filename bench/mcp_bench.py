"""headroom-mcp over MCP, side by side with @modelcontextprotocol/server-memory.

    .venv/bin/python bench/mcp_bench.py [--sizes 1000,10000] [--samples 100]

Both servers are spawned over stdio by the MCP SDK's client, the way an agent runs them.
Measured per server: cold start (spawn → ``initialize`` + ``tools/list`` answered, median
of 5 fresh starts; for headroom-mcp with no daemon running, so this is the stdio shim
alone, and separately the first tool call, which waits for the daemon to open the store
and load the model), then ``remember`` and ``recall`` latency p50/p95 over MCP with the
store pre-filled to each size (headroom-mcp: bulk import; server-memory: its JSONL file).
server-memory's equivalents are ``create_entities`` and ``search_nodes`` (substring
search over a knowledge graph, no embeddings). Also ``headroom-mcp hook prompt`` latency
(a new process per call, as the agents run it) against a warm daemon.

Needs the npm packages of tests/agents/package.json (``npm install --prefix tests/agents``).
Writes bench/results/mcp.md as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from store_bench import corpus, pct  # noqa: E402

from headroom_mcp import SyncMemory  # noqa: E402
from headroom_mcp.store.records import MemoryRecord, new_id, now  # noqa: E402

EXE = str(Path(sys.executable).parent / "headroom-mcp")
SERVER_MEMORY = ROOT / "tests" / "agents" / "node_modules" / ".bin" / "mcp-server-memory"
RESULTS = HERE / "results" / "mcp.md"


class Server:
    """How to start one server and call its remember/recall equivalents."""

    def __init__(self, name: str, command: str, args: list[str], env: dict[str, str], remember, recall):
        self.name, self.command, self.args, self.env = name, command, args, env
        self.remember, self.recall = remember, recall

    def params(self) -> StdioServerParameters:
        return StdioServerParameters(command=self.command, args=self.args, env={**os.environ, **self.env})


def headroom(data_dir: Path) -> Server:
    return Server("headroom-mcp", EXE, ["serve", "--agent", "bench", "--user", "bench", "--project", "bench"],
                  {"HEADROOM_MCP_DATA_DIR": str(data_dir)},
                  lambda text: ("remember", {"content": text, "scope": "user"}),
                  lambda query: ("recall", {"query": query, "limit": 5}))


def server_memory(path: Path) -> Server:
    return Server("server-memory", str(SERVER_MEMORY), [], {"MEMORY_FILE_PATH": str(path)},
                  lambda text: ("create_entities", {"entities": [{"name": f"fact-{new_id()}", "entityType": "fact", "observations": [text]}]}),
                  lambda query: ("search_nodes", {"query": query}))


async def cold_start(server: Server) -> tuple[float, float]:
    """Seconds to initialize + tools/list, and to the first recall answered."""
    start = time.perf_counter()
    async with stdio_client(server.params()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            listed = time.perf_counter() - start
            name, arguments = server.recall("package manager")
            await session.call_tool(name, arguments)
            return listed, time.perf_counter() - start


async def _timed(session: ClientSession, calls: list[tuple[str, dict]]) -> list[float]:
    """Milliseconds per call, made one after another."""
    out = []
    for name, arguments in calls:
        t = time.perf_counter()
        result = await session.call_tool(name, arguments)
        out.append((time.perf_counter() - t) * 1000)
        assert not result.is_error, result
    return out


async def timed_calls(server: Server, texts: list[str], queries: list[str]) -> tuple[list[float], list[float]]:
    async with stdio_client(server.params()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await _timed(session, [server.recall("warm up")])
            saves = await _timed(session, [server.remember(text) for text in texts])
            searches = await _timed(session, [server.recall(query) for query in queries])
            return saves, searches


def fill_headroom(data_dir: Path, texts: list[str]) -> None:
    t = now()
    records = [MemoryRecord(id=new_id(), content=c, scope="user", user_id="bench", agents=["bench"], created_by="bench",
                            created_at=t, updated_at=t).to_dict() for c in texts]
    with SyncMemory(user_id="bench", agent_id="bench", project="bench", data_dir=data_dir) as memory:
        for i in range(0, len(records), 500):
            memory.import_records(records[i:i + 500], dedup=False)


def fill_server_memory(path: Path, texts: list[str]) -> None:
    with open(path, "w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"type": "entity", "name": f"fact-{i}", "entityType": "fact", "observations": [text]}) + "\n")


def stop_daemon(data_dir: Path) -> None:
    lock = data_dir / "daemon.lock"
    try:
        pid = int(lock.read_text().strip())
        os.kill(pid, 15)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
    except (OSError, ValueError):
        pass


def hook_latency(data_dir: Path, samples: int) -> list[float]:
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(data_dir), "HEADROOM_MCP_USER": "bench", "HEADROOM_MCP_PROJECT": "bench"}
    out = []
    for i in range(samples):
        payload = json.dumps({"session_id": f"hook-{i}", "prompt": "which package manager does the api use?"})
        t = time.perf_counter()
        subprocess.run([EXE, "hook", "prompt", "--agent", "claude"], input=payload, capture_output=True, text=True, env=env, check=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    if not SERVER_MEMORY.exists():
        sys.exit(f"missing {SERVER_MEMORY}: run npm install --prefix tests/agents")
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, starts = [], []
    work = Path(tempfile.mkdtemp(prefix="headroom-mcp-bench-"))

    for label, make in (("headroom-mcp", lambda d: headroom(d)), ("server-memory", lambda d: server_memory(d / "memory.jsonl"))):
        lists, firsts = [], []
        for i in range(5):
            d = work / f"cold-{label}-{i}"
            d.mkdir()
            listed, first = anyio.run(cold_start, make(d))
            lists.append(listed)
            firsts.append(first)
            stop_daemon(d)
        starts.append((label, statistics.median(lists), statistics.median(firsts)))
        print(f"{label}: cold start {statistics.median(lists) * 1000:.0f} ms, first recall {statistics.median(firsts) * 1000:.0f} ms", file=sys.stderr)

    hooks: list[float] = []
    for size in sizes:
        texts = corpus(size + args.samples)
        fill, extra = texts[:size], texts[size:]
        queries = [" ".join(q.split()[:5]) for q in fill[:: max(1, size // args.samples)]][: args.samples]
        d = work / f"headroom-{size}"
        fill_headroom(d, fill)
        saves, searches = anyio.run(timed_calls, headroom(d), extra, queries)
        rows.append(("headroom-mcp", size, saves, searches))
        if size == sizes[-1]:
            hooks = hook_latency(d, 30)
        stop_daemon(d)
        d = work / f"server-memory-{size}"
        d.mkdir()
        fill_server_memory(d / "memory.jsonl", fill)
        saves, searches = anyio.run(timed_calls, server_memory(d / "memory.jsonl"), extra, queries)
        rows.append(("server-memory", size, saves, searches))
        print(f"size {size} done", file=sys.stderr)

    lines = [
        f"Machine: {os.cpu_count()} cores. Both servers over stdio with the MCP SDK client; {args.samples} timed calls each.", "",
        "| server | cold start to tools/list (ms) | first recall answered (ms) |", "|---|---|---|",
        *[f"| {name} | {lst * 1000:.0f} | {first * 1000:.0f} |" for name, lst, first in starts], "",
        "| server | memories | remember p50 (ms) | remember p95 (ms) | recall p50 (ms) | recall p95 (ms) |", "|---|---|---|---|---|---|",
        *[f"| {name} | {size:,} | {pct(s, .5):.1f} | {pct(s, .95):.1f} | {pct(r, .5):.1f} | {pct(r, .95):.1f} |" for name, size, s, r in rows],
    ]
    by = {(name, size): (s, r) for name, size, s, r in rows}
    lines += ["", "| memories | remember p50, headroom-mcp ÷ server-memory | recall p50, headroom-mcp ÷ server-memory |", "|---|---|---|"]
    for size in sizes:
        (hs, hr), (ms, mr) = by[("headroom-mcp", size)], by[("server-memory", size)]
        lines.append(f"| {size:,} | {pct(hs, .5) / pct(ms, .5):.1f}x | {pct(hr, .5) / pct(mr, .5):.1f}x |")
    if hooks:
        lines += ["", f"`headroom-mcp hook prompt` (new process per call, warm daemon, {sizes[-1]:,} memories, 30 calls): "
                      f"p50 {pct(hooks, .5):.0f} ms, p95 {pct(hooks, .95):.0f} ms"]
    report = "\n".join(lines)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
