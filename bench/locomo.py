"""Recall quality on LoCoMo: R@5 and R@10 of the store's own recall.

    .venv/bin/python bench/locomo.py                      # hybrid recall, all ten conversations
    .venv/bin/python bench/locomo.py --mode dense         # cosine only (lexical weight 0)
    .venv/bin/python bench/locomo.py --sweep              # tune the fusion weights
    .venv/bin/python bench/locomo.py --bm25 1.2 0.75      # try other BM25 parameters
    .venv/bin/python bench/locomo.py --lexical 1.0 3.0    # try another lexical weight and exponent
    .venv/bin/python bench/locomo.py --dedup              # turns stored one by one with remember: merges counted
    .venv/bin/python bench/locomo.py --queries bench/data/agent_queries/guided  # as an agent phrased each question
    .venv/bin/python bench/locomo.py --write              # also write bench/results/locomo.md

Protocol (../shared/bench/README.md): per conversation a fresh store; every dialogue turn
is one memory with content "<speaker>: <text>" (dia_id and session date kept as metadata);
each question of category 1-4 that has evidence (1,536) is a recall of the top 10, a hit at k when any evidence
dia_id is among the first k. Conversations 26, 30, 41, 42 and 43 are the tuning split,
44, 47, 48, 49 and 50 the held-out split: weights are chosen on the first and reported on
both. Recall goes through ``MemoryStore.recall``, floors included, so a relevant turn
scored below the noise floor counts as a miss.

--queries DIR asks each question as the calling agent wrote it (``DIR/locomo_tuning.jsonl``
and ``DIR/locomo_held-out.jsonl``: {i, query}, in the split's question order; see
``bench/data/agent_queries/README.md``).

--sweep caches each question's candidates (cosine and BM25) once and re-scores them under
a grid of ``ranking.Weights``, printing the best settings on the tuning split with their
held-out figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_mcp.store import lexical, ranking  # noqa: E402
from headroom_mcp.store.embedder import embedder_from_env  # noqa: E402
from headroom_mcp.store.memory_store import MemoryStore  # noqa: E402
from headroom_mcp.store.records import MemoryRecord, content_hash, now  # noqa: E402
from headroom_mcp.store.scopes import Context  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "locomo"
TUNING = ("26", "30", "41", "42", "43")
HELD_OUT = ("44", "47", "48", "49", "50")
RESULTS = Path(__file__).resolve().parent / "results" / "locomo.md"
CTX = Context(user_id="bench")


@dataclasses.dataclass
class Question:
    conversation: str
    text: str
    evidence: set[str]
    category: int
    candidates: tuple = ()  # (records, dense, lexical) when sweeping


def turns(conversation: dict) -> list[tuple[str, str, str]]:
    """(dia_id, content, session date) for every turn, in order."""
    out = []
    for n in itertools.count(1):
        session = conversation.get(f"session_{n}")
        if session is None:
            break
        date = conversation.get(f"session_{n}_date_time", "")
        out.extend((t["dia_id"].strip(), f"{t['speaker']}: {t['text']}", date) for t in session)
    return out


def ingest(store: MemoryStore, conv_id: str, conversation: dict) -> dict[str, set[str]]:
    """Store every turn as it is; return memory id -> {dia_id}."""
    t = now()
    records, by_id = [], {}
    for dia_id, content, date in turns(conversation):
        rid = f"mem_locomo_{conv_id}_{dia_id.replace(':', '_')}"
        records.append(MemoryRecord(id=rid, content=content, scope="user", user_id=CTX.user_id, agents=["locomo"],
                                    created_by="locomo", created_at=t, updated_at=t,
                                    extra={"dia_id": dia_id, "date": date}))
        by_id[rid] = {dia_id}
    store.import_records(records, dedup=False)
    return by_id


def ingest_remembering(store: MemoryStore, conversation: dict, merges: dict[str, int]) -> dict[str, set[str]]:
    """Store every turn with ``remember`` (dedup on), as an agent would, one at a time.

    Returns memory id -> the dia_ids it holds (a merged turn counts for the memory it was
    merged into) and counts in ``merges``: turns merged, merged across speakers, and merged
    turns whose words were not kept (neither the same text nor a restatement).
    """
    by_id: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    for dia_id, content, _ in turns(conversation):
        result = store.remember(CTX, content, scope="user")
        by_id.setdefault(result["id"], set()).add(dia_id)
        if result["status"] != "merged":
            first[result["id"]] = content
            continue
        merges["merged"] += 1
        kept = first[result["id"]]
        merges["across speakers"] += kept.split(":", 1)[0] != content.split(":", 1)[0]
        merges["text lost"] += "restatement" not in result and content_hash(kept) != content_hash(content)
    return by_id


def questions(conv_id: str, conversation: dict) -> list[Question]:
    return [
        Question(conv_id, q["question"], {e.strip() for e in q.get("evidence", []) for e in e.split(";")}, q["category"])
        for q in conversation["qa"] if q.get("category") in (1, 2, 3, 4) and q.get("evidence")
    ]


def agent_queries(directory: Path) -> dict[str, list[str]]:
    """Conversation -> the agent's query for each of its questions, in order (see --queries)."""
    out: dict[str, list[str]] = {}
    for split, conv_ids in (("tuning", TUNING), ("held-out", HELD_OUT)):
        path = directory / f"locomo_{split}.jsonl"
        if not path.exists():
            continue
        written = [json.loads(line)["query"] for line in path.read_text().splitlines() if line.strip()]
        for conv_id in conv_ids:
            asked = len(questions(conv_id, json.loads((DATA / f"{conv_id}.json").read_text())))
            out[conv_id], written = written[:asked], written[asked:]
            if len(out[conv_id]) != asked:
                raise SystemExit(f"{path}: fewer queries than the {split} split's questions")
        if written:
            raise SystemExit(f"{path}: more queries than the {split} split's questions")
    return out


