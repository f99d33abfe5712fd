"""The memory record, its validation, and its mapping to Chroma documents and metadata.

Chroma metadata holds only scalars and non-empty lists, so optional fields are left out
when empty and timestamps are stored as epoch seconds (floats filter with ``$gt``); the
public form (``to_dict``) renders them as ISO-8601 UTC strings.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from ..errors import InvalidInput

#: Every scope a memory can have, widest first.
Scope = Literal["user", "project", "session", "agent", "turn"]
SCOPES: tuple[str, ...] = get_args(Scope)
#: Largest memory, in UTF-8 bytes. A memory is a fact, not a document.
MAX_CONTENT_BYTES = 8192
MAX_TAGS = 20
MAX_TAG_CHARS = 64
DEFAULT_IMPORTANCE = 0.5

ACTIVE, SUPERSEDED, FORGOTTEN = "active", "superseded", "forgotten"
#: A restatement folded into another memory (``merged_into``): kept as that memory's history,
#: searchable on its behalf, and restorable as a memory of its own (``unmerge``).
MERGED = "merged"
#: Forgotten memories stay restorable this long (seconds) before ``purge`` deletes them
#: (``HEADROOM_MCP_FORGET_RETENTION``): a forget by mistake, or by a query that took more
#: than the user meant, can be undone for a month.
DEFAULT_FORGET_RETENTION = 30 * 86400.0
#: How long a ``turn`` memory lives (seconds) unless configured otherwise (``HEADROOM_MCP_TURN_TTL``).
DEFAULT_TURN_TTL = 3600.0
#: Characters that draw nothing: C0 controls but tab and newlines, DEL, and Unicode format
#: characters (zero-width spaces and joiners, soft hyphen, bidi overrides and isolates, BOM,
#: invisible tag letters). Removed from every stored text and from what agents are shown:
#: they hide a key from the secret scanner, make twins look different, reorder how a line
#: reads, or smuggle text a person cannot see.
INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
                       "\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufeff\uffa0"
                       "\ufff9-\ufffb\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
#: Joiners and emoji variation selectors carry meaning between letters of other scripts
#: (Persian's ZWNJ) and inside emoji (👨‍👩‍👧, ❤️), and none next to ASCII, where they can only
#: split a key to hide it: dropped there, kept elsewhere.
JOINERS = re.compile("[\u200c\u200d\ufe00-\ufe0f]")
_ASCII_JOINED = re.compile("(?<=[!-~])[\u200c\u200d\ufe00-\ufe0f]+|[\u200c\u200d\ufe00-\ufe0f]+(?=[!-~])")


def visible(text: str) -> str:
    """``text`` without the characters that draw nothing (``INVISIBLE``, joiners next to ASCII)."""
    return INVISIBLE.sub("", _ASCII_JOINED.sub("", text))


def now() -> float:
    """Epoch seconds to the microsecond: what ``iso`` shows, and what comes back from Chroma
    unchanged (a full-precision float comes back one unit in the last place off for about
    one timestamp in seven, so a stored time could differ from the one reported)."""
    return round(time.time(), 6)


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO-8601 UTC with microseconds (exact round trip)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError) as exc:
        raise InvalidInput(f"not an ISO-8601 timestamp: {value!r}") from exc


def new_id() -> str:
    return "mem_" + uuid.uuid4().hex[:20]


def normalize_text(text: str) -> str:
    """Case-, width- and whitespace-insensitive form used for exact-duplicate hashing."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s./:@#+-]", " ", text)
    return " ".join(text.split()).strip(" .")


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()[:32]


# ---- validation -------------------------------------------------------------------------

