"""Is a new memory the same fact as an existing one?

Embedding cosine alone is not enough: MiniLM puts "targets Python 3.12" and "... 3.11" at
0.97 and "Always squash-merge" / "Never squash-merge" at 0.98. So a merge needs high
similarity (cosine, or fuzzy token overlap for typos and re-orderings) *and* no guard
firing. Guards block when the texts differ in a number or version, in polarity (negation),
in one of a set of mutually exclusive words (staging/production, tabs/spaces...), or in a
name or identifier (a word the embedding model's vocabulary does not know, a path, an env
var, a capitalised name). When in doubt the memory is created and the close one is
reported in ``similar``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from .text import ALIASES, STOP_WORDS, canonical, fold, numbers, stem, words

#: Merge when cosine is at least this and no guard fires.
MERGE_COSINE = 0.80
#: ... or when the fuzzy token-set ratio is at least this (typos, re-ordering) with cosine ≥ FUZZY_MIN_COSINE.
MERGE_FUZZY = 88.0
FUZZY_MIN_COSINE = 0.65
#: Report as ``similar`` (close but not merged) from this cosine up.
SIMILAR_COSINE = 0.60

NEGATIONS = frozenset(
    "not no never none nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt "
    "werent wont wouldnt shouldnt couldnt mustnt neednt havent hasnt instead rather avoid avoids "
    "avoided avoiding disallow disallowed forbid forbidden prohibited stop stopped".split()
)

#: Mutually exclusive alternatives: a pair using different members states different facts.
EXCLUSIVE_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(stem(w) for w in group.split())
    for group in (
        "enable enabled disable disabled", "allow allowed deny denied block blocked",
        "include included exclude excluded", "before after", "staging production development test",
        "ascending descending asc desc", "tabs tab spaces space", "sync synchronous async asynchronous",
        "public private internal", "like likes love loves prefer prefers dislike dislikes hate hates",
        "true false", "on off", "minimum maximum min max", "start stop", "open close closed",
        "upper lower uppercase lowercase", "first last", "add remove delete",
        "increase decrease", "success failure pass fail", "accept reject", "local remote",
        "required optional", "left right", "above below", "read write", "import export",
        "server client", "frontend backend", "light dark", "merge rebase squash",
        "monday tuesday wednesday thursday friday saturday sunday",
        "january february march april may june july august september october november december",
        "daily weekly monthly hourly yearly", "major minor patch", "new old", "more less fewer",
        "higher lower", "faster slower", "small large big", "camelcase snakecase kebabcase",
        "single double", "inside outside", "input output", "x86 arm arm64 amd64",
        "linux windows macos mac darwin", "get post put patch", "utc local",
    )
)

#: Tool and product names that are also English words, so the vocabulary test misses them.
NAMED_WORDS = frozenset(
    """pip uv yarn npm pnpm bun deno python node go rust java ruby swift kotlin scala perl php
    make cmake bazel gradle maven ant cargo poetry conda pipenv hatch rye black ruff jest mocha
    vitest pytest unittest nose flask django rails spring react vue angular svelte next nuxt
    remix astro vite webpack rollup esbuild parcel babel brew apt yum dnf snap bash zsh fish vim
    emacs git mercurial svn github gitlab bitbucket jenkins travis circle buildkite docker podman
    kubernetes helm terraform ansible puppet chef postgres mysql sqlite redis mongo mongodb kafka
    rabbit celery spark hadoop elastic nginx apache caddy traefik aws azure gcp heroku vercel
    netlify fly render slack jira linear notion sentry datadog grafana prometheus ubuntu debian
    alpine fedora centos arch macos windows linux graphql rest grpc json yaml toml xml csv
    markdown sphinx mkdocs typescript javascript coffee elixir erlang haskell ocaml zig nim dart
    flutter ios android chrome firefox safari edge tailwind bootstrap sass less stripe twilio
    openai anthropic claude codex gemini copilot cursor zed vscode intellij pycharm""".split()
)

#: Mutually exclusive "always/sometimes" style quantifiers are handled by NEGATIONS and groups;
#: these quantifiers are soft and never block on their own.
_SOFT = frozenset("always usually often sometimes generally typically".split())


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Whole words of the bundled MiniLM WordPiece vocabulary (about 20k English words)."""
    from .embedder import default_model_files

    try:
        _, tokenizer = default_model_files()
        vocab = json.loads(tokenizer.read_text())["model"]["vocab"]
    except Exception:  # a custom embedder without the bundled files: treat nothing as known
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and not w.startswith("##"))


_IDENT_SHAPE = re.compile(r"[A-Za-z0-9]*(?:[_./:\\@$#-][A-Za-z0-9]+)+|[a-z]+[A-Z]\w*|[A-Z]{2,}\w*")


