"""Numbers with their units, read into one canonical form so that spellings compare equal.

"250 ms" and "250ms", "10 minutes" and "10 min", "14 days" and "two weeks", "1,024 MB" and
"1 GB", "5k" and "5,000", "90%" and "90 percent", "17:00" and "5 pm", "3:00" and "3am" state
the same quantity; "3.12" and "3.11" (versions), "30 s" and "30 min" do not. Deduplication
compares the quantities a text states as a multiset of canonical strings, and compares the
rest of the text with every quantity taken out (``strip``), so a unit spelled differently is
never mistaken for a different word.
"""

from __future__ import annotations

import re
from fractions import Fraction

#: Unit spelling -> (dimension, factor to the dimension's base unit).
_UNITS: dict[str, tuple[str, Fraction]] = {}


def _unit(dimension: str, factor: Fraction | int, *spellings: str) -> None:
    for spelling in spellings:
        _UNITS[spelling] = (dimension, Fraction(factor))


_unit("time", Fraction(1, 10**9), "ns", "nanosecond", "nanoseconds")
_unit("time", Fraction(1, 10**6), "us", "µs", "μs", "microsecond", "microseconds")
_unit("time", Fraction(1, 1000), "ms", "msec", "msecs", "millisecond", "milliseconds")
_unit("time", 1, "s", "sec", "secs", "second", "seconds")
_unit("time", 60, "m", "min", "mins", "minute", "minutes")
_unit("time", 3600, "h", "hr", "hrs", "hour", "hours")
_unit("time", 86400, "d", "day", "days")
_unit("time", 7 * 86400, "w", "wk", "wks", "week", "weeks")
_unit("size", 1, "b", "byte", "bytes")
_unit("size", 1024, "kb", "kib", "kilobyte", "kilobytes")
_unit("size", 1024**2, "mb", "mib", "megabyte", "megabytes", "meg", "megs")
_unit("size", 1024**3, "gb", "gib", "gigabyte", "gigabytes", "gig", "gigs")
_unit("size", 1024**4, "tb", "tib", "terabyte", "terabytes")
_unit("percent", 1, "%", "percent", "pct")
_unit("ratio", 1, "x")
_unit("px", 1, "px")
_unit("per-time", 1, "hz")

NUMBER_WORDS: dict[str, int | Fraction] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100, "thousand": 1000,
    "twice": 2, "double": 2, "dozen": 12, "half": Fraction(1, 2),
}
_NUMBER_WORD = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_UNIT = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))

# A time of day: 17:00, 9:30am, 9:30 a.m., 5 pm, 3am (a bare hour needs am/pm).
_CLOCK = re.compile(r"(?<![\w.:])(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?![\w])|(?<![\w.:])(\d{1,2}):(\d{2})(?![\w:])", re.I)
# A version: two or more dots (1.2.3) or a leading v (v3.12); compared as written.
_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+){2,})(?![\w.])|(?<![\w.])v(\d+(?:\.\d+)*)(?![\w.])", re.I)
# A number (1,000 / 5k / 2.5 / 1_000) or number word, then optionally "per" / "/" / "a", then a unit.
_AMOUNT = re.compile(
    rf"(?<![\w.])(?:(\d{{1,3}}(?:,\d{{3}})+|\d+(?:_\d+)*(?:\.\d+)?)(k)?|({_NUMBER_WORD})(?:[ -]({_NUMBER_WORD}))?)"
    rf"(?:\s*(/|per\s+|an?\s+)?\s*({_UNIT})(?![\w]))?",
    re.I,
)


def _format(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    try:
        return f"{float(value):g}"
    except OverflowError:
        return f"{value.numerator}/{value.denominator}"


#: Longer digit runs are ids or hashes, compared as written (and Fraction refuses huge ones).
_MAX_DIGITS = 30


def _amount(digits: str | None, kilo: str | None, word: str | None, word2: str | None,
            per: str | None, unit: str | None) -> str | None:
    """The canonical form of one number-with-unit match, or None when it states no quantity."""
    if digits is not None:
        plain = digits.replace(",", "").replace("_", "")
        if len(plain) > _MAX_DIGITS:
            return f"n:{plain}"
        value = Fraction(plain)
        if kilo:
            value *= 1000
    else:
        if word is None:
            return None
        first = NUMBER_WORDS.get(word.lower())  # the regex matches case-insensitively: "ſix" is not "six"
        if first is None:
            return None
        value = Fraction(first)
        if word2:
            second = NUMBER_WORDS.get(word2.lower())
            if second is None:
                return None
            value = value * second if second >= 100 else value + second
        if not unit and word.lower() in ("half", "double", "twice", "dozen", "one"):
            return None  # "one of the", "half the team": not a stated quantity without a unit
    known = _UNITS.get(unit.lower()) or _UNITS.get(unit) if unit else None
    if unit and known is None:
        unit, known = None, None
    if known is not None:
        dimension, factor = known
        if per and not (per.strip() in ("a", "an") and value < 1):  # 100/min, a hundred a minute; not "half a second"
            return f"per-{dimension}:{_format(value / factor)}"
        return f"{dimension}:{_format(value * factor)}"
    if digits is not None and "." in digits:
        return f"n:{digits}"  # 3.10 is not 3.1: versions compare as written
    return f"n:{_format(value)}"


def _scan(text: str) -> list[tuple[int, int, str]]:
    """(start, end, canonical) for every quantity in ``text``, in order."""
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for m in _CLOCK.finditer(text):
        if m.group(3):
            hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3).lower()[0]
            hour = hour % 12 + (12 if half == "p" else 0)
        else:
            hour, minute = int(m.group(4)), int(m.group(5))
        if hour < 24 and minute < 60:
            found.append((m.start(), m.end(), f"clock:{hour:02d}:{minute:02d}"))
            taken.append((m.start(), m.end()))
    for m in _VERSION.finditer(text):
        if free(m.start(), m.end()):
            found.append((m.start(), m.end(), f"n:{m.group(1) or m.group(2)}"))
            taken.append((m.start(), m.end()))
    for m in _AMOUNT.finditer(text):
        if not free(m.start(), m.end()):
            continue
        try:
            canonical = _amount(*m.groups())
        except (ArithmeticError, ValueError):  # a 5,000-digit "number": no quantity to compare
            canonical = None
        if canonical is not None:
            found.append((m.start(), m.end(), canonical))
            taken.append((m.start(), m.end()))
    return sorted(found)


def quantities(text: str) -> list[str]:
    """The canonical quantities ``text`` states, in order ("time:0.25", "clock:17:00", "n:3.12")."""
    return [q for *_, q in _scan(text)]


def strip(text: str) -> str:
    """``text`` with each quantity replaced by a placeholder word (``qty``), so that word-level
    comparisons see where a quantity stood but not how it was spelled."""
    out, last = [], 0
    for start, end, _ in _scan(text):
        out.append(text[last:start])
        out.append(" qty ")
        last = end
    out.append(text[last:])
    return "".join(out)