def recall_at(ranked: list[str], by_id: dict[str, set[str]], evidence: set[str], k: int) -> bool:
    return any(by_id.get(i, set()) & evidence for i in ranked[:k])


def summarise(rows: list[tuple[str, bool, bool]]) -> dict[str, tuple[float, float, int]]:
    """Split name -> (R@5, R@10, questions) from (conversation, hit@5, hit@10) rows."""
    out = {}
    for name, convs in (("tuning", TUNING), ("held-out", HELD_OUT), ("all", TUNING + HELD_OUT)):
        sel = [(h5, h10) for c, h5, h10 in rows if c in convs]
        if sel:
            out[name] = (sum(h5 for h5, _ in sel) / len(sel), sum(h10 for _, h10 in sel) / len(sel), len(sel))
    return out


def run(conv_ids: list[str], weights: ranking.Weights, sweep: bool, dedup: bool = False,
        queries: dict[str, list[str]] | None = None) -> tuple[list, list[Question], dict]:
    embedder = embedder_from_env()  # honours HEADROOM_MCP_EMBED_MODEL_DIR / _URL
    rows, asked = [], []
    timing: dict = {"ingest_s": 0.0, "turns": 0, "recall_ms": [], "merges": {"merged": 0, "across speakers": 0, "text lost": 0}}
    for conv_id in conv_ids:
        conversation = json.loads((DATA / f"{conv_id}.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            store = MemoryStore.open(embedder, Path(tmp))
            store.weights = weights
            t = time.perf_counter()
            by_id = ingest_remembering(store, conversation, timing["merges"]) if dedup else ingest(store, conv_id, conversation)
            timing["ingest_s"] += time.perf_counter() - t
            timing["turns"] += sum(map(len, by_id.values()))
            agent_texts = (queries or {}).get(conv_id)
            asked_by = "agent" if agent_texts else "prompt"
            for n, q in enumerate(questions(conv_id, conversation)):
                if agent_texts:
                    q = dataclasses.replace(q, text=agent_texts[n])
                t = time.perf_counter()
                ranked = [m["id"] for m in store.recall(CTX, q.text, limit=10, asked_by=asked_by)]
                timing["recall_ms"].append((time.perf_counter() - t) * 1000)
                rows.append((conv_id, recall_at(ranked, by_id, q.evidence, 5), recall_at(ranked, by_id, q.evidence, 10)))
                if sweep:
                    records, dense, lexical = store.candidates(q.text, store.visibility(CTX), 100)
                    q.candidates = ({i: by_id[i] for i in dense}, dense, lexical)
                asked.append(q)
            del store
        print(f"  conversation {conv_id}: {sum(map(len, by_id.values()))} turns in {len(by_id)} memories", file=sys.stderr)
    return rows, asked, timing


def rescore(asked: list[Question], weights: ranking.Weights) -> list[tuple[str, bool, bool]]:
    rows = []
    for q in asked:
        dia, dense, lexical = q.candidates
        fused = ranking.gated(ranking.fuse(dense, lexical, {}, {}, weights), weights)
        ranked = [dia[s.id] for s in fused[:10]]
        rows.append((q.conversation, any(d & q.evidence for d in ranked[:5]), any(d & q.evidence for d in ranked)))
    return rows


def sweep(asked: list[Question]) -> list[tuple[ranking.Weights, dict]]:
    """Every grid point's scores, best tuning-split R@5 + R@10 first."""
    grid = []
    for lex, exponent, floor, dense_floor in itertools.product(
        (0.0, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0), (1.0, 1.5, 2.0, 2.5), (0.0, 0.3), (0.0, 0.35),
    ):
        w = dataclasses.replace(ranking.DEFAULT, lexical=lex, lexical_exponent=exponent, floor=floor, dense_only_floor=dense_floor)
        grid.append((w, summarise(rescore(asked, w))))
    grid.sort(key=lambda g: -(g[1]["tuning"][0] + g[1]["tuning"][1]))
    return grid


def table(summary: dict, label: str) -> str:
    lines = [f"| {label} | split | questions | R@5 | R@10 |", "|---|---|---|---|---|"]
    for split, (r5, r10, n) in summary.items():
        lines.append(f"| | {split} | {n} | {r5:.3f} | {r10:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", nargs="*", default=list(TUNING + HELD_OUT))
    parser.add_argument("--mode", choices=("hybrid", "dense", "lexical"), default="hybrid")
    parser.add_argument("--bm25", nargs=2, type=float, metavar=("K1", "B"), help="BM25 parameters to try instead of the index's")
    parser.add_argument("--sweep", action="store_true", help="re-score cached candidates over a grid of weights")
    parser.add_argument("--dedup", action="store_true", help="store turns one by one with remember (dedup on) and count the merges")
    parser.add_argument("--lexical", nargs=2, type=float, metavar=("WEIGHT", "EXPONENT"), help="lexical weight and exponent to try")
    parser.add_argument("--queries", type=Path, help="ask each question as DIR/locomo_<split>.jsonl's query for it (an agent's wording)")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    args = parser.parse_args()

    if args.bm25:
        lexical.K1, lexical.B = args.bm25
    weights = ranking.DEFAULT
    if args.lexical:
        weights = dataclasses.replace(weights, lexical=args.lexical[0], lexical_exponent=args.lexical[1])
    if args.mode == "dense":
        weights = dataclasses.replace(weights, lexical=0.0)
    elif args.mode == "lexical":  # rank by BM25 alone: cosine only breaks ties
        weights = dataclasses.replace(weights, lexical=100.0, dense_only_floor=2.0, floor=0.0)
    rows, asked, timing = run(args.conversations, weights, args.sweep, args.dedup, agent_queries(args.queries) if args.queries else None)
    summary = summarise(rows)
    lat = sorted(timing["recall_ms"])
    report = [
        f"LoCoMo retrieval, mode {args.mode}, BM25 k1={lexical.K1} b={lexical.B}, weights {dataclasses.asdict(weights)}, "
        f"queries {args.queries or 'as in the dataset'}", "",
        table(summary, args.mode), "",
        f"ingest: {timing['turns']} turns in {timing['ingest_s']:.1f}s ({timing['turns'] / timing['ingest_s']:.0f} turns/s); "
        f"recall latency p50 {statistics.median(lat):.1f} ms, p95 {lat[int(len(lat) * 0.95)]:.1f} ms over {len(lat)} questions",
    ]
    if args.dedup:
        m = timing["merges"]
        report.append(f"dedup: {m['merged']} turns merged, {m['across speakers']} across speakers, {m['text lost']} merged turns' words not kept")
    if args.sweep:
        report += ["", "Sweep (best 10 on the tuning split):", "",
                   "| lexical | exponent | floor | dense-only floor | tuning R@5 | tuning R@10 | held-out R@5 | held-out R@10 |",
                   "|---|---|---|---|---|---|---|---|"]
        for w, s in sweep(asked)[:10]:
            report.append(f"| {w.lexical} | {w.lexical_exponent} | {w.floor} | {w.dense_only_floor} | {s['tuning'][0]:.3f} | {s['tuning'][1]:.3f} | "
                          f"{s.get('held-out', (0, 0))[0]:.3f} | {s.get('held-out', (0, 0))[1]:.3f} |")
    print("\n".join(report))
    if args.write:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