def _original_identifiers(text: str) -> set[str]:
    """Identifier-shaped spans (paths, snake_case, camelCase, ALLCAPS, dotted names)."""
    shouting = text.upper() == text
    found = set()
    for match in _IDENT_SHAPE.finditer(text):
        token = match.group(0)
        if shouting and token.isalpha():
            continue
        found.add(fold(token).strip(".:-"))
    return found


def _proper_nouns(text: str) -> set[str]:
    """Capitalised words that do not start a sentence (names of people, services, places)."""
    if text.upper() == text or text.title() == text:
        return set()
    out = set()
    for match in re.finditer(r"(?<![.!?:\n]\s)(?<!^)(?<![.!?:]\s\s)\b([A-Z][a-z]+)\b", text):
        start = match.start(1)
        prefix = text[:start].rstrip()
        if not prefix or prefix[-1] in ".!?:\"'(`-*\n":
            continue
        out.add(match.group(1).lower())
    return out


@dataclass(frozen=True)
class Facts:
    """What the guards compare, precomputed once per text."""

    text: str
    terms: frozenset[str]
    numbers: tuple[tuple[str, str], ...]
    negations: int
    names: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "Facts":
        raw = words(text)
        vocab = _vocabulary()
        terms = frozenset(canonical(w) for w in raw if w not in STOP_WORDS and w not in NEGATIONS)
        names: set[str] = set()
        for w in raw:
            base = ALIASES.get(w.replace("'", ""), w.replace("'", ""))
            if w in NAMED_WORDS or base in NAMED_WORDS:
                names.add(base)
            elif any(c.isdigit() for c in w) and not w.isdigit():
                names.add(w)  # shard A00001, ipv6, s3, py312: identifiers with digits in them
            elif w.isalpha() and len(w) >= 3 and vocab and w not in vocab and stem(w) not in vocab and base not in vocab:
                names.add(base)
        for ident in _original_identifiers(text):
            names.update(p for p in re.split(r"[^a-z0-9]+", ident) if p and not p.isdigit() and p not in STOP_WORDS)
        names.update(_proper_nouns(text))
        negs = sum(1 for w in raw if w in NEGATIONS or w.endswith("n't"))
        return cls(text, terms, tuple(sorted(numbers(text))), negs, frozenset(canonical(n) for n in names))


def _typo_of(word: str, others: Iterable[str]) -> bool:
    """True when ``word`` is a one- or two-letter misspelling of one of ``others``."""
    if len(word) < 4 or not word.isalpha():
        return False
    limit = 1 if len(word) <= 6 else 2
    for other in others:
        if len(other) >= 4 and other.isalpha() and other[0] == word[0]:
            if Levenshtein.distance(word, other) <= limit:
                return True
        if len(other) >= 5 and len(word) >= 5 and (other.startswith(word) or word.startswith(other)):
            return True  # postgres / postgresql, kube / kubernetes
    return False


def blocking_guard(a: Facts, b: Facts) -> str | None:
    """The reason two texts are different facts despite looking alike, or None."""
    nums_a, nums_b = {v for v, _ in a.numbers}, {v for v, _ in b.numbers}
    if nums_a != nums_b:
        return "numbers differ"
    units_a, units_b = dict(a.numbers), dict(b.numbers)
    for value in nums_a:
        if units_a.get(value) and units_b.get(value) and units_a[value] != units_b[value]:
            return "units differ"
    if a.negations % 2 != b.negations % 2:
        return "negation differs"
    only_a, only_b = a.terms - b.terms, b.terms - a.terms
    for group in EXCLUSIVE_GROUPS:
        if (only_a & group) and (only_b & group):
            return "exclusive alternatives differ"
    names_a = {n for n in a.names - b.names if n not in b.terms}
    names_b = {n for n in b.names - a.names if n not in a.terms}
    names_a = {n for n in names_a if not _typo_of(n, b.terms | b.names)}
    names_b = {n for n in names_b if not _typo_of(n, a.terms | a.names)}
    if names_a or names_b:
        return "names or identifiers differ"
    return None


@dataclass(frozen=True)
class Verdict:
    merge: bool
    similar: bool
    reason: str
    fuzzy: float


def judge(new: Facts, old: Facts, cosine: float) -> Verdict:
    """Decide merge / similar / unrelated for a candidate at embedding ``cosine``."""
    fuzzy = fuzz.token_set_ratio(fold(new.text), fold(old.text))
    close = cosine >= MERGE_COSINE or (fuzzy >= MERGE_FUZZY and cosine >= FUZZY_MIN_COSINE)
    if not close:
        return Verdict(False, cosine >= SIMILAR_COSINE, "not similar enough", fuzzy)
    reason = blocking_guard(new, old)
    if reason:
        return Verdict(False, True, reason, fuzzy)
    return Verdict(True, True, "same fact", fuzzy)
