"""Secret screening: how many credentials survive a write, how many ordinary facts get redacted.

    .venv/bin/python bench/secrets_eval.py                  # every set: bench/data/secrets*.jsonl
    .venv/bin/python bench/secrets_eval.py bench/data/secrets_blind_dev.jsonl --errors

Each line is {"text", "secret": true|false, "values"?: [...], "class" or "kind"}. A text goes
the way ``remember`` takes it (``check_content``, then ``secrets.screen`` with the default
"redact" policy). A secret is caught when none of its ``values`` survives in what would be
stored, or the write is refused; for sets without ``values``, when anything was found. A
look-alike is a false positive when anything in it is redacted.

--errors prints every miss and every false positive. Only run it on a tuning set
(``secrets.jsonl``, ``secrets_blind_dev.jsonl``): a set whose errors were read is no longer
unseen (README, Quality).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_mcp.errors import InvalidInput  # noqa: E402
from headroom_mcp.store import secrets  # noqa: E402
from headroom_mcp.store.records import check_content  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def stored(text: str) -> tuple[str | None, list[str]]:
    """What ``remember`` would store (None when it refuses), and the kinds it redacted."""
    try:
        return secrets.screen(check_content(text), "redact")
    except InvalidInput:
        return None, ["refused"]


def evaluate(rows: list[dict]) -> dict:
    missed, false_pos, times = [], [], []
    for row in rows:
        t = time.perf_counter()
        kept, kinds = stored(row["text"])
        times.append((time.perf_counter() - t) * 1000)
        if row["secret"]:
            values = row.get("values")
            leaked = [v for v in values if kept is not None and v in kept] if values else ([] if kinds else [row["text"]])
            if leaked:
                missed.append((row, kept, leaked))
        elif kinds:
            false_pos.append((row, kept, kinds))
    n_secret = sum(r["secret"] for r in rows)
    return {"secrets": n_secret, "innocent": len(rows) - n_secret, "missed": missed, "false_positives": false_pos,
            "p50_ms": statistics.median(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--errors", action="store_true", help="print every miss and false positive (tuning sets only)")
    args = parser.parse_args()
    files = args.files or sorted(DATA.glob("secrets*.jsonl"))
    print("| set | secrets | caught | catch rate | look-alikes | false positives | false-positive rate | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for path in files:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        r = evaluate(rows)
        caught = r["secrets"] - len(r["missed"])
        print(f"| {path.stem} | {r['secrets']} | {caught} | {caught / max(1, r['secrets']):.3f} | {r['innocent']} | "
              f"{len(r['false_positives'])} | {len(r['false_positives']) / max(1, r['innocent']):.3f} | {r['p50_ms']:.2f} |")
        results.append((path, r))
    if args.errors:
        for path, r in results:
            for row, kept, leaked in r["missed"]:
                print(f"\n{path.stem} missed [{row.get('class') or row.get('kind')}]: {row['text'][:240]!r}\n   kept: {str(kept)[:240]!r}\n   leaked: {leaked}")
            for row, _kept, kinds in r["false_positives"]:
                print(f"\n{path.stem} false positive {kinds} [{row.get('class') or row.get('kind')}]: {row['text'][:240]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
