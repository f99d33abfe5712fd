"""Our own context rules for credentials, on top of the Betterleaks rule base (``secrets``).

What a memory holds and a repository scanner is not built for: a value given to a name that
says it is a credential (``DB_PASSWORD=…``, "the HMAC secret for webhooks: …", a flag, an
XML element), and long random-looking tokens; and what marks a look-alike as no secret:
a digest or id, an example or placeholder, a reference to where the secret lives, a
public key, an address in a URL.
"""

from __future__ import annotations

import base64
import binascii
import html
import math
import re
from collections import Counter

#: Query parameters that carry a credential (Azure SAS "sig", Google "key", "X-Amz-Signature").
SECRET_PARAM = r"(?:[\w.-]*[_-])?(?:api[_-]?key|key|app[_-]?id|app[_-]?key|token|access[_-]?token|auth|sig|signature|secret|password|pwd|credential)"

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
                         "via", "by", "at", "as", "is", "was", "be", "it", "this", "that", "user", "username", "host",
                         # placeholder values and the names of auth schemes
                         "test", "testing", "mock", "local", "basic", "bearer", "oauth", "oauth2", "jwt", "sso", "saml", "oidc"})
#: A quantity ("3600s", "90d", "8kb"): a setting's value, not a secret.
_QUANTITY = re.compile(r"\d+(?:\.\d+)?[a-zA-Z%]{0,3}")


def is_template(value: str) -> bool:
    """Letters only and naming a secret: a template or a type ("password: PASSWORD",
    "Password=myPassword", "api_key: SecretStr", "insecure-test-key")."""
    return bool(re.fullmatch(r"[A-Za-z_-]+", value) and re.search(r"(?i)pass|secret|token|key", value))


def _is_path(value: str) -> bool:
    """A path of words ("projects/2280/secrets/stripe-webhook/versions/latest"): where a secret lives."""
    parts = value.strip("/").split("/")
    return len(parts) >= 3 and all(re.fullmatch(r"[\w.-]+", p) for p in parts) and any(re.fullmatch(r"[A-Za-z]{3,}", p) for p in parts)


def is_secret_value(value: str, sep: str) -> bool:
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
    if is_template(value):
        return False
    if quoted and ("=" in sep or ":" in sep) or ":" in sep or sep in ("=", "=>"):
        return True  # a quoted literal, KEY=value (a .env line), key: value (YAML, JSON, a header)
    # Prose ("the password is ..."), a flag's argument, or code's "secret = <expression>".
    return len(value) >= 6 and (any(c.isdigit() for c in value) or any(c.isupper() for c in value[1:])
                                or any(not c.isalnum() and c not in "-_." for c in value))


def _is_random_value(value: str) -> bool:
    """A value that is plainly a key whatever precedes it: random-looking, or long hex or a UUID."""
    return looks_random(value) or HEX.fullmatch(value) is not None


def is_named_default(text: str, start: int, end: int) -> bool:
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


def named(text: str) -> list[tuple[str, int, int]]:
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
            if not is_secret_value(m["value"], " is " if prose else m["sep"]) or _is_default(word, m["value"]):
                m = None  # after "NAME: " prose goes on ("HF_TOKEN: newer versions honour…"): it must look like a password
        if m is None:
            m = _PROSE_GIVEN.match(text, name.end())
            if m is None or not is_secret_value(m["value"], " is "):
                continue
        start, end = m.span("value")
        if m["value"][:1] in "\"'`":
            start, end = start + 1, end - 1
        else:
            while end > start and text[end - 1] in _SENTENCE_END:
                end -= 1
        out.append(("named-secret", start, end))
    for m in _ELEMENTS.finditer(text):
        if _names_a_secret(m["name"]) and is_secret_value(m["value"], "="):
            out.append(("named-secret", m.start("value"), m.end("value")))
    for m in _ATTRIBUTES.finditer(text):
        if _names_a_secret(m["name"]) and is_secret_value(m["value"], "="):
            out.append(("named-secret", m.start("value") + 1, m.end("value") - 1))
    return out


def named_in_markup(text: str) -> list[tuple[str, int, int]]:
    """``named`` on HTML-escaped text (``name=&quot;smtp_password&quot; value=&quot;…``),
    each value found again in the text as written."""
    plain = html.unescape(text) if "&" in text else text
    if plain == text:
        return []
    out = []
    for kind, start, end in named(plain):
        at = text.find(plain[start:end])
        if at >= 0:
            out.append((kind, at, at + end - start))
    return out


#: Tokens of the shape random keys have; scored by entropy below. Dots join the parts of
#: one token (Discord bot tokens); "/" splits URL path segments, each judged alone.
TOKEN = re.compile(r"(?<![A-Za-z0-9_+.-])[A-Za-z0-9_+.-]{20,}={0,2}(?![A-Za-z0-9_+=-])")
#: Long hex, and UUIDs: digests and ids, unless the sentence before them names a key.
HEX = re.compile(r"(?<![\w-])(?:[0-9a-fA-F]{32,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})(?![\w-])")
SECRET_WORD = re.compile(r"(?i)\b(?:(?:" + "|".join(sorted(_KEY_OWNERS)) + r")[ _-]?keys?|tokens?|secrets?|passwords?|credentials?|creds|auth|login)\b")
DIGEST_WORD = re.compile(r"(?i)\b(?:sha\w*|md5|hash(?:es)?|digest|checksum|commit|fingerprint|etag|integrity|ids?|uuid\w*|build|image|"
                          r"object|request|trace|revision|version|public|publishable|sid|identifier|idempotency)\b|arn:|://")
#: A token split into groups by spaces: "hf_vECOPZ wjRjNXQYt nxokzZEhw".
SPACED = re.compile(r"(?<![\w-])[A-Za-z0-9_]{4,16}(?: [A-Za-z0-9_]{4,16}){2,7}(?![\w-])")
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
PUBLIC_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*(?:PUBLIC KEY|CERTIFICATE)(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)")
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
    from .secrets import find  # the whole scan, which these rules are part of, reads the decoded text

    text = _encoded_text(token)
    return text is not None and not re.fullmatch(r"[\w.@+-]+:\S{3,}", text) and not find(text)


def looks_random(token: str) -> bool:
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


def is_example(text: str, start: int, end: int, context: bool = True) -> bool:
    """An example or placeholder value; the words before it count only for generic kinds
    (a provider-prefixed key is real unless its value itself says it is an example)."""
    value = text[start:end]
    line_start = text.rfind("\n", 0, start) + 1
    return bool(any(value in d for d in _DOCUMENTED) or _EXAMPLE_WORDS.search(value) or (context and _MARKED_AS_EXAMPLE.search(text[line_start:start])))


def is_public(text: str, start: int, blocks: list[tuple[int, int]]) -> bool:
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
        return param is None or not re.fullmatch(SECRET_PARAM, param.group(1), re.I)
    if "/" not in rest:
        return False  # still in the authority: a user or password (judged by url-password) as well as a host
    return not _SECRET_PATH.search(rest.split("/", 1)[1])


def basic_is_credentials(value: str) -> bool:
    """``Basic <base64>`` holds a credential when it decodes to ``user:password``."""
    raw = _decoded(value)
    try:
        return raw is not None and ":" in (decoded := raw.decode()) and decoded.isprintable()
    except UnicodeDecodeError:
        return False
