"""What a text states, read once for the dedup guards: its content words in order, quantities, negations, names.

``Facts.of`` is cached: a stored memory is compared again at every write near it. The
guards that compare two of them are in ``guards``; the decision is ``dedup.judge``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from .quantities import quantities, strip
from .text import ALIASES, STOP_WORDS, aliased, canonical, fold, join_phrases, normalize, stem, words

NEGATIONS = frozenset(
    "not no non never none nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt "
    "werent wont wouldnt shouldnt couldnt mustnt neednt havent hasnt instead rather avoid avoids "
    "avoided avoiding disallow disallowed forbid forbidden prohibited stop stopped dislike dislikes "
    "disliked hate hates hated".split()
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


#: A transcript label: one or two capitalised words and a colon opening the text.
_SPEAKER = re.compile(r"^\s*([A-Z][\w'-]*(?: [A-Z][\w'-]*)?):\s")
_IDENT_SHAPE = re.compile(r"\b(?:[A-Za-z0-9]*(?:[_./:\\@$#-][A-Za-z0-9]+)+|[A-Za-z][a-z]*[A-Z]\w*|[A-Z]{2,}\w*)")


def _original_identifiers(text: str) -> set[str]:
    """Identifier-shaped spans (paths, snake_case, camelCase, ALLCAPS, dotted names).

    An English word in capitals ("IMPORTANT") is emphasis, and a discourse marker ("FYI")
    is filler: neither names anything.
    """
    shouting = text.upper() == text
    vocab = _vocabulary()
    found = set()
    for match in _IDENT_SHAPE.finditer(text):
        token = match.group(0)
        if shouting and token.isalpha():
            continue
        if token.isalpha() and token.isupper() and (token.lower() in FILLER or (len(token) > 3 and token.lower() in vocab)):
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


#: Discourse markers that add nothing to a fact ("FYI: use uv", "use uv, btw").
FILLER = frozenset("fyi btw pls plz please imo imho iirc afaik tldr nb ps".split())
_PASSIVE = re.compile(
    r"\b(?:is|are|was|were|be|been|being|gets?|got|getting)\s+(?:\w+ly\s+)?\w+(?:ed|en|wn|ne|lt|pt|ught|ound)\b"
)
#: Markdown quote, bullet, heading and list markers at the start of a text.
_MARKUP = re.compile(r"^\s*(?:[>*+#-]+|\d+[.)])\s+")
#: The team as subject, spelled as the team or as "we": one subject.
_TEAM = re.compile(r"\b(?:our|the|my) team\b", re.IGNORECASE)
#: The repository a project memory is about, named as the frame of a fact ("In this project,
#: ...", "this repo's CI ...", "... for this project: ...", "... in this repository."): its scope
#: already says so, as "the user" is the implied subject of a user memory, so the frame is no
#: content. An agent asked to say what a fact applies to writes it on one side and not the
#: other, and the guards must still see the one word that changed. Named as one end of a
#: relation ("from Crowdin into this repo", "in this repo, not the infra repo") it is a role
#: and stays.
_THIS_REPO = r"(?:this|the current) (?:project|repository|repo|codebase)"
_SELF_REFERENCE = re.compile(
    rf"^\s*(?:in|for|within|across) {_THIS_REPO}\b(?!['’]s)\s*,?"  # leading: "In this project, ..."
    rf"|\b{_THIS_REPO}['’]s\b"  # possessive: "this repo's CI" is "CI"
    rf"|\s(?:in|for|within|across) {_THIS_REPO}\s*(?=:|[.!]?\s*$)",  # a label's or the end: "... for this project:"
    re.IGNORECASE,
)


def _token_key(word: str) -> str:
    """A raw word's key for role comparison: canonical, but a possessive stays marked."""
    possessive = word.endswith(("'s", "s'")) and len(word) > 3
    return canonical(word) + ("'s" if possessive else "")


#: Words for the role comparison: identifiers stay whole (REDIS_URL, train.py), commas count.
_WORD_OR_COMMA = re.compile(r"[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)*(?:['’][A-Za-z]+)?|[,;]")

