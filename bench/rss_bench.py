"""Memory of the daemon and the stdio server: RSS (and Pss) at 0, 1k and 10k memories.

    .venv/bin/python bench/rss_bench.py [--sizes 0,1000,10000] [--previous DIR]

For each size a real daemon is started on a fresh data dir (``SyncMemory``, as a client
does), filled by bulk import with store_bench's corpus, then sent a burst of 200 saves and
200 searches. The daemon's VmRSS and Pss are read from /proc at three points: right after
the burst; once it has been quiet for a housekeeping tick (when it hands freed memory back
to the OS); and after a restart on the same data dir, the way a store is usually opened
(the daemon exits when idle, and the next session starts a new one), after 20 searches and
20 saves. Then the stdio ``headroom-mcp serve`` process, after ``initialize``,
``tools/list`` and one ``recall`` answered through the daemon.

``--previous DIR``: also measure the package in DIR (a checkout of an earlier commit, e.g.
``git archive <commit> headroom_mcp | tar -x -C DIR``), first, in the same window; its
daemons and servers run with ``PYTHONPATH=DIR``. Writes bench/results/rss.md as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from store_bench import corpus  # noqa: E402  (also puts this checkout first on sys.path)

from headroom_mcp import SyncMemory  # noqa: E402
from headroom_mcp.store.records import MemoryRecord, new_id, now  # noqa: E402

RESULTS = HERE / "results" / "rss.md"
#: Longer than the daemon's housekeeping tick (5 s) plus its quiet time before releasing memory.
SETTLE = 8.0
BURST = 200


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, Pss) of a process in MB; Pss is NaN where smaps_rollup is missing."""
    rss = pss = float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


def _memory(data_dir: Path) -> SyncMemory:
    return SyncMemory(user_id="bench", agent_id="bench", project="bench", data_dir=data_dir)


def _daemon_pid(memory: SyncMemory) -> int:
    return memory._backend.call("ping", {}, memory.context.to_mapping())["pid"]


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _calls(memory: SyncMemory, texts: list[str], n: int, rng: random.Random) -> None:
    for text in texts[:n]:
        memory.save(text)
    for query in rng.sample(texts, n):
        memory.search(" ".join(query.split()[:5]), limit=5)


def serve_mb(data_dir: Path) -> tuple[float, float]:
    """(VmRSS, Pss) of a stdio ``headroom-mcp serve`` that has answered one recall."""
    env = {**os.environ, "HEADROOM_MCP_DATA_DIR": str(data_dir), "HEADROOM_MCP_USER": "bench", "HEADROOM_MCP_PROJECT": "bench"}
    process = subprocess.Popen([sys.executable, "-m", "headroom_mcp", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=env, text=True)
    assert process.stdin is not None and process.stdout is not None

    def ask(n: int, method: str, params: dict) -> dict:
        process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}) + "\n")
        process.stdin.flush()
        while True:
            message = json.loads(process.stdout.readline())
            if message.get("id") == n:
                return message

    try:
        ask(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "rss-bench", "version": "1"}})
        process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        ask(2, "tools/list", {})
        answer = ask(3, "tools/call", {"name": "recall", "arguments": {"query": "which port does the api use"}})
        assert "result" in answer, answer
        return memory_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def run(size: int) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="headroom-rss-"))
    texts = corpus(size + BURST)
    fill, extra = texts[:size], texts[size:]
    rng = random.Random(3)
    row: dict[str, float] = {"size": size}
    with _memory(data_dir) as memory:
        memory.stats()  # starts the daemon and loads the model
        t = now()
        records = [MemoryRecord(id=new_id(), content=c, scope="user", user_id="bench", agents=["bench"],
                                created_by="bench", created_at=t, updated_at=t).to_dict() for c in fill]
        for i in range(0, len(records), 500):
            memory.import_records(records[i : i + 500], dedup=False)
        _calls(memory, extra, BURST, rng)
        pid = _daemon_pid(memory)
        row["burst"], row["burst_pss"] = memory_mb(pid)
        time.sleep(SETTLE)
        row["settled"], row["settled_pss"] = memory_mb(pid)
        _stop(pid)
    with _memory(data_dir) as memory:
        _calls(memory, fill + extra, 20, rng)
        pid = _daemon_pid(memory)
        time.sleep(SETTLE)
        row["reopened"], row["reopened_pss"] = memory_mb(pid)
        row["serve"], row["serve_pss"] = serve_mb(data_dir)
        _stop(pid)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,1000,10000")
    parser.add_argument("--previous", help="source tree of an earlier build to measure first")
    args = parser.parse_args()
    builds = ([("previous", str(Path(args.previous).resolve()))] if args.previous else []) + [("now", str(ROOT))]
    lines = [
        f"Machine: {os.cpu_count()} cores, shared. VmRSS / Pss in MB; a real daemon per row, filled by bulk import, "
        f"then {BURST} saves and {BURST} searches. Rerun: `.venv/bin/python bench/rss_bench.py"
        + (" --previous DIR`" if args.previous else "`") + " (about 15 minutes a build).",
        "",
        "| build | memories | daemon after burst | daemon settled | daemon reopened | stdio serve |",
        "|---|---|---|---|---|---|",
    ]
    for name, tree in builds:
        os.environ["PYTHONPATH"] = tree  # the daemons and servers this build starts
        for size in (int(n) for n in args.sizes.split(",")):
            r = run(size)
            cells = [f"{r[k]:.0f} / {r[k + '_pss']:.0f}" for k in ("burst", "settled", "reopened", "serve")]
            lines.append(f"| {name} | {size:,} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
