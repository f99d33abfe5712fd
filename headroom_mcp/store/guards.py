"""Why two texts that look alike are different facts: the guards a merge must pass (``blocking_guard``).

They block when the texts differ in a number or version, in polarity (negation), in one
of a set of mutually exclusive words (staging/production, tabs/spaces...), in the roles of
the same words (who calls whom), in a name or identifier, or in the one word that fills a
slot; a typo, a joined or an abbreviated word is not a difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import SequenceMatcher

from rapidfuzz.distance import OSA

from .facts import Facts
from .text import stem

#: Longest word read as the joined or abbreviated form of several words ("semver", "backend").
MAX_ABBREVIATION = 12
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


#: Words between two exchanged terms that keep the statement symmetric: "X is the Y" /
#: "the Y is X", "lint and tests" / "tests and lint". Anything else between them (a verb,
#: "to", "over", "from", "not") gives each term a role, and exchanging them changes the fact.
SYMMETRIC = frozenset("is are was were be and or the a an vs versus equals plus both also where which that what".split())
_COPULA = frozenset("is are was were".split())
_ARTICLES = frozenset("the a an , ;".split())



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


def equivalent(word: str, other: str) -> bool:
    """The same word, or a misspelling of it either way."""
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
    if (equivalent(joined_old, joined_new) or _typo_of(joined_new, a.raw) or _typo_of(joined_old, b.raw)
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