@dataclass(frozen=True)
class Facts:
    """What the guards compare, precomputed once per text."""

    text: str
    raw: tuple[str, ...]
    sequence: tuple[str, ...]
    #: Canonical quantities stated ("time:0.25", "clock:17:00", "n:3.12"), in order.
    numbers: tuple[str, ...]
    negations: int
    names: frozenset[str]
    #: The "Name:" a transcript line starts with ("Caroline: I went hiking"), folded; "" if none.
    speaker: str = ""
    #: Every word in order as (key, content?): quantities as their canonical form, possessives
    #: marked. What the role comparison reads.
    tokens: tuple[tuple[str, bool], ...] = ()
    #: Written in the passive voice ("the worker is called by the api").
    passive: bool = False

    @property
    def terms(self) -> frozenset[str]:
        return frozenset(self.sequence)

    @cached_property
    def roles(self) -> tuple[str, ...]:
        return tuple(k for k, content in self.tokens if content)

    @cached_property
    def markers(self) -> tuple[tuple[str, ...], ...]:
        """For each role, the function words (and commas) between it and the role before it."""
        out: list[tuple[str, ...]] = []
        since: list[str] = []
        for key, content in self.tokens:
            if content:
                out.append(tuple(since))
                since = []
            else:
                since.append(key)
        return tuple(out)

    @classmethod
    def of(cls, text: str) -> Facts:
        """The facts of ``text``, cached: a stored memory is compared again at every write near it."""
        return _facts_of(text)

    @classmethod
    def _read(cls, text: str) -> Facts:
        label = _SPEAKER.match(text)
        plain = _TEAM.sub("we", _MARKUP.sub("", text))
        stated = quantities(plain)
        plain = strip(plain)  # each quantity is now the word "qty"
        raw = _said(plain)
        plain = _SELF_REFERENCE.sub("", plain)  # still in ``raw``, which a misspelling is checked against
        vocab = _vocabulary()
        # Content words in order; quantities and negations have guards of their own, and "the
        # user" is the implied subject of most memories ("I use neovim" / "the user uses neovim").
        tokens: list[tuple[str, bool]] = []
        pending = iter(stated)
        for w in _WORD_OR_COMMA.findall(normalize(plain)):
            if w in FILLER:
                continue
            if w == "qty":
                tokens.append((next(pending, "qty"), True))
                continue
            stop = w in ",;" or _is_stop(w)
            key = w if stop else _token_key(w)
            tokens.append((key, not stop and not _is_negation(w) and key not in ("user", "user's")))
        sequence = tuple(canonical(w) for w in _said(plain) if w != "qty" and not _is_stop(w) and not _is_negation(w)
                         and canonical(w) != "user")
        names: set[str] = set()
        for w in raw:
            bare = w.replace("'", "")
            base = ALIASES.get(bare, bare)
            if w == "qty":
                continue
            if w in NAMED_WORDS or base in NAMED_WORDS:
                names.add(base)
            elif any(c.isdigit() for c in w) and not w.isdigit():
                names.add(w)  # shard A00001, ipv6, s3, py312: identifiers with digits in them
            elif bare in ALIASES:
                continue  # a known abbreviation of an ordinary word
            elif w.isalpha() and len(w) >= 3 and vocab and not {w, stem(w), stem(w) + "e"} & vocab:
                names.add(base)
        for ident in _original_identifiers(join_phrases(plain)):
            parts = [p for p in re.split(r"[^a-z0-9]+", ident) if p and not p.isdigit() and p not in STOP_WORDS and p != "qty"]
            if "-" in ident and not re.search(r"[_./:\\@$#]", ident) and vocab and all(p in vocab for p in parts):
                continue  # "on-call", "code-first", "heads-up": an English compound, not an identifier
            names.update(parts)
        names.update(_proper_nouns(plain))
        names.discard("qty")
        negs = sum(1 for w in raw if _is_negation(w))
        return cls(text, tuple(raw), sequence, tuple(stated), negs, frozenset(canonical(n) for n in names),
                   fold(label.group(1)) if label else "", tuple(tokens), bool(_PASSIVE.search(fold(plain))))


@lru_cache(maxsize=4096)
def _facts_of(text: str) -> Facts:
    return Facts._read(text)


def _said(text: str) -> list[str]:
    """The words of ``text`` without fillers ("fyi", "pls"), which state nothing."""
    return [w for w in words(text) if w not in FILLER]


def _is_stop(word: str) -> bool:
    """A stop word, also behind an apostrophe ("we're") or an alias."""
    return word in STOP_WORDS or word.split("'")[0] in STOP_WORDS or aliased(word) in STOP_WORDS


def _is_negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")
