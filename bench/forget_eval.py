"""Forget by query on the blind coding sets: does it take the memory the question names, and only it?

    .venv/bin/python bench/forget_eval.py                       # every set, shipped rule
    .venv/bin/python bench/forget_eval.py bench/data/recall_blind_dev --sweep

Each question of a recall set (``recall_eval.py``) is used as a forget query from its project.
The shipped rule (``ranking.named_by``) splits the recall results into the memories taken and
the candidates only listed. Per question:

- exact: something was taken and all of it is among the question's answers;
- harmful: a memory that is not an answer was taken (a fact the user did not name is lost);
- declined: nothing taken (the user picks from the candidates instead);
- unanswerable questions must take nothing.

--sweep prints the same for a grid of (min score, gap): choose on a tuning split only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recall_eval import DATA, build, context, load  # noqa: E402

from headroom_mcp.store import ranking  # noqa: E402
from headroom_mcp.store.embedder import embedder_from_env  # noqa: E402
from headroom_mcp.store.memory_store import MemoryStore  # noqa: E402


def asked(directory: Path, embedder) -> list[tuple[set[str], list[dict]]]:
    """(store ids of the answers, recall results) for every question of a set."""
    memories, questions = load(directory)
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore.open(embedder, Path(tmp))
        ids = build(store, memories)
        out = [({ids[a] for a in q["answers"]}, store.recall(context(q["project"]), q["query"], limit=11)) for q in questions]  # as forget asks
        del store
    return out


def tally(rows: list[tuple[set[str], list[dict]]], min_score: float, gap: float) -> dict[str, float]:
    answerable = [(w, r) for w, r in rows if w]
    unanswerable = [r for w, r in rows if not w]
    exact = harmful = 0
    for wanted, results in answerable:
        taken = {r["id"] for r in ranking.named_by(results, min_score, gap)[0]}
        exact += bool(taken) and taken <= wanted
        harmful += bool(taken - wanted)
    untouched = sum(not ranking.named_by(r, min_score, gap)[0] for r in unanswerable)
    n = max(1, len(answerable))
    return {"answerable": len(answerable), "exact": exact / n, "harmful": harmful / n, "declined": 1 - (exact + harmful) / n,
            "unanswerable": len(unanswerable), "untouched": untouched / max(1, len(unanswerable))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--sweep", action="store_true", help="a grid of rules (tuning sets only)")
    args = parser.parse_args()
    sets = args.sets or sorted(p for p in DATA.glob("recall_*") if p.is_dir())
    embedder = embedder_from_env()
    grid = ([(s / 100, g / 100) for s in range(35, 61, 5) for g in (0, 2, 4, 6, 8, 10, 15)] if args.sweep
            else [(ranking.FORGET_MIN_SCORE, ranking.FORGET_GAP)])
    print(f"embedder {embedder.model_id}\n")
    print("| set | min score | gap | answerable | exact | harmful | declined | unanswerable | nothing taken |")
    print("|---|---|---|---|---|---|---|---|---|")
    for directory in sets:
        rows = asked(directory, embedder)
        for min_score, gap in grid:
            t = tally(rows, min_score, gap)
            print(f"| {directory.name} | {min_score:.2f} | {gap:.2f} | {t['answerable']} | {t['exact']:.3f} | {t['harmful']:.3f} | "
                  f"{t['declined']:.3f} | {t['unanswerable']} | {t['untouched']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
