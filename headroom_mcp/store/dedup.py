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
from difflib import SequenceMatcher
from functools import cached_property, lru_cache
from typing import Iterable

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from .quantities import quantities, strip
from .text import ALIASES, STOP_WORDS, aliased, canonical, fold, join_phrases, normalize, stem, words

#: Merge when cosine is at least this and no guard fires.
MERGE_COSINE = 0.80
#: ... or when cosine is at least this and the texts share this share of their content words:
#: a paraphrase of a fact keeps most of its words, where two chatty lines of one speaker
#: ("Thanks, Mel! ..." / "Thanks Mel! I'm going to ...") are close in MiniLM but share few.
PARAPHRASE_COSINE = 0.70
PARAPHRASE_SHARED = 0.5
#: However close the vectors, texts sharing less than this share of their content words
#: say different things (two long lines of small talk by one speaker are close in MiniLM).
MIN_SHARED = 0.25
#: ... or when the fuzzy token-set ratio is at least this (typos, re-ordering) with cosine ≥ FUZZY_MIN_COSINE.
MERGE_FUZZY = 88.0
FUZZY_MIN_COSINE = 0.65
#: ... or when both say the same content words once aliases are applied ("PRs" / "pull requests").
SAME_TERMS_MIN_COSINE = 0.40
#: Longest word read as the joined or abbreviated form of several words ("semver", "backend").
MAX_ABBREVIATION = 12
#: Report as ``similar`` (close but not merged) from this cosine up.
SIMILAR_COSINE = 0.60

NEGATIONS = frozenset(
    "not no non never none nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt "
    "werent wont wouldnt shouldnt couldnt mustnt neednt havent hasnt instead rather avoid avoids "
    "avoided avoiding disallow disallowed forbid forbidden prohibited stop stopped dislike dislikes "
    "disliked hate hates hated".split()
)

