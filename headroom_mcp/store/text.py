"""Word-level text analysis shared by deduplication and the lexical index.

Kept dependency-free and deterministic: a tokenizer, a light English suffix stripper,
stop words and abbreviations (numbers and units are read by ``quantities``).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import snowballstemmer

WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")

#: A Snowball stemmer keeps the word it works on in itself, so each thread needs its own
#: (reads index query words while the writer indexes memories).
_STEMMERS = threading.local()


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A word's Snowball stem. Cached: a store's vocabulary is small next to its words, and
    stemming them one by one was most of the time a 10,000-memory store took to open."""
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:
        stemmer = _STEMMERS.english = snowballstemmer.stemmer("english")
    stem: str = stemmer.stemWord(word)
    return stem


STOP_WORDS = frozenset(
    """a an the and or but if then than so of to in on at by for with from into onto about as
    is are was were be been being am do does did doing have has had having this that these those
    it its it's they them their there here we our us you your he him his she her i me my mine
    what which who whom whose when where why how all any both each few more most other some
    such only own same too very can will just should would could shall may might must also
    s t d ll m re ve y o up down out over again further once ok okay yes not no""".split()
)

#: Abbreviations and spelling variants mapped to one canonical word.
ALIASES = {
    "repo": "repository", "repos": "repository", "config": "configuration", "cfg": "configuration",
    "conf": "configuration", "configs": "configuration", "prs": "pr", "mr": "pr", "k8s": "kubernetes", "db": "database", "dbs": "database", "env": "environment",
    "envs": "environment", "dir": "directory", "dirs": "directory", "folder": "directory",
    "docs": "documentation", "doc": "documentation", "deps": "dependency", "dep": "dependency",
    "py": "python", "js": "javascript", "ts": "typescript", "postgresql": "postgres", "pg": "postgres",
    "msg": "message", "msgs": "message", "info": "information", "auth": "authentication",
    "authn": "authentication", "pkg": "package", "pkgs": "package", "lib": "library", "libs": "library",
    "min": "minute", "mins": "minute", "sec": "second", "secs": "second", "hr": "hour", "hrs": "hour",
    "ms": "millisecond", "gh": "github", "prod": "production",
    "dev": "development", "impl": "implementation", "fn": "function", "func": "function",
    "params": "parameter", "param": "parameter", "args": "argument", "arg": "argument",
    "app": "application", "apps": "application", "svc": "service", "w/": "with", "w/o": "without",
    "vs": "versus", "approx": "approximately", "req": "request", "reqs": "request",
    "mgr": "manager", "src": "source", "tmp": "temporary", "temp": "temporary",
    "cant": "cannot", "dont": "not", "doesnt": "not", "isnt": "not", "wont": "not",
    # near-synonyms that paraphrases swap one for the other
    "via": "through", "thru": "through", "kept": "store", "keep": "store", "keeps": "store",
    "saved": "store", "save": "store", "saves": "store", "stores": "store", "stored": "store",
    "using": "use", "uses": "use", "used": "use", "utilize": "use", "utilizes": "use",
    "needs": "require", "need": "require", "needed": "require", "requires": "require",
    "required": "require", "must": "require", "lives": "locate",
    "located": "locate", "sits": "locate", "resides": "locate", "stays": "locate",
    "employs": "use", "relies": "use", "rely": "use", "runs": "run", "ran": "run",
    "launch": "start", "launches": "start", "begin": "start", "begins": "start",
    "want": "prefer", "wants": "prefer", "wanted": "prefer",
    "fix": "repair", "fixes": "repair", "quick": "fast", "quickly": "fast",
    "large": "big", "huge": "big", "tiny": "small", "little": "small",
}

#: Multi-word and hyphenated spellings folded to one token before tokenising.
PHRASES = tuple((re.compile(pattern, re.IGNORECASE), repl) for pattern, repl in (
    (r"\b(?:pull|merge)[- ]requests?\b", "pr"), (r"\bend[- ]to[- ]end\b", "e2e"),
    (r"\btime[- ]zones?\b", "timezone"), (r"\bback[- ]end\b", "backend"),
    (r"\bfront[- ]end\b", "frontend"), (r"\bcontinuous[- ]integration\b", "ci"),
    (r"\bcommand[- ]line(?: interface)?\b", "cli"), (r"\be-mail\b", "email"),
    (r"\bweb[- ]site\b", "website"), (r"\bcode[- ]base\b", "codebase"),
    (r"\bdata[- ]base\b", "database"), (r"\bon[- ]call\b", "oncall"),
    (r"\bset[- ]up\b", "setup"), (r"\bsign[- ]in\b", "login"), (r"\blog[- ]in\b", "login"),
))

def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed, -ly): enough to match uses/use, tests/test."""
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("edly", ""), ("ed", ""),
                         ("ly", ""), ("es", "e"), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                return w
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" and word.endswith(("ing", "ed")):
        w = w[:-1]  # running → runn → run
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # uses → use → us? no: keep 3+; "configure"/"configur" match "configured"
    return w


def fold(text: str) -> str:
    """Unicode-normalise, fold case and curly quotes."""
    return unicodedata.normalize("NFKC", text).replace("’", "'").casefold()


def join_phrases(text: str) -> str:
    """``text`` with multi-word spellings ("pull request", "end-to-end") made one token."""
    for pattern, repl in PHRASES:
        text = pattern.sub(repl, text)
    return text


def normalize(text: str) -> str:
    """Folded text with phrases joined: what word-level comparisons look at."""
    return join_phrases(fold(text))


def words(text: str) -> list[str]:
    """Raw lower-cased word tokens (identifiers split on punctuation)."""
    return WORD.findall(normalize(text))


def aliased(word: str) -> str:
    """The word without apostrophes, through the alias table ("repo" → "repository")."""
    word = word.replace("'", "")
    return ALIASES.get(word, word)


def canonical(word: str) -> str:
    return stem(aliased(word))


def index_terms(text: str) -> list[str]:
    """Terms for the lexical index: aliased words without stop words, Snowball-stemmed.

    The index uses the Snowball (Porter 2) English stemmer rather than ``stem``: it joins
    more inflections ("paintings" / "painted" / "paint"), which lifted LoCoMo recall; the
    dedup guards keep the lighter ``stem``, whose conservative merges they were tuned on.
    """
    return [_stem(aliased(w)) for w in words(text) if w not in STOP_WORDS]
