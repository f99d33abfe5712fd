"""Precision and recall of the dedup decision on labelled pairs.

    .venv/bin/python bench/dedup_eval.py [bench/data/dedup_pairs.jsonl ...] [--errors]

Each line of a pairs file is {"a", "b", "label": "merge"|"distinct", "kind"}. A pair is
predicted "merge" when the store's own decision (``dedup.judge`` on the real embedder's
cosine) says so. Precision = correct merges / predicted merges; recall = correct merges /
labelled merges. Prints one table row per file, then a row per kind when --by-kind is set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_mcp.store.dedup import Facts, judge  # noqa: E402
from headroom_mcp.store.embedder import Embedder, embedder_from_env  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(pairs: list[dict], embedder: Embedder) -> list[tuple[dict, bool, float, str]]:
    vectors = embedder.embed([p["a"] for p in pairs] + [p["b"] for p in pairs])
    n = len(pairs)
    out = []
    for i, pair in enumerate(pairs):
        cosine = float(np.dot(vectors[i], vectors[n + i]))
        verdict = judge(Facts.of(pair["b"]), Facts.of(pair["a"]), cosine)
        out.append((pair, verdict.merge, cosine, verdict.reason))
    return out


def scores(rows) -> dict[str, float]:
    tp = sum(1 for p, m, *_ in rows if m and p["label"] == "merge")
    fp = sum(1 for p, m, *_ in rows if m and p["label"] != "merge")
    fn = sum(1 for p, m, *_ in rows if not m and p["label"] == "merge")
    return {
        "pairs": len(rows), "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0, "false merges": fp, "missed merges": fn,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--errors", action="store_true", help="print every wrong decision")
    parser.add_argument("--by-kind", action="store_true")
    args = parser.parse_args()
    files = args.files or sorted(DATA.glob("dedup_pairs*.jsonl"))
    embedder = embedder_from_env()
    print("| set | pairs | precision | recall | false merges | missed merges |")
    print("|---|---|---|---|---|---|")
    everything = []
    for path in files:
        rows = evaluate(load(path), embedder)
        everything += rows
        s = scores(rows)
        print(f"| {path.stem} | {s['pairs']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['false merges']} | {s['missed merges']} |")
        if args.by_kind:
            kinds = defaultdict(list)
            for row in rows:
                kinds[row[0].get("kind", "?")].append(row)
            for kind, kr in sorted(kinds.items()):
                k = scores(kr)
                print(f"| &nbsp; {kind} | {k['pairs']} | {k['precision']:.3f} | {k['recall']:.3f} | {k['false merges']} | {k['missed merges']} |")
    if args.errors:
        for pair, merged, cosine, reason in everything:
            if merged != (pair["label"] == "merge"):
                print(f"\n[{pair['label']} / {pair.get('kind')}] cos={cosine:.3f} predicted={'merge' if merged else 'keep'} ({reason})\n  a: {pair['a']}\n  b: {pair['b']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