#: Mutually exclusive alternatives: a pair using different members states different facts.
EXCLUSIVE_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(stem(w) for w in group.split())
    for group in (
        "enable enabled disable disabled", "allow allowed deny denied block blocked",
        "include included exclude excluded", "before after", "staging production development test",
        "ascending descending asc desc", "tabs tab spaces space", "sync synchronous async asynchronous",
        "public private internal", "true false", "on off", "minimum maximum min max", "start stop", "open close closed",
        "upper lower uppercase lowercase", "first last", "add remove delete",
        "increase decrease", "up down", "success failure pass fail", "accept reject", "local remote",
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
#: Words between two exchanged terms that keep the statement symmetric: "X is the Y" /
#: "the Y is X", "lint and tests" / "tests and lint". Anything else between them (a verb,
#: "to", "over", "from", "not") gives each term a role, and exchanging them changes the fact.
SYMMETRIC = frozenset("is are was were be and or the a an vs versus equals plus both also where which that what".split())
_PASSIVE = re.compile(
    r"\b(?:is|are|was|were|be|been|being|gets?|got|getting)\s+(?:\w+ly\s+)?\w+(?:ed|en|wn|ne|lt|pt|ught|ound)\b"
)
#: Markdown quote, bullet, heading and list markers at the start of a text.
_MARKUP = re.compile(r"^\s*(?:[>*+#-]+|\d+[.)])\s+")
#: The team as subject, spelled as the team or as "we": one subject.
_TEAM = re.compile(r"\b(?:our|the|my) team\b", re.IGNORECASE)


def _token_key(word: str) -> str:
    """A raw word's key for role comparison: canonical, but a possessive stays marked."""
    possessive = word.endswith(("'s", "s'")) and len(word) > 3
    return canonical(word) + ("'s" if possessive else "")


#: Words for the role comparison: identifiers stay whole (REDIS_URL, train.py), commas count.
_WORD_OR_COMMA = re.compile(r"[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)*(?:['’][A-Za-z]+)?|[,;]")
_COPULA = frozenset("is are was were".split())
_ARTICLES = frozenset("the a an , ;".split())


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
        out, since = [], []
        for key, content in self.tokens:
            if content:
                out.append(tuple(since))
                since = []
            else:
                since.append(key)
        return tuple(out)

    @classmethod
    def of(cls, text: str) -> "Facts":
        """The facts of ``text``, cached: a stored memory is compared again at every write near it."""
        return _facts_of(text)

    @classmethod
    def _read(cls, text: str) -> "Facts":
        label = _SPEAKER.match(text)
        plain = _TEAM.sub("we", _MARKUP.sub("", text))
        stated = quantities(plain)
        plain = strip(plain)  # each quantity is now the word "qty"
        raw = [w for w in words(plain) if w not in FILLER]
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
        sequence = tuple(canonical(w) for w in raw if w != "qty" and not _is_stop(w) and not _is_negation(w)
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


def _roles_exchanged(a: Facts, b: Facts) -> bool:
    """Do the texts say the same words with two parts exchanged so that their roles change?

    "the api calls the worker" / "the worker calls the api", "from X to Y" / "from Y to X",
    "prefer X over Y" / "prefer Y over X": same words, reverse fact. The same words moved
    are the same fact when a part keeps the little words that mark its role ("in staging,
    X" / "X in staging"), when the parts sit around a symmetric link ("X is the Y" / "the Y
    is X", lists "A, B and C"), and when one text is in the passive voice.
    """
    ra, rb = a.roles, b.roles
    if ra == rb or a.passive != b.passive or _copular_inversion(a, b):
        return False
    if sorted(ra) != sorted(rb):
        # "Carol reviews Dave's PRs" / "Dave reviews Carol's PRs": the possessive moved.
        bare_a, bare_b = [r.removesuffix("'s") for r in ra], [r.removesuffix("'s") for r in rb]
        owners_a, owners_b = {r for r in ra if r.endswith("'s")}, {r for r in rb if r.endswith("'s")}
        return sorted(bare_a) == sorted(bare_b) and bool(owners_a) and bool(owners_b) and owners_a != owners_b
    n = len(ra)
    for k in range(1, n):  # the whole statement rotated: a clause moved from front to back
        if rb == ra[k:] + ra[:k]:
            return _markers_changed(a, b, (0, n - k), (k, 0)) and not _symmetric_link(a, b, k, n - k)
    p = 0
    while ra[p] == rb[p]:
        p += 1
    s = 0
    while ra[n - 1 - s] == rb[n - 1 - s]:
        s += 1
    # Shared words at the edges may belong to the exchanged parts ("REDIS url" / "DATABASE url").
    for p2 in range(p, -1, -1):
        for s2 in range(s, -1, -1):
            mid_a, mid_b = ra[p2:n - s2], rb[p2:n - s2]
            m = len(mid_a)
            for x in range(1, min(4, m)):
                for y in range(1, min(4, m - x + 1)):
                    if mid_a[:x] == mid_b[m - x:] and mid_a[m - y:] == mid_b[:y] and mid_a[x:m - y] == mid_b[y:m - x]:
                        if m > x + y:  # something stays between the exchanged parts
                            return not _listed(a, p2 + x, p2 + m - y)
                        return _markers_changed(a, b, (p2, p2 + y), (p2 + x, p2)) and not _symmetric_link(a, b, p2 + x, p2 + y)
    return False


def _norm(markers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for w in markers if w not in _ARTICLES)


def _markers_changed(a: Facts, b: Facts, *moves: tuple[int, int]) -> bool:
    """Does a moved part (role index in ``a``, index in ``b``) lose or gain its role words?"""
    ma, mb = a.markers, b.markers
    return any(_norm(ma[i]) != _norm(mb[j]) for i, j in moves)


def _symmetric_link(a: Facts, b: Facts, i: int, j: int) -> bool:
    """Is the second part introduced by symmetric words only ("is the", "and") in either text?"""
    return any(words_ and all(w in SYMMETRIC or w in ",;" for w in words_) for words_ in (a.markers[i], b.markers[j]))


def _listed(a: Facts, start: int, end: int) -> bool:
    """Are the roles from ``start`` to ``end`` (inclusive) in ``a`` items of a list ("A, B and C")?"""
    return all(any(w in (",", ";", "and", "or") for w in a.markers[i]) for i in range(start, end + 1))


def _copular_inversion(a: Facts, b: Facts) -> bool:
    """"X is the Y" / "the Y is X": what stands on each side of "is" changes sides."""
    def sides(f: Facts) -> tuple[frozenset[str], frozenset[str]] | None:
        for i, markers in enumerate(f.markers):
            if _COPULA & set(markers):
                bare = [r.removesuffix("'s") for r in f.roles]
                return frozenset(bare[:i]), frozenset(bare[i:])
        return None

    sa, sb = sides(a), sides(b)
    return bool(sa and sb and sa[0] and sa[1] and sa[0] == sb[1] and sa[1] == sb[0])


def _is_stop(word: str) -> bool:
    """A stop word, also behind an apostrophe ("we're") or an alias."""
    return word in STOP_WORDS or word.split("'")[0] in STOP_WORDS or aliased(word) in STOP_WORDS


def _is_negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _typo_of(word: str, others: Iterable[str]) -> bool:
    """True when ``word`` is a one- or two-letter misspelling (transpositions count once) of one of ``others``."""
    if len(word) < 4 or not word.isalpha():
        return False
    limit = 1 if len(word) <= 6 else 2
    for other in others:
        if len(other) >= 4 and other.isalpha() and other[0] == word[0]:
            if OSA.distance(word, other) <= limit:
                return True
        if len(other) >= 5 and len(word) >= 5 and (other.startswith(word) or word.startswith(other)):
            return True  # postgres / postgresql, kube / kubernetes
    return False


def _spelled_out_in(word: str, raw: tuple[str, ...]) -> bool:
    """True when ``word`` joins or abbreviates consecutive words of the other text.

    "backend" / "back end", "timezone" / "time zone" (joined); "semver" / "semantic
    versioning", "gha" / "github actions" (prefixes of two to four consecutive words);
    "ml" / "machine learning" (a two-letter word only as the initials of two words).
    """
    if len(word) == 2:
        return any(a[:1] + b[:1] == word for a, b in zip(raw, raw[1:]))
    if len(word) < 3 or len(word) > MAX_ABBREVIATION:
        return False  # an abbreviation is short (and the blend search is exponential in length)
    for i in range(len(raw)):
        for n in (2, 3, 4):
            span = raw[i:i + n]
            if len(span) < n:
                break
            if "".join(span) == word or _prefix_blend(word, span):
                return True
    return False


def _prefix_blend(word: str, span: tuple[str, ...]) -> bool:
    """Is ``word`` a concatenation of a non-empty prefix of each word of ``span``, in order?"""
    if not span:
        return not word
    head, rest = span[0], span[1:]
    return any(word.startswith(head[:k]) and _prefix_blend(word[k:], rest) for k in range(min(len(head), len(word)), 0, -1))


def _equivalent(word: str, other: str) -> bool:
    return word == other or _typo_of(word, (other,)) or _typo_of(other, (word,))


def _swapped_slot(a: Facts, b: Facts) -> tuple[str, str] | None:
    """The one word each text has in place of the other's, when they are otherwise the same.

    "the cache TTL for sessions is short" / "... for tokens is short": same sentence, one
    slot filled differently, so a different fact, however close the embeddings are.
    The same word replaced the same way in several places is still one slot ("the billing
    service ... deploy-billing" / "the search service ... deploy-search"). Paraphrases
    change more than one slot, or swap words the aliases make equal.
    """
    matcher = SequenceMatcher(a=a.sequence, b=b.sequence, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    swaps = {(a.sequence[i1:i2], b.sequence[j1:j2]) for op, i1, i2, j1, j2 in changes}
    if not changes or any(op != "replace" for op, *_ in changes) or len(swaps) != 1:
        return None
    old, new = swaps.pop()
    if len(old) > 2 or len(new) > 2 or len(a.sequence) - len(old) < 1:
        return None
    joined_old, joined_new = "".join(old), "".join(new)
    if (_equivalent(joined_old, joined_new) or _typo_of(joined_new, a.raw) or _typo_of(joined_old, b.raw)
            or _spelled_out_in(joined_old, b.raw) or _spelled_out_in(joined_new, a.raw)):
        return None
    return " ".join(old), " ".join(new)


def blocking_guard(a: Facts, b: Facts) -> str | None:
    """The reason two texts are different facts despite looking alike, or None."""
    if set(a.numbers) != set(b.numbers):
        return "numbers differ"
    if a.negations % 2 != b.negations % 2:
        return "negation differs"
    raw_a, raw_b = {stem(w) for w in a.raw}, {stem(w) for w in b.raw}  # stop words too: "on" / "off"
    only_a = (a.terms - b.terms) | (raw_a - raw_b)
    only_b = (b.terms - a.terms) | (raw_b - raw_a)
    for group in EXCLUSIVE_GROUPS:
        if (only_a & group) and (only_b & group):
            return "exclusive alternatives differ"
    if _roles_exchanged(a, b):
        return "roles exchanged"
    if _unmatched_names(a, b) or _unmatched_names(b, a):
        return "names or identifiers differ"
    swap = _swapped_slot(a, b)
    if swap:
        return f"a word differs: {swap[0]!r} / {swap[1]!r}"
    return None


def _unmatched_names(a: Facts, b: Facts) -> set[str]:
    """Names in ``a`` that ``b`` neither contains, misspells, joins nor abbreviates."""
    return {
        n for n in a.names - b.names
        if n not in b.terms and not _typo_of(n, b.terms | b.names | set(b.raw)) and not _spelled_out_in(n, b.raw)
    }


@dataclass(frozen=True)
class Verdict:
    merge: bool
    similar: bool
    reason: str
    fuzzy: float
    #: Not the same fact but the same statement with one slot filled differently (a version,
    #: a port, a tool, a direction): the new memory likely replaces the old one.
    conflict: bool = False


def _same_subject(a: Facts, b: Facts) -> bool:
    """Is the statement about the same thing, its first content word not replaced by another?

    "the api uses Redis" / "the scheduler uses Redis" are about different subjects; "always
    squash-merge" / "never squash-merge" (a word dropped) and "port 8080" / "port 9090"
    (a later slot) are about the same one.
    """
    if not a.sequence or not b.sequence:
        return False
    first = SequenceMatcher(a=a.sequence, b=b.sequence, autojunk=False).get_opcodes()[0]
    return not (first[0] == "replace" and first[1] == 0 and first[3] == 0
                and not _equivalent("".join(a.sequence[first[1]:first[2]]), "".join(b.sequence[first[3]:first[4]])))


def judge(new: Facts, old: Facts, cosine: float) -> Verdict:
    """Decide merge / conflict / similar / unrelated for a candidate at embedding ``cosine``."""
    if new.speaker and old.speaker and new.speaker != old.speaker:  # "Ann: ..." / "Bob: ...": not one person's words
        return Verdict(False, cosine >= SIMILAR_COSINE, "different speakers", 0.0)
    fuzzy = fuzz.token_set_ratio(normalize(new.text), normalize(old.text))
    same_terms = new.terms == old.terms and cosine >= SAME_TERMS_MIN_COSINE
    shared = len(new.terms & old.terms) / max(1, len(new.terms | old.terms))
    close = (same_terms or (cosine >= MERGE_COSINE and shared >= MIN_SHARED)
             or (cosine >= PARAPHRASE_COSINE and shared >= PARAPHRASE_SHARED)
             or (fuzzy >= MERGE_FUZZY and cosine >= FUZZY_MIN_COSINE))
    if not close:
        return Verdict(False, cosine >= SIMILAR_COSINE, "not similar enough", fuzzy)
    reason = blocking_guard(new, old)
    if reason:
        return Verdict(False, True, reason, fuzzy, conflict=_same_subject(new, old))
    return Verdict(True, True, "same fact", fuzzy)
