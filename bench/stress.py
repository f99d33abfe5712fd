"""Sustained mixed load on one data dir: three agents' stdio servers plus CLI writes.

    .venv/bin/python bench/stress.py [--seconds 60]

Three ``headroom-mcp serve`` processes (agents claude, codex, gemini, each driven by the MCP
SDK's client) and a loop of ``headroom-mcp remember`` CLI processes share one data dir
for the given time. Each server mixes: remembering facts of its own, remembering facts
every agent says at the same moments (racing merges of the same fact), recalling, and
forgetting some of its own facts. Afterwards the store must hold every acknowledged fact
that was not forgotten, exactly once; each shared fact once, with every agent that said
it; nothing forgotten; and every call must have been answered (no process wedged).
Prints the figures and writes bench/results/stress.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from headroom_mcp import SyncMemory  # noqa: E402

EXE = str(Path(sys.executable).parent / "headroom-mcp")
AGENTS = ("claude", "codex", "gemini")
SHARED = [f"the {topic} service is owned by the platform team and deployed by make deploy-{topic}"
          for topic in ("billing", "search", "auth", "queue", "cache", "ledger", "mailer", "uploads", "reports", "gateway")]
CALL_TIMEOUT = 60.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else float("nan")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.errors: list[str] = []
        self.latency: list[float] = []
        self.kept: dict[str, str] = {}  # id -> content, acknowledged and not forgotten
        self.forgotten: set[str] = set()
        self.shared_by: dict[str, set[str]] = {}

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.calls[kind] += 1
            self.latency.append(seconds * 1000)


async def agent_loop(agent: str, data_dir: Path, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(data_dir), "HEADROOM_MCP_USER": "stress", "HEADROOM_MCP_PROJECT": "stress"}
    params = StdioServerParameters(command=EXE, args=["serve", "--agent", agent, "--user", "stress", "--project", "stress"], env=env)
    n = 0
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def call(kind: str, tool: str, arguments: dict) -> dict | None:
                t = time.perf_counter()
                with anyio.fail_after(CALL_TIMEOUT):  # a wedged process fails the run here
                    result = await session.call_tool(tool, arguments)
                tally.record(kind, time.perf_counter() - t)
                if result.is_error:
                    tally.errors.append(f"{agent} {tool}: {result.content[0].text}")
                    return None
                return result.structured_content

            while time.monotonic() < deadline:
                roll = rng.random()
                if roll < 0.45:
                    n += 1
                    content = f"{agent} note {n}: the nightly job for shard {agent[:2].upper()}{n:05d} runs at {n % 24}:00"
                    r = await call("remember", "remember", {"content": content})
                    if r:
                        with tally.lock:
                            tally.kept[r["id"]] = content
                elif roll < 0.60:
                    fact = SHARED[int(time.time() * 2) % len(SHARED)]  # everyone says the same fact at the same moment
                    r = await call("remember shared", "remember", {"content": fact})
                    if r:
                        with tally.lock:
                            tally.shared_by.setdefault(fact, set()).add(agent)
                elif roll < 0.92:
                    await call("recall", "recall", {"query": rng.choice(["nightly job shard", "who owns billing", "deploy-search"])})
                else:
                    with tally.lock:
                        mine = [i for i, c in tally.kept.items() if c.startswith(f"{agent} note")]
                    if mine:
                        victim = rng.choice(mine)
                        r = await call("forget", "forget", {"id": victim})
                        if r and r["forgotten"] == [victim]:
                            with tally.lock:
                                tally.kept.pop(victim, None)
                                tally.forgotten.add(victim)


def cli_loop(data_dir: Path, deadline: float, tally: Tally) -> None:
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(data_dir)}
    n = 0
    while time.monotonic() < deadline:
        n += 1
        content = f"cli note {n}: the report for week {n:04d} is archived in bucket reports-{n:04d}"
        t = time.perf_counter()
        out = subprocess.run([EXE, "remember", content, "--json", "--user", "stress", "--project", "stress", "--agent", "cli"],
                             capture_output=True, text=True, env=env, timeout=CALL_TIMEOUT)
        tally.record("cli remember", time.perf_counter() - t)
        if out.returncode != 0:
            tally.errors.append(f"cli: {out.stderr.strip()}")
            continue
        r = json.loads(out.stdout)
        with tally.lock:
            tally.kept[r["id"]] = content


def run(seconds: float, data_dir: Path) -> dict:
    """Run the load and check the store; return the figures (see the module docstring)."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    cli = threading.Thread(target=cli_loop, args=(data_dir, deadline, tally))
    start = time.perf_counter()
    cli.start()

    async def agents() -> None:
        async with anyio.create_task_group() as group:
            for i, agent in enumerate(AGENTS):
                group.start_soon(agent_loop, agent, data_dir, deadline, tally, i)

    anyio.run(agents)
    cli.join()
    elapsed = time.perf_counter() - start

    with SyncMemory(user_id="stress", project="stress", agent_id="check", data_dir=data_dir) as memory:
        stored = memory.get_all(limit=1_000_000)
    by_content = Counter(m["content"] for m in stored)
    ids = {m["id"] for m in stored}
    lost = [i for i in tally.kept if i not in ids]
    resurrected = [i for i in tally.forgotten if i in ids]
    duplicates = {c: n for c, n in by_content.items() if n > 1}
    shared_ok = all(
        by_content.get(fact) == 1 and set(next(m["agents"] for m in stored if m["content"] == fact)) >= agents_
        for fact, agents_ in tally.shared_by.items()
    )
    return {
        "seconds": round(elapsed, 1), "calls": sum(tally.calls.values()), "by_kind": dict(tally.calls),
        "calls_per_s": round(sum(tally.calls.values()) / elapsed, 1), "p50_ms": round(pct(tally.latency, 0.5), 1),
        "p95_ms": round(pct(tally.latency, 0.95), 1), "p99_ms": round(pct(tally.latency, 0.99), 1),
        "errors": tally.errors, "acknowledged_kept": len(tally.kept), "forgotten": len(tally.forgotten),
        "lost": lost, "resurrected": resurrected, "duplicates": duplicates,
        "shared_facts": len(tally.shared_by), "shared_merged_once_with_all_agents": shared_ok, "stored": len(stored),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    r = run(args.seconds, Path(tempfile.mkdtemp(prefix="headroom-stress-")) / "store")
    lines = [
        f"{len(AGENTS)} stdio servers + a CLI loop on one data dir for {r['seconds']} s ({os.cpu_count()} cores).", "",
        "| calls | calls/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | kept facts | forgotten | lost | resurrected | duplicates | shared facts merged once |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['calls']} | {r['calls_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {len(r['errors'])} | "
        f"{r['acknowledged_kept']} | {r['forgotten']} | {len(r['lost'])} | {len(r['resurrected'])} | {len(r['duplicates'])} | "
        f"{r['shared_facts']} {'yes' if r['shared_merged_once_with_all_agents'] else 'NO'} |", "",
        "Calls by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(r["by_kind"].items())),
    ]
    report = "\n".join(lines)
    print(report)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "stress.md").write_text(report + "\n")
    ok = not (r["errors"] or r["lost"] or r["resurrected"] or r["duplicates"]) and r["shared_merged_once_with_all_agents"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
