"""Is a new memory the same fact as an existing one?

Embedding cosine alone is not enough: MiniLM puts "targets Python 3.12" and "... 3.11" at
0.97 and "Always squash-merge" / "Never squash-merge" at 0.98. So a merge needs high
similarity (cosine, or fuzzy token overlap for typos and re-orderings) *and* no guard
firing. Guards block when the texts differ in a number or version, in polarity (negation),
in one of a set of mutually exclusive words (staging/production, tabs/spaces...), or in a
name or identifier (a word the embedding model's vocabulary does not know, a path, an env
var, a capitalised name). When in doubt the memory is created and the close one is
reported in ``similar``.

What a text states is read by ``facts``, the guards are in ``guards``; this module holds the
thresholds and the decision (``judge``).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from rapidfuzz import fuzz

from .facts import Facts
from .guards import blocking_guard, equivalent
from .text import normalize

__all__ = ["Facts", "Verdict", "blocking_guard", "judge"]

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
#: Report as ``similar`` (close but not merged) from this cosine up.
SIMILAR_COSINE = 0.60


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
                and not equivalent("".join(a.sequence[first[1]:first[2]]), "".join(b.sequence[first[3]:first[4]])))


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
