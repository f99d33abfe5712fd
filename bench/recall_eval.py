"""Recall quality on coding-memory sets written blind: R@1, R@5, MRR, "nothing relevant", isolation.

    .venv/bin/python bench/recall_eval.py                       # every set in bench/data/recall_*/
    .venv/bin/python bench/recall_eval.py bench/data/recall_blind_dev --errors
    .venv/bin/python bench/recall_eval.py --mode dense          # rank by cosine alone, no cut-off

A set is a directory with ``memories.jsonl`` ({id, content, scope, project}) and
``questions.jsonl`` ({query, project, answers: [memory ids], kind}); a question with no
answers is unanswerable from its project and must get an empty result. Every memory is
stored with ``MemoryStore.remember`` (dedup on, as an agent would) in a fresh data dir, and
each question is a ``recall`` made from its project, so visibility, floors and the
calibrated cut-off all count. A merged memory answers for every memory merged into it.

--queries DIR asks, in place of each question's text, the query an agent wrote for it
(``DIR/<set>.jsonl``: {i, query} in question order). ``bench/data/agent_queries/`` holds
the queries helper sessions wrote as the calling agent, shown only the questions and the
tool's description (``current``: the one before 2026-12-02; ``guided``: asking for the
expected fact and its keywords, as shipped), to measure what the description's wording is
worth. They are asked as the MCP tool asks (``asked_by="agent"``: ``ranking.AGENT``).

--memories DIR stores, in place of each memory's text, the content an agent wrote for it
(``DIR/<set>.jsonl``: {id, content}), to measure what ``remember``'s description is worth.

--errors prints every question whose answer is not first, and every unanswerable question
that got a result. Only run it on a tuning set: a set whose errors were read is no longer
unseen (see README, Quality).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_mcp.store import ranking  # noqa: E402
from headroom_mcp.store.embedder import embedder_from_env  # noqa: E402
from headroom_mcp.store.memory_store import MemoryStore  # noqa: E402
from headroom_mcp.store.scopes import Context  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
USER = "dev"


def load(directory: Path) -> tuple[list[dict], list[dict]]:
    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (directory / name).read_text().splitlines() if line.strip()]

    return rows("memories.jsonl"), rows("questions.jsonl")


def context(project: str) -> Context:
    return Context(user_id=USER, project=project, agent_id="bench")


def build(store: MemoryStore, memories: list[dict]) -> dict[str, str]:
    """Remember every memory; return set id -> store id (merged memories share one)."""
    ids = {}
    for m in memories:
        result = store.remember(context(m.get("project") or ""), m["content"], scope=m["scope"])
        ids[m["id"]] = result["id"]
    return ids


def rescored(cached: list[tuple[dict, tuple]], weights: ranking.Weights, limit: int = 10) -> list[tuple[dict, list[dict], float]]:
    """Questions answered from cached candidates under other ``weights`` (for fusion_sweep.py)."""
    out = []
    for q, (records, dense, lexical) in cached:
        fused = ranking.gated(ranking.fuse(dense, lexical, {}, {}, weights), weights)[:limit]
        out.append((q, [{"id": s.id, "content": records[s.id], "score": s.score} for s in fused], 0.0))
    return out


def ask(store: MemoryStore, questions: list[dict], mode: str, limit: int = 10) -> list[tuple[dict, list[dict], float]]:
    out = []
    for q in questions:
        ctx = context(q["project"])
        t = time.perf_counter()
        if mode == "dense":
            records, dense, _ = store.candidates(q["query"], store.visibility(ctx), 50)
            ranked = sorted(dense, key=dense.get, reverse=True)[:limit]
            results = [{"id": i, "content": records[i].content, "score": round(dense[i], 4), "project": records[i].project,
                        "scope": records[i].scope} for i in ranked]
        else:
            results = store.recall(ctx, q["query"], limit=limit, asked_by=q.get("asked_by", "prompt"))
        out.append((q, results, (time.perf_counter() - t) * 1000))
    return out


@dataclasses.dataclass
class Summary:
    answerable: int = 0
    r1: float = 0.0
    r5: float = 0.0
    mrr: float = 0.0
    unanswerable: int = 0
    empty: float = 0.0
    leaks: int = 0
    p50_ms: float = 0.0


def score(asked: list[tuple[dict, list[dict], float]], ids: dict[str, str], memories: dict[str, dict]) -> tuple[Summary, list[str]]:
    s, errors = Summary(), []
    ranks, empties = [], []
    by_kind: dict[str, list[int]] = defaultdict(list)
    for q, results, _ in asked:
        got = [r["id"] for r in results]
        store_to_set = defaultdict(list)
        for set_id, store_id in ids.items():
            store_to_set[store_id].append(set_id)
        for r in results:  # isolation: nothing from another project may come back
            for set_id in store_to_set.get(r["id"], []):
                m = memories[set_id]
                if m["scope"] == "project" and m["project"] != q["project"]:
                    s.leaks += 1
        if q["answers"]:
            wanted = {ids[a] for a in q["answers"]}
            rank = next((n for n, i in enumerate(got, 1) if i in wanted), 0)
            ranks.append(rank)
            by_kind[q.get("kind", "?")].append(rank)
            if rank != 1:
                shown = "\n".join(f"      {r['score']:.3f} {'*' if r['id'] in wanted else ' '} {r['content']}" for r in results[:5])
                answer = " | ".join(memories[a]["content"] for a in q["answers"])
                errors.append(f"[{q.get('kind')}] rank {rank or '-'}: {q['query']!r} (from {q['project']})\n   answer: {answer}\n{shown}")
        else:
            empties.append(not results)
            if results:
                shown = "\n".join(f"      {r['score']:.3f} {r['content']}" for r in results[:3])
                errors.append(f"[{q.get('kind')}] unanswerable got {len(results)}: {q['query']!r} (from {q['project']})\n{shown}")
    s.answerable, s.unanswerable = len(ranks), len(empties)
    s.r1 = sum(r == 1 for r in ranks) / max(1, len(ranks))
    s.r5 = sum(1 <= r <= 5 for r in ranks) / max(1, len(ranks))
    s.mrr = sum(1 / r for r in ranks if r) / max(1, len(ranks))
    s.empty = sum(empties) / max(1, len(empties))
    s.p50_ms = statistics.median(ms for *_, ms in asked)
    kinds = [f"{k}: R@1 {sum(r == 1 for r in v) / len(v):.2f} R@5 {sum(1 <= r <= 5 for r in v) / len(v):.2f} ({len(v)})" for k, v in sorted(by_kind.items())]
    return s, errors + ["by kind: " + "; ".join(kinds)]


def agent_queries(questions: list[dict], path: Path) -> list[dict]:
    """``questions`` asked with the agent's own query for each (see --queries)."""
    written = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if [w["i"] for w in written] != list(range(len(questions))):
        raise SystemExit(f"{path}: one query per question, in order ({len(questions)}), is needed")
    return [{**q, "query": w["query"], "asked_by": "agent"} for q, w in zip(questions, written)]


