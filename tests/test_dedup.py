"""Deduplication: the labelled pair sets meet the precision/recall goal; guards on hard cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from headroom_mcp.store.dedup import Facts, blocking_guard, judge

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from dedup_eval import DATA, evaluate, load, scores  # noqa: E402

SETS = sorted(DATA.glob("dedup_pairs*.jsonl"))


def test_labelled_sets_are_big_and_balanced():
    assert SETS, "bench/data/dedup_pairs*.jsonl missing"
    for path in SETS:
        pairs = load(path)
        merges = sum(p["label"] == "merge" for p in pairs)
        assert len(pairs) >= 60 and merges == len(pairs) - merges, path.name


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_precision_and_recall_goal(path, embedder):
    s = scores(evaluate(load(path), embedder))
    assert s["precision"] >= 0.95, s
    assert s["recall"] >= 0.90, s


@pytest.mark.parametrize("a, b, reason", [
    ("atlas targets Python 3.12", "atlas targets Python 3.11", "numbers"),
    ("bump to v2.3.1", "bump to v2.3.2", "numbers"),
    ("rate limit 100/min", "rate limit 1000/min", "numbers"),
    ("the request timeout is 30s", "the request timeout is 30 minutes", "units"),
    ("Always squash-merge", "Never squash-merge", "negation"),
    ("the linter runs on pre-commit", "the linter does not run on pre-commit", "negation"),
    ("telemetry is enabled in staging", "telemetry is disabled in staging", "exclusive"),
    ("deploy to staging first", "deploy to production first", "exclusive"),
    ("we use pnpm for the frontend", "we use yarn for the frontend", "names"),
    ("we use uv for Python", "we use pip for Python", "names"),
    ("set DATABASE_URL before running tests", "set REDIS_URL before running tests", "names"),
    ("fixtures live in tests/unit/fixtures", "fixtures live in tests/e2e/fixtures", "names"),
    ("ping Priya about billing", "ping Marcus about billing", "names"),
    ("shard A00001 is owned by team 1", "shard B00001 is owned by team 1", "names"),
])
def test_guards_block_look_alike_facts(a, b, reason):
    found = blocking_guard(Facts.of(a), Facts.of(b))
    assert found is not None and found.startswith(reason), found


@pytest.mark.parametrize("a, b", [
    ("this repo uses uv, not pip", "The repository uses uv instead of pip."),
    ("The user prefers tabs", "the user prefers TABS"),
    ("rate limit is 100 per minute", "rate limit: 100/min"),
    ("use two workers in CI", "use 2 workers in CI"),
    ("deploys go through make deploy from the release branch", "Deploys go thru `make deploy` from the relase branch"),
    ("config lives in the .env file", "configuration lives in the .env file"),
    ("the db is Postgres", "the database is PostgreSQL"),
])
def test_guards_let_paraphrases_through(a, b):
    assert blocking_guard(Facts.of(a), Facts.of(b)) is None


def test_far_apart_texts_are_not_even_similar():
    v = judge(Facts.of("the office has free coffee"), Facts.of("CI runs on GitHub Actions"), cosine=0.1)
    assert not v.merge and not v.similar
