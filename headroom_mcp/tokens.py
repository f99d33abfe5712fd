"""Bearer tokens for team mode: who a request is, which projects it may touch, and its role.

A token is ``hmcp_<id>_<secret>``. Only a SHA-256 of the secret is kept, in a JSON file
(``tokens.json`` in the data dir, mode 0600, or ``HEADROOM_MCP_TOKENS_FILE``), so reading
the file does not give anyone a working token; the secret is 256 random bits, which is why
a fast hash is enough. The id is public: ``token list`` shows it and ``token revoke`` takes it.

The server reads the file on every request (it is small; it is parsed again only when its
bytes changed), so a token created or revoked with the CLI counts from the next request,
on every replica that reads the same file, whatever the file system's timestamp precision.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInput, NotFound
from .store.scopes import ALL_PROJECTS, ROLES, covers

PREFIX = "hmcp_"
_TOKEN = re.compile(r"^hmcp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
MAX_PROJECT_CHARS = 512


def looks_like_token(value: str) -> bool:
    """Is ``value`` shaped like a token ``create`` makes (``hmcp_<id>_<secret>``)?"""
    return bool(_TOKEN.match(value))


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: the identity and permissions a request is made with."""

    id: str
    user_id: str
    projects: tuple[str, ...]
    role: str
    name: str = ""
    created_at: float = 0.0

    def may_touch(self, project: str) -> bool:
        return covers(self.projects, project)

    def default_project(self) -> str:
        """The project a request names none for: the token's only one, else none."""
        return self.projects[0] if len(self.projects) == 1 and self.projects[0] != ALL_PROJECTS else ""

    def public(self) -> dict[str, Any]:
        """The fields ``token list`` shows (never the hash)."""
        out = asdict(self)
        out["projects"] = list(self.projects)
        return out


@dataclass
class _Entry:
    grant: Grant
    digest: str = field(repr=False)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_grant_fields(user_id: Any, projects: Any, role: Any) -> tuple[str, tuple[str, ...], str]:
    """Validate what a new token grants; error messages say what is accepted."""
    if not isinstance(user_id, str) or not _USER.match(user_id):
        raise InvalidInput(f"user must be 1-64 letters, digits or ._@+- (starting with a letter or digit), got {user_id!r}")
    if isinstance(projects, str) or not isinstance(projects, (list, tuple)) or not projects:
        raise InvalidInput("give at least one project (or '*' for every project)")
    cleaned: list[str] = []
    for project in projects:
        if not isinstance(project, str) or not project.strip() or len(project) > MAX_PROJECT_CHARS:
            raise InvalidInput(f"a project must be a non-empty string of at most {MAX_PROJECT_CHARS} characters, got {project!r}")
        if project.strip() not in cleaned:
            cleaned.append(project.strip())
    if ALL_PROJECTS in cleaned:
        cleaned = [ALL_PROJECTS]
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return user_id, tuple(cleaned), role


class TokenFile:
    """The tokens file: create, list and revoke (the CLI), and verify (the server)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser()
        self._entries: dict[str, _Entry] = {}
        self._raw: bytes | None = None

    # -- reading --

    def _load(self) -> dict[str, _Entry]:
        """The entries, parsed again only when the file's bytes changed since the last read."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            raise InvalidInput(f"cannot read the tokens file {self.path}: {exc}") from None
        if raw != self._raw:
            self._entries = self._parse(raw)
            self._raw = raw
        return self._entries

    def _parse(self, raw: bytes) -> dict[str, _Entry]:
        """Every entry checked as ``create`` would (a hand edit must not widen a grant)."""
        try:
            text = raw.decode("utf-8")
            data = json.loads(text) if text.strip() else {"tokens": []}
            entries = {}
            for item in data["tokens"]:
                user_id, projects, role = check_grant_fields(item["user_id"], item["projects"], item["role"])
                grant = Grant(id=str(item["id"]), user_id=user_id, projects=projects, role=role,
                              name=str(item.get("name", "")), created_at=float(item.get("created_at", 0)))
                entries[grant.id] = _Entry(grant, str(item["sha256"]))
        except (ValueError, KeyError, TypeError, InvalidInput) as exc:
            raise InvalidInput(f"{self.path} is not a valid tokens file ({exc}); fix or remove it") from None
        return entries

    def verify(self, token: str) -> Grant | None:
        """The grant of a presented token, or None when it is unknown, revoked or malformed."""
        match = _TOKEN.match(token or "")
        if not match:
            return None
        entry = self._load().get(match.group(1))
        if entry is None or not hmac.compare_digest(entry.digest, _digest(match.group(2))):
            return None
        return entry.grant

    def grants(self) -> list[Grant]:
        return [e.grant for e in self._load().values()]

    def __bool__(self) -> bool:
        return bool(self._load())

    # -- writing (the CLI) --

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, _Entry]]:
        """Lock, read, let the caller change the entries, and write them back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = dict(self._load())
            yield entries
            items = [{**e.grant.public(), "sha256": e.digest} for e in entries.values()]
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump({"version": 1, "tokens": items}, out, indent=2)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def create(self, user_id: Any, projects: Any, role: Any = "write", name: str = "") -> tuple[str, Grant]:
        """A new token for ``user_id``: returns the token (shown once) and its grant."""
        user_id, cleaned, role = check_grant_fields(user_id, projects, role)
        secret = secrets.token_urlsafe(32)
        with self._editing() as entries:
            token_id = secrets.token_hex(6)
            while token_id in entries:
                token_id = secrets.token_hex(6)
            grant = Grant(id=token_id, user_id=user_id, projects=cleaned, role=role, name=name, created_at=time.time())
            entries[token_id] = _Entry(grant, _digest(secret))
        return f"{PREFIX}{token_id}_{secret}", grant

    def revoke(self, token_id: str) -> Grant:
        """Remove a token; requests carrying it are refused from the next one on."""
        with self._editing() as entries:
            entry = entries.pop(token_id, None)
            if entry is None:
                raise NotFound(f"no token with id {token_id!r} in {self.path}; `headroom-mcp token list` shows the ids")
        return entry.grant
