"""Secret detection: catch rate on real-shaped secrets, false positives on look-alikes.

    .venv/bin/python bench/secrets_eval.py [bench/data/secrets.jsonl] [--errors]

Each line is {"text", "secret": true|false, "kind"}. A secret is caught when ``find``
reports something in its text (tests/test_secrets.py checks that redaction removes the
value); an innocent text is a false positive when ``find`` reports anything in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_mcp.store.secrets import find, redact  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "secrets.jsonl"


def evaluate(rows: list[dict]) -> dict:
    caught, missed, false_pos = [], [], []
    for row in rows:
        findings = find(row["text"])
        if row["secret"]:
            (caught if findings else missed).append((row, redact(row["text"], findings)))
        elif findings:
            false_pos.append((row, [f.kind for f in findings]))
    secrets = sum(r["secret"] for r in rows)
    return {"secrets": secrets, "innocent": len(rows) - secrets, "caught": len(caught), "missed": missed,
            "false_positives": false_pos, "redacted": caught}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, default=DATA)
    parser.add_argument("--errors", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    r = evaluate(rows)
    print("| secrets | caught | catch rate | look-alikes | false positives | false-positive rate |")
    print("|---|---|---|---|---|---|")
    print(f"| {r['secrets']} | {r['caught']} | {r['caught'] / r['secrets']:.3f} | {r['innocent']} | "
          f"{len(r['false_positives'])} | {len(r['false_positives']) / r['innocent']:.3f} |")
    if args.errors:
        for row, _ in r["missed"]:
            print(f"\nmissed [{row['kind']}]: {row['text'][:200]}")
        for row, kinds in r["false_positives"]:
            print(f"\nfalse positive {kinds} [{row['kind']}]: {row['text'][:200]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