def check_content(content: Any, what: str = "content") -> str:
    if not isinstance(content, str):
        raise InvalidInput(f"{what} must be a string, got {type(content).__name__}")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode (lone surrogate at {exc.start})") from None
    text = visible(content).strip()
    if not JOINERS.sub("", text).strip():
        raise InvalidInput(f"{what} is empty")
    size = len(text.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        hint = "store a fact, not a document" if what == "content" else "a few words are enough"
        raise InvalidInput(f"{what} is {size} bytes; the limit is {MAX_CONTENT_BYTES} ({hint})")
    return text


def check_scope(scope: Any, allow_none: bool = True) -> str | None:
    if scope is None and allow_none:
        return None
    if not isinstance(scope, str) or scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    return scope


def check_importance(importance: Any) -> float | None:
    if importance is None:
        return None
    if isinstance(importance, bool) or not isinstance(importance, (int, float)):
        raise InvalidInput(f"importance must be a number between 0 and 1, got {importance!r}")
    value = float(importance)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InvalidInput(f"importance must be between 0 and 1, got {importance!r}")
    return value


def check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
        raise InvalidInput(f"tags must be a list of strings, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags, got {len(tags)}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise InvalidInput(f"tags must be strings, got {tag!r}")
        tag = check_content(tag, "tag")
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"tag longer than {MAX_TAG_CHARS} characters: {tag[:20]!r}...")
        if tag not in out:
            out.append(tag)
    return out


def check_id(value: Any, what: str = "id") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidInput(f"{what} must be a memory id string, got {value!r}")
    return value.strip()


#: What an imported identity or id may look like: one word of letters, digits and ``._@:/+-``
#: (agent and user names, session ids, "github.com/acme/atlas", "mem_3f2a…"). Provenance is
#: printed in every agent's context, so an import must not smuggle prose or a key into it.
_NAME = re.compile(r"(?=.{1,256}$)[\w.@:/+\\-]+(?: [\w.@:/+\\-]+)*")
#: The identity fields of a record, and its fields holding ids of other memories.
NAME_FIELDS = ("session_id", "agent_id", "turn_id", "created_by")
NAME_LISTS = ("agents", "users")
ID_FIELDS = ("supersedes", "superseded_by", "merged_into")
STATUSES = (ACTIVE, SUPERSEDED, FORGOTTEN, MERGED)


#: A project id is derived from a git remote or a directory, which may hold spaces,
#: brackets or backslashes ("/home/me/My Project (copy)"): one printable line.
_PROJECT = re.compile(r"[^\x00-\x1f\x7f]{1,1024}")


def check_project(value: Any, what: str = "project") -> str:
    """A project id: one printable line (it is never shown in an agent's context)."""
    if not isinstance(value, str) or not _PROJECT.fullmatch(value) or INVISIBLE.search(value):
        raise InvalidInput(f"{what} must be one printable line of at most 1024 characters, got {str(value)[:40]!r}")
    return value


def check_name(value: Any, what: str) -> str:
    """An identity or id as an import must give it (``_NAME``), else ``InvalidInput``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(f"{what} must be an id (letters, digits, ._@:/+-\\ and single spaces, at most 256), got {str(value)[:40]!r}")
    return value


def check_extra(extra: Any) -> dict[str, Any]:
    """Extra metadata an import carries: named like ids, each value a short scalar."""
    if not isinstance(extra, Mapping):
        raise InvalidInput("extra must be an object")
    for key, value in extra.items():
        check_name(key, "an extra field's name")
        if isinstance(value, str) and len(value) > 1024 or not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"extra field {key!r} must be a string (at most 1 KB), a number or a boolean")
    return dict(extra)


def check_limit(limit: Any, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit must be an integer, got {limit!r}")
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    return min(limit, maximum)


# ---- the record -------------------------------------------------------------------------

@dataclass
class MemoryRecord:
    """One memory: a fact, who may see it (scope keys) and where it came from (provenance)."""

    id: str
    content: str
    scope: str
    user_id: str
    project: str = ""
    session_id: str = ""
    agent_id: str = ""
    turn_id: str = ""
    agents: list[str] = field(default_factory=list)
    #: Every user who asserted this fact, owner first (teammates merge into project memories).
    users: list[str] = field(default_factory=list)
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    importance: float = DEFAULT_IMPORTANCE
    tags: list[str] = field(default_factory=list)
    seen_count: int = 1
    supersedes: str = ""
    superseded_by: str = ""
    #: For a restatement (status ``merged``): the memory it was folded into.
    merged_into: str = ""
    #: Older memories this one replaces in one slot (same subject, a new value), best first.
    conflicts: list[str] = field(default_factory=list)
    status: str = ACTIVE
    expires_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    _FLOATS = ("created_at", "updated_at", "importance", "expires_at")
    _LISTS = ("agents", "users", "tags", "conflicts")

    def __post_init__(self) -> None:
        if not self.users and self.user_id:  # records from before team provenance
            self.users = [self.user_id]

    @classmethod
    def metadata_keys(cls) -> tuple[str, ...]:
        """The metadata keys a record's fields map to (``to_metadata`` drops the empty ones)."""
        return tuple(k for k in cls.__dataclass_fields__ if k not in ("id", "content", "extra"))

    def to_metadata(self) -> dict[str, Any]:
        """Chroma metadata: empty strings and lists dropped, the content hash added."""
        meta: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in ("id", "content", "extra"):
                continue
            if value in ("", [], None):
                continue
            meta[key] = value
        meta["hash"] = content_hash(self.content)
        for key, value in self.extra.items():
            meta[f"x_{key}"] = value
        return meta

    @classmethod
    def from_chroma(cls, id: str, document: str | None, metadata: Mapping[str, Any] | None) -> MemoryRecord:
        meta = dict(metadata or {})
        kwargs: dict[str, Any] = {"id": id, "content": document or "", "extra": {}}
        for key, value in meta.items():
            if key.startswith("x_"):
                kwargs["extra"][key[2:]] = value
            elif key in cls.__dataclass_fields__ and key not in ("id", "content", "extra"):
                kwargs[key] = list(value) if key in cls._LISTS else value
        kwargs.setdefault("scope", "user")
        kwargs.setdefault("user_id", "")
        return cls(**kwargs)

    def age_days(self, at: float) -> float:
        """Days since the last update as of ``at`` (never negative: clocks of replicas differ)."""
        return max(0.0, (at - self.updated_at) / 86400)

    def to_dict(self) -> dict[str, Any]:
        """The public form: the fields DESIGN.md names, timestamps as ISO strings."""
        out = asdict(self)
        out["created_at"] = iso(self.created_at)
        out["updated_at"] = iso(self.updated_at)
        out["expires_at"] = iso(self.expires_at) if self.expires_at else None
        if not out["extra"]:
            del out["extra"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryRecord:
        """Inverse of ``to_dict`` (used by import): validates what it reads."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["content"] = check_content(fields.get("content"))
        fields["scope"] = check_scope(fields.get("scope"), allow_none=False)
        fields["tags"] = check_tags(fields.get("tags"))
        for key in ("created_at", "updated_at", "expires_at"):
            value = fields.get(key)
            if isinstance(value, str):
                fields[key] = parse_iso(value)
            elif value is None:
                fields.pop(key, None)
        if "importance" in fields:
            fields["importance"] = check_importance(fields["importance"])
        fields["id"] = check_name(fields.get("id"), "id")
        for key in (*NAME_FIELDS, *ID_FIELDS):
            if fields.get(key):
                check_name(fields[key], key)
        if fields.get("project"):
            check_project(fields["project"])
        for key in (*NAME_LISTS, "conflicts"):
            value = fields.get(key) or []
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise InvalidInput(f"{key} must be a list")
            fields[key] = [check_name(v, f"each of {key}") for v in value]
        if fields.get("status", ACTIVE) not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {fields['status']!r}")
        count = fields.get("seen_count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInput(f"seen_count must be a positive integer, got {count!r}")
        fields["extra"] = check_extra(fields.get("extra") or {})
        return cls(**fields)

    def provenance(self) -> list[tuple[str, str]]:
        """(field, text) of every string besides the content that the record carries, for
        import to screen: identities, ids, and each extra field as ``name=value`` (so that
        ``{"db_password": "…"}`` reads as the assignment it is)."""
        out = [(k, getattr(self, k)) for k in ("id", "project", *NAME_FIELDS, *ID_FIELDS) if getattr(self, k)]
        out += [(k, v) for k in (*NAME_LISTS, "conflicts") for v in getattr(self, k)]
        return out + [(f"extra.{k}", f"{k}={v}") for k, v in self.extra.items()]


def appended_once(items: Iterable[str], item: str) -> list[str]:
    """A provenance list (agents, users) with ``item`` appended once, first author kept first."""
    out = list(dict.fromkeys(a for a in items if a))
    if item and item not in out:
        out.append(item)
    return out
