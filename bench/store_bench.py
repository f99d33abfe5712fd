"""Store speed and size: save/search latency at 1k and 10k memories, ingest rate, RSS.

    .venv/bin/python bench/store_bench.py [--sizes 1000,10000] [--samples 200]

Everything goes through the real path a client takes: ``SyncMemory`` talking to a daemon
on a fresh data dir (unix socket, one worker thread, embedded Chroma, bundled MiniLM).
The store is filled with LoCoMo dialogue turns plus generated coding-project facts, first
with ``import_records`` (bulk ingest rate), then timed one ``save`` and one ``search`` at a
time. Writes the table to bench/results/store.md as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from headroom_mcp import SyncMemory  # noqa: E402
from headroom_mcp.store.records import MemoryRecord, new_id, now  # noqa: E402

LOCOMO = HERE.parent.parent / "shared" / "bench" / "locomo"
SUBJECTS = ["the api", "the worker", "the billing service", "the frontend", "CI", "the cli", "the docs site", "the scheduler"]
VERBS = ["uses", "depends on", "is deployed with", "is tested with", "logs to", "reads config from", "is owned by"]
OBJECTS = ["postgres", "redis", "kafka", "uv", "pnpm", "vite", "pytest", "grafana", "team-{n}", "S3 bucket logs-{n}", "port {n}"]


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts: list[str] = []
    for path in sorted(LOCOMO.glob("*.json")):
        data = json.loads(path.read_text())
        for key, turns in data.items():
            if key.startswith("session_") and isinstance(turns, list):
                texts += [f"{t['speaker']}: {t['text']}" for t in turns]
    i = 0
    while len(texts) < n:
        o = rng.choice(OBJECTS).format(n=i)
        texts.append(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {o} (note {i})")
        i += 1
    rng.shuffle(texts)
    return texts[:n]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(size: int, samples: int) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="headroom-bench-"))
    texts = corpus(size + samples)
    fill, extra = texts[:size], texts[size:]
    with SyncMemory(user_id="bench", agent_id="bench", project="bench", data_dir=data_dir) as memory:
        memory.stats()  # start the daemon and load the model before timing
        t = now()
        records = [MemoryRecord(id=new_id(), content=c, scope="user", user_id="bench", agents=["bench"],
                                created_by="bench", created_at=t, updated_at=t).to_dict() for c in fill]
        start = time.perf_counter()
        for i in range(0, len(records), 500):
            memory.import_records(records[i : i + 500], dedup=False)
        ingest = size / (time.perf_counter() - start)
        save_ms, search_ms = [], []
        for text in extra:
            s = time.perf_counter()
            memory.save(text)
            save_ms.append((time.perf_counter() - s) * 1000)
        rng = random.Random(3)
        queries = [" ".join(rng.sample(q.split(), min(5, len(q.split())))) for q in rng.sample(fill, samples)]
        for query in queries:
            s = time.perf_counter()
            memory.search(query, limit=5)
            search_ms.append((time.perf_counter() - s) * 1000)
        pid = memory._backend.call("ping", {}, memory.context.to_mapping())["pid"]
        rss = rss_mb(pid)
        os.kill(pid, 15)
    return {"size": size, "ingest": ingest, "save_p50": statistics.median(save_ms), "save_p95": pct(save_ms, 0.95),
            "search_p50": statistics.median(search_ms), "search_p95": pct(search_ms, 0.95), "rss": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    rows = [run(int(n), args.samples) for n in args.sizes.split(",")]
    lines = [
        f"Machine: {os.cpu_count()} cores; {args.samples} timed calls per size, through SyncMemory → daemon.",
        "",
        "| memories | bulk ingest (memories/s) | save p50 (ms) | save p95 (ms) | search p50 (ms) | search p95 (ms) | daemon RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['size']:,} | {r['ingest']:.0f} | {r['save_p50']:.1f} | {r['save_p95']:.1f} | "
                     f"{r['search_p50']:.1f} | {r['search_p95']:.1f} | {r['rss']:.0f} |")
    table = "\n".join(lines)
    print(table)
    out = HERE / "results" / "store.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
