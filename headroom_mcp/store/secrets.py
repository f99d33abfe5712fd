"""Credentials in memory text: found before anything is stored, then redacted or refused.

A memory is shown to every agent of the user in later sessions, printed by the CLI and
copied into exports, so a key pasted into a fact would leak far from where it was typed.
``remember`` and ``import`` therefore scan content for provider keys, tokens, private key
blocks, passwords in URLs, ``.env``-style assignments and long high-entropy strings, and
either replace each with ``[REDACTED:<kind>]`` (the default) or refuse the write
(``HEADROOM_MCP_SECRETS=refuse``). Look-alikes that are not secrets stay: hex digests
(git SHAs, checksums), UUIDs, and keys marked as examples (``AKIAIOSFODNN7EXAMPLE``,
"example key: ...", placeholders such as ``<your-token>`` or ``${TOKEN}``).
Measured by ``bench/secrets_eval.py`` on ``bench/data/secrets.jsonl``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from ..errors import InvalidInput

POLICIES = ("redact", "refuse")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


#: (kind, pattern); when the pattern has a group named ``v`` only that part is the secret.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(p)) for kind, p in (
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)"),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-key", r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("stripe-key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi-token", r"\bpypi-AgE[A-Za-z0-9_-]{40,}"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("twilio-key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("sendgrid-key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{30,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("bearer-token", r"(?i)\b(?:bearer|authorization:\s*token)\s+(?P<v>[A-Za-z0-9_\-.=/+~]{16,})"),
    ("basic-auth", r"(?i)\bauthorization:\s*basic\s+(?P<v>[A-Za-z0-9+/=]{8,})"),
    # Greedy up to the last "@" before the host: a password may itself hold an "@".
    ("url-password", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:(?P<v>[^\s/]{3,})@[^\s@/]+"),
    # KEY=value and "password: value": key names are UPPER_SNAKE or lower_snake with a
    # secret word as a whole segment (not "tokenizer", "author", "max_tokens").
    ("env-secret", r"(?:\b[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*"
                   r"|\b(?:[a-z0-9]+_)*(?:password|passwd|secret|token|api_?key|access_?key|private_?key|credentials?)(?:_[a-z0-9]+)*\b)"
                   r"\s*(?:[=:]|\bis\b)\s*(?:\"(?P<q>[^\"\n]{4,})\"|'(?P<s>[^'\n]{4,})'|(?P<v>[^\s\"']{6,}))"),
))

#: Tokens of the shape random keys have; scored by entropy below.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_/+=.-])[A-Za-z0-9_/+=-]{24,}(?![A-Za-z0-9_/+=-])")
#: Digests and ids that look random but are not secrets: hex (git SHAs, checksums), UUIDs,
#: and subresource-integrity hashes of lockfiles (``sha512-<base64>``).
_DIGEST = re.compile(r"^(?:[0-9a-fA-F]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|sha(?:1|256|384|512)-.*)$")
_EXAMPLE_WORDS = re.compile(r"(?i)example|sample|dummy|fake|placeholder|redacted|your[_-]|changeme|x{4,}|\*{3,}|\.\.\.|<[^>]*>|\$\{|^\$[A-Z_]+$")
_MARKED_AS_EXAMPLE = re.compile(r"(?i)\b(?:e\.g\.|for example|for instance|example|sample|dummy|fake|placeholder)\b[^.\n]{0,40}$")


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())


def _looks_random(token: str) -> bool:
    """Long, mixed upper/lower/digits, and about as varied as random base62 text."""
    if _DIGEST.match(token) or "/" in token.strip("/") and not any(c.isdigit() for c in token):
        return False
    words = re.findall(r"[A-Z]?[a-z]{2,}", token)
    if sum(len(w) for w in words) >= 0.6 * len(token):
        return False  # an identifier made of words: getUserProfileByIdV2Handler2024
    classes = sum((any(c.islower() for c in token), any(c.isupper() for c in token), any(c.isdigit() for c in token)))
    return classes == 3 and _entropy(token) >= 4.2


def _is_example(text: str, start: int, end: int, context: bool = True) -> bool:
    """An example or placeholder value; the words before it count only for generic kinds
    (a provider-prefixed key is real unless its value itself says it is an example)."""
    value = text[start:end]
    line_start = text.rfind("\n", 0, start) + 1
    return bool(_EXAMPLE_WORDS.search(value) or (context and _MARKED_AS_EXAMPLE.search(text[line_start:start])))


#: Kinds found by a key name rather than the value's own shape.
_ASSIGNED = frozenset({"env-secret", "url-password"})
_GENERIC = frozenset({"env-secret", "url-password", "bearer-token", "basic-auth", "high-entropy-string"})
_REFERENCE = re.compile(r"^(?:\$|%|~|/|\./|\.\./|<|os\.environ|os\.getenv|process\.env|env\(|getenv|secrets\.|vault:|\{\{)", re.I)


def _assigned_value_is_secret(value: str, quoted: bool) -> bool:
    """A value next to a secret-sounding key: a literal secret, not a reference or a word."""
    if _REFERENCE.match(value) or value.isdigit():
        return False
    if quoted:
        return len(value) >= 6
    return len(value) >= 16 or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)) \
        or any(not c.isalnum() and c not in "-_." for c in value)


def find(text: str) -> list[Finding]:
    """Every secret in ``text``, non-overlapping, in order."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int, generic: bool = True) -> None:
        if any(s < end and start < e for s, e in taken) or _is_example(text, start, end, context=generic):
            return
        found.append(Finding(kind, start, end))
        taken.append((start, end))

    for kind, pattern in PATTERNS:
        for match in pattern.finditer(text):
            group = next((g for g in ("q", "s", "v") if g in pattern.groupindex and match.group(g) is not None), None)
            start, end = match.span(group) if group else match.span()
            if group == "v":
                while end > start and text[end - 1] in ".,;:)]}":
                    end -= 1  # sentence punctuation after an unquoted value
            if kind in _ASSIGNED and not _assigned_value_is_secret(text[start:end], quoted=group in ("q", "s")):
                continue
            if kind == "bearer-token" and not any(c.isdigit() for c in text[start:end]):
                continue  # "bearer authentication-middleware" is prose, a token has digits
            add(kind, start, end, generic=kind in _GENERIC)
    for match in _TOKEN.finditer(text):
        if _looks_random(match.group()):
            add("high-entropy-string", *match.span())
    return sorted(found, key=lambda f: f.start)