def agent_memories(memories: list[dict], path: Path) -> list[dict]:
    """``memories`` with the agent's own wording of each (see --memories)."""
    written = {w["id"]: w["content"] for w in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}
    if set(written) != {m["id"] for m in memories}:
        raise SystemExit(f"{path}: one content per memory id is needed")
    return [{**m, "content": written[m["id"]]} for m in memories]


def evaluate(directory: Path, mode: str, embedder, queries: Path | None = None,
             wordings: Path | None = None) -> tuple[Summary, list[str]]:
    memories, questions = load(directory)
    if wordings:
        memories = agent_memories(memories, wordings / f"{directory.name}.jsonl")
    if queries:
        questions = agent_queries(questions, queries / f"{directory.name}.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore.open(embedder, Path(tmp))
        ids = build(store, memories)
        asked = ask(store, questions, mode)
        del store
    return score(asked, ids, {m["id"]: m for m in memories})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--mode", choices=("shipped", "dense"), default="shipped")
    parser.add_argument("--queries", type=Path, help="ask each question as DIR/<set>.jsonl's query for it (an agent's wording)")
    parser.add_argument("--memories", type=Path, help="store each memory as DIR/<set>.jsonl's content for it (an agent's wording)")
    parser.add_argument("--errors", action="store_true", help="print every wrong decision (tuning sets only)")
    args = parser.parse_args()
    sets = args.sets or sorted(p for p in DATA.glob("recall_*") if p.is_dir())
    embedder = embedder_from_env()
    print(f"mode {args.mode}, embedder {embedder.model_id}, weights {dataclasses.asdict(ranking.DEFAULT)}, "
          f"queries {args.queries or 'as written in the set'}, memories {args.memories or 'as written in the set'}\n")
    print("| set | answerable | R@1 | R@5 | MRR | unanswerable | → nothing | other-project results | recall p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    details = []
    for directory in sets:
        s, errors = evaluate(directory, args.mode, embedder, args.queries, args.memories)
        print(f"| {directory.name} | {s.answerable} | {s.r1:.3f} | {s.r5:.3f} | {s.mrr:.3f} | {s.unanswerable} | {s.empty:.2f} | {s.leaks} | {s.p50_ms:.1f} |")
        details.append((directory.name, errors))
    for name, errors in details:
        print(f"\n{name}: {errors[-1]}")
        if args.errors:
            print("\n".join(f"\n{e}" for e in errors[:-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
