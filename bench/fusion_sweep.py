"""Choose the fusion weights on tuning data only: the blind coding dev split and LoCoMo's tuning split.

    .venv/bin/python bench/fusion_sweep.py [--quick] [--queries bench/data/agent_queries/guided] [--gates]
    .venv/bin/python bench/fusion_sweep.py --prompt

Caches every question's candidates once (cosine and lexical coverage), then re-scores them
under a grid of ``ranking.Weights`` and prints, for each setting, the coding dev split's
R@1 / R@5 / MRR and LoCoMo tuning R@5 / R@10 next to dense cosine alone. Held-out and test
splits are not read here: they are for reporting, not for choosing. --queries asks both
tuning sets' questions as the calling agent wrote them (see recall_eval.py).

--prompt sweeps prompt-time recall instead (the prompt hook and ``with_memory``: a person's words,
``ranking.DEFAULT``, at most ``injection.PROMPT_LIMIT`` results, each at least a floor): for
each floor, how often the answer is among what is injected, how many unanswerable prompts get
nothing, and how many wrong memories a prompt injects on average. Both coding tuning splits.

--gates keeps the weights (``ranking.AGENT`` with --queries, else ``ranking.DEFAULT``) and
prints, for each gate (``Weights.gate``), how many unanswerable questions come back empty and
what R@5 costs. The gate was chosen after the first blind test split had been reported, so
that split is tuning data for it and is read too; ``recall_blind_final`` is its test.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import locomo  # noqa: E402
import recall_eval  # noqa: E402

from headroom_mcp import injection  # noqa: E402
from headroom_mcp.store import ranking  # noqa: E402
from headroom_mcp.store.embedder import embedder_from_env  # noqa: E402
from headroom_mcp.store.memory_store import MemoryStore  # noqa: E402

CODING_DEV = Path(__file__).resolve().parent / "data" / "recall_blind_dev"
#: Tuning data for the gate only (see --gates).
CODING_SEEN_TEST = CODING_DEV.with_name("recall_blind_test")
GATES = [round(0.40 + 0.025 * n, 3) for n in range(13)]
PROMPT_FLOORS = [round(0.30 + 0.05 * n, 2) for n in range(9)]


def coding_cache(embedder, queries: Path | None, directory: Path = CODING_DEV) -> tuple[list, dict, dict]:
    memories, questions = recall_eval.load(directory)
    if queries:
        questions = recall_eval.agent_queries(questions, queries / f"{directory.name}.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore.open(embedder, Path(tmp))
        ids = recall_eval.build(store, memories)
        cached = []
        for q in questions:
            records, dense, lexical = store.candidates(q["query"], store.visibility(recall_eval.context(q["project"])), 100)
            cached.append((q, ({i: r.content for i, r in records.items()}, dense, lexical)))
        del store
    return cached, ids, {m["id"]: m for m in memories}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two LoCoMo tuning conversations instead of five")
    parser.add_argument("--queries", type=Path, help="ask the questions as DIR's agent-written queries")
    parser.add_argument("--gates", action="store_true", help="sweep the gate of the shipped weights instead")
    parser.add_argument("--prompt", action="store_true", help="sweep prompt-time recall's floor instead")
    args = parser.parse_args()
    embedder = embedder_from_env()
    if args.prompt:
        return prompt_floors([coding_cache(embedder, None, d) for d in (CODING_DEV, CODING_SEEN_TEST)])
    cached, ids, by_id = coding_cache(embedder, args.queries)
    conversations = list(locomo.TUNING[:2] if args.quick else locomo.TUNING)
    _, asked, _ = locomo.run(conversations, ranking.DEFAULT, sweep=True, queries=locomo.agent_queries(args.queries) if args.queries else None)
    if args.gates:
        seen = coding_cache(embedder, args.queries, CODING_SEEN_TEST)
        return gates(ranking.AGENT if args.queries else ranking.DEFAULT, [(cached, ids, by_id), seen], asked)
    grid = [ranking.Weights(lexical=0.0, floor=0.0, dense_only_floor=0.0, importance=0.0, recency=0.0)]
    for lex, exponent, trust in itertools.product((0.2, 0.3, 0.5, 0.75, 1.0), (1.0, 1.5, 2.0), (0.0, 0.5, 1.0, 2.0)):
        grid.append(dataclasses.replace(ranking.DEFAULT, lexical=lex, lexical_exponent=exponent, lexical_trust=trust,
                                        floor=0.0, dense_only_floor=0.0, importance=0.0, recency=0.0))
    rows = []
    for w in grid:
        s, _ = recall_eval.score(recall_eval.rescored(cached, w), ids, by_id)
        lo = locomo.summarise(locomo.rescore(asked, w))["tuning"]
        rows.append((w, s, lo))
    rows.sort(key=lambda r: -(r[1].r1 + r[1].r5 + r[2][0] + r[2][1]))
    print("| lexical | exponent | trust | coding R@1 | coding R@5 | coding MRR | LoCoMo R@5 | LoCoMo R@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for w, s, lo in rows:
        print(f"| {w.lexical} | {w.lexical_exponent} | {w.lexical_trust} | {s.r1:.3f} | {s.r5:.3f} | {s.mrr:.3f} | {lo[0]:.3f} | {lo[1]:.3f} |")
    return 0


def gates(weights: ranking.Weights, coding: list[tuple[list, dict, dict]], asked: list) -> int:
    """The gate's trade-off on every tuning split: unanswerable questions emptied, R@5 kept."""
    names = [CODING_DEV.name, CODING_SEEN_TEST.name]
    print("| gate | " + " | ".join(f"{n} → nothing | {n} R@1 / R@5" for n in names) + " | LoCoMo R@5 / R@10 |")
    print("|---|" + "---|---|" * len(names) + "---|")
    for gate in [0.0, *GATES]:
        w = dataclasses.replace(weights, gate=gate)
        cells = []
        for cached, ids, by_id in coding:
            s, _ = recall_eval.score(recall_eval.rescored(cached, w), ids, by_id)
            cells += [f"{s.empty:.2f}", f"{s.r1:.3f} / {s.r5:.3f}"]
        lo = locomo.summarise(locomo.rescore(asked, w))["tuning"]
        print(f"| {gate} | " + " | ".join(cells) + f" | {lo[0]:.3f} / {lo[1]:.3f} |")
    return 0


def prompt_floors(coding: list[tuple[list, dict, dict]]) -> int:
    """What prompt-time recall injects at each floor (see --prompt), on both coding tuning splits."""
    names = [CODING_DEV.name, CODING_SEEN_TEST.name]
    print("| floor | " + " | ".join(f"{n} answer injected | {n} unanswerable → nothing | {n} wrong per prompt" for n in names) + " |")
    print("|---|" + "---|---|---|" * len(names))
    for floor in PROMPT_FLOORS:
        w = dataclasses.replace(ranking.DEFAULT, floor=floor)
        cells = []
        for cached, ids, by_id in coding:
            asked = recall_eval.rescored(cached, w, injection.PROMPT_LIMIT)
            s, _ = recall_eval.score(asked, ids, by_id)
            wrong = sum(r["id"] not in {ids[a] for a in q["answers"]} for q, results, _ in asked for r in results)
            cells += [f"{s.r5:.3f}", f"{s.empty:.2f}", f"{wrong / len(asked):.2f}"]
        print(f"| {floor} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