def redact(text: str, findings: list[Finding]) -> str:
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[: f.start] + f"[REDACTED:{f.kind}]" + text[f.end :]
    return text


def screen(content: str, policy: str, what: str = "content") -> tuple[str, list[str]]:
    """``content`` with its secrets redacted, and their kinds; or ``InvalidInput`` under "refuse".

    A text that is nothing but a secret is refused under either policy: there is no fact left.
    """
    findings = find(content)
    if not findings:
        return content, []
    kinds = sorted({f.kind for f in findings})
    if policy == "refuse":
        raise InvalidInput(f"{what} contains what looks like a secret ({', '.join(kinds)}); nothing was stored. "
                           "Remember where the secret lives (an env var, a vault path), never its value.")
    cleaned = redact(content, findings)
    if len(re.sub(r"\[REDACTED:[a-z-]+\]|\W", "", cleaned)) < 3:
        raise InvalidInput(f"{what} is only a secret ({', '.join(kinds)}); nothing was stored")
    return cleaned, kinds


def screen_tags(tags: list[str], what: str = "", outcome: str = "nothing was stored") -> list[str]:
    """``tags`` unchanged, or ``InvalidInput`` when one looks like a secret (tags are shown and exported too)."""
    if any(find(tag) for tag in tags):
        raise InvalidInput(f"{what}a tag looks like a secret; {outcome}")
    return tags
