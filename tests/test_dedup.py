"""Deduplication: the labelled pair sets meet the precision/recall goal; guards on hard cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from headroom_mcp.store.dedup import Facts, blocking_guard, judge

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from dedup_eval import DATA, evaluate, load, scores  # noqa: E402

#: The frozen blind test splits (``_test``, then ``_final``) are measured by bench/dedup_eval.py
#: and reported in docs/quality.md; no test asserts on them, so nothing is ever tuned to pass them.
SETS = sorted(p for p in DATA.glob("dedup_pairs*.jsonl") if not p.stem.endswith(("_test", "_final")))
#: Floors per set: the hand-written sets were built with the rules; the blind dev split was
#: written without them and is what the rules were last tuned on.
GOALS = {"dedup_pairs_blind_dev": (0.97, 0.85)}


def test_labelled_sets_are_big_and_balanced():
    assert SETS, "bench/data/dedup_pairs*.jsonl missing"
    for path in SETS:
        pairs = load(path)
        merges = sum(p["label"] == "merge" for p in pairs)
        assert len(pairs) >= 60 and merges == len(pairs) - merges, path.name


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_precision_and_recall_goal(path, embedder):
    s = scores(evaluate(load(path), embedder))
    precision, recall = GOALS.get(path.stem, (0.95, 0.90))
    assert s["precision"] >= precision, s
    assert s["recall"] >= recall, s


@pytest.mark.parametrize("a, b, reason", [
    ("atlas targets Python 3.12", "atlas targets Python 3.11", "numbers"),
    ("bump to v2.3.1", "bump to v2.3.2", "numbers"),
    ("rate limit 100/min", "rate limit 1000/min", "numbers"),
    ("the request timeout is 30s", "the request timeout is 30 minutes", "numbers"),
    ("the api calls the worker over gRPC", "the worker calls the api over gRPC", "roles"),
    ("copy the dump from staging to prod", "copy the dump from prod to staging", "roles"),
    ("prefer composition over inheritance", "prefer inheritance over composition", "roles"),
    ("Carol reviews Dave's PRs", "Dave reviews Carol's PRs", "roles"),
    ("telemetry is on by default", "telemetry is off by default", "exclusive"),
    ("use a blocking socket for the uplink", "use a non-blocking socket for the uplink", "negation"),
    ("the billing service is deployed by make deploy-billing", "the search service is deployed by make deploy-search", "a word"),
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
    # The repository named on one side only, as an agent asked to say what a fact applies to
    # writes it: the one word that changed still decides.
    ("In this project, tokens for the internal API rotate every 90 days", "Tokens for the partner API rotate every 90 days", "a word"),
    ("This project's nightly job copies orders from Postgres into BigQuery", "The nightly job copies orders from BigQuery into Postgres", "roles"),
    ("sync translations from Crowdin into this repo", "sync translations from this repo into Crowdin", "roles"),
    ("copy the config from the template repo into this repository", "copy the config from this repository into the template repo", "roles"),
    ("Run migrations in the infra repo, not this repo", "Run migrations in this repo, not the infra repo", "roles"),
    ("mirror this repo to the GitLab repo", "mirror the GitLab repo to this repo", "roles"),
    ("pull secrets from Vault into this project", "pull secrets from this project into Vault", "roles"),
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
    ("the gateway timeout is 250 ms", "the gateway timeout is 250ms"),
    ("logs are kept 14 days", "logs are kept two weeks"),
    ("the deploy freeze starts at 17:00", "the deploy freeze starts at 5 pm"),
    ("the Lambda memory limit is 1,024 MB", "the Lambda memory limit is 1 GB"),
    ("checkpoints every 5k steps", "checkpoints every 5,000 steps"),
    ("the api calls the worker", "the worker is called by the api"),
    ("Postgres is the primary database", "the primary database is Postgres"),
    ("in staging, debug logging is enabled", "debug logging is enabled in staging"),
    ("the stack is React, Node and Postgres", "the stack is Postgres, Node and React"),
    ("We're on call in weekly rotations", "Our team is on call in weekly rotations"),
    ("use uv instead of pip", "FYI: use uv instead of pip, btw"),
    ("keep p99 latency under half a second", "keep p99 latency under 500 ms"),
    ("integration tests need REDIS_URL and DATABASE_URL set", "integration tests need DATABASE_URL and REDIS_URL set"),
    ("the ML pipeline stores features in S3", "the machine learning pipeline stores features in S3"),
    ("Use pnpm, not npm, in this repository.", "Use pnpm, not npm, in this repsoitory."),
])
def test_guards_let_paraphrases_through(a, b):
    assert blocking_guard(Facts.of(a), Facts.of(b)) is None


def test_far_apart_texts_are_not_even_similar():
    v = judge(Facts.of("the office has free coffee"), Facts.of("CI runs on GitHub Actions"), cosine=0.1)
    assert not v.merge and not v.similar


@pytest.mark.parametrize("text", ["Retry after 5 \u017f", "Timeout is " + "1" * 400 + ".5 ms", "Seed " + "1" * 5000,
                                  "\u017fix weeks", "", "!!!", "42", "a" * 80 + "z"])
def test_odd_texts_never_break_the_decision(text):
    other = Facts.of("the api times out after five seconds")
    assert judge(Facts.of(text), other, 0.9).reason and judge(other, Facts.of(text), 0.9).reason
