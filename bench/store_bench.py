"""Store speed and size: save/search latency at 1k and 10k memories, ingest rate, RSS; the search part alone.

    .venv/bin/python bench/store_bench.py [--sizes 1000,10000] [--samples 200]
    .venv/bin/python bench/store_bench.py --search-part 1000,10000,100000 [--chroma]

Everything goes through the real path a client takes: ``SyncMemory`` talking to a daemon
on a fresh data dir (unix socket, one worker thread, embedded Chroma, bundled MiniLM).
The store is filled with LoCoMo dialogue turns plus generated coding-project facts, first
with ``import_records`` (bulk ingest rate), then timed one ``save`` and one ``search`` at a
time. Writes the table to bench/results/store.md as well as stdout.

``--search-part`` times only the dense search recall makes: the vector index's top 50 under
a visibility mask (``VectorIndex.score(...).top``), over random unit vectors (the cost does
not depend on what they mean) spread over ``--users`` users (10), their projects and
sessions, queried as one of them. With ``--chroma`` the same records also go into a Chroma collection and its
filtered query (what recall asked before the index) is timed beside it. Prints its table.
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
from headroom_mcp.store.records import SCOPES, MemoryRecord, new_id, now  # noqa: E402
from headroom_mcp.store.scopes import Context, Visibility  # noqa: E402

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


def timed(call, samples: int) -> tuple[float, float]:
    """p50 and p95 (ms) of ``samples`` calls of ``call(i)``."""
    ms = []
    for i in range(samples):
        s = time.perf_counter()
        call(i)
        ms.append((time.perf_counter() - s) * 1000)
    return statistics.median(ms), pct(ms, 0.95)


def search_part(size: int, samples: int, chroma: bool, users: int, dim: int = 384, pool: int = 50) -> dict[str, float]:
    """The dense top ``pool`` alone: the vector index (and, with ``chroma``, Chroma's filtered query)."""
    import numpy as np

    from headroom_mcp.store.chroma import visible as chroma_filter
    from headroom_mcp.store.vectors import VectorIndex, Where

    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"user{u}" for u in range(users)]
    metas = [{"status": "active", "scope": SCOPES[n % 4], "user_id": names[n % users], "project": f"proj{n % 3}",  # no turn memories
              "session_id": f"s{n % 7}", "agent_id": "claude", "expires_at": 0.0} for n in range(size)]
    index = VectorIndex()
    for n in range(size):
        index.apply(f"m{n}", metas[n], vectors[n])
    vis = Visibility(Context(names[-1], project="proj1", session_id="s1", agent_id="claude"), now=now())
    queries = rng.standard_normal((samples, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    visible = sum(vis.matches(m) for m in metas)
    row: dict[str, float] = {"size": size, "visible": visible}
    row["index_p50"], row["index_p95"] = timed(lambda i: index.score(queries[i]).top(Where.visible(vis), pool), samples)
    if chroma:
        import chromadb

        client = chromadb.EphemeralClient()
        collection = client.create_collection(f"bench{size}", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        for start in range(0, size, 5000):
            collection.add(ids=[f"m{n}" for n in range(start, min(size, start + 5000))], embeddings=vectors[start : start + 5000],
                           metadatas=metas[start : start + 5000])
        where = chroma_filter(vis)
        row["chroma_p50"], row["chroma_p95"] = timed(
            lambda i: collection.query(query_embeddings=queries[i : i + 1], n_results=pool, where=where, include=["distances"]), samples)
        client.delete_collection(f"bench{size}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--search-part", metavar="SIZES", help="time only the dense search at these sizes")
    parser.add_argument("--chroma", action="store_true", help="with --search-part: time Chroma's filtered query too")
    parser.add_argument("--users", type=int, default=10, help="with --search-part: the users the memories are spread over")
    args = parser.parse_args()
    if args.search_part:
        print(f"Machine: {os.cpu_count()} cores; {args.samples} queries per size; top 50 of what one of {args.users} users may see.\n")
        print("| memories | visible to the caller | index top-k p50 (ms) | p95 (ms) |" + (" Chroma query p50 (ms) | p95 (ms) |" if args.chroma else ""))
        print("|---|---|---|---|" + ("---|---|" if args.chroma else ""))
        for n in args.search_part.split(","):
            r = search_part(int(n), args.samples, args.chroma, args.users)
            print(f"| {r['size']:,} | {r['visible']:,} | {r['index_p50']:.2f} | {r['index_p95']:.2f} |"
                  + (f" {r['chroma_p50']:.1f} | {r['chroma_p95']:.1f} |" if args.chroma else ""), flush=True)
        return 0
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
