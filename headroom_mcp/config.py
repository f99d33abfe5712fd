"""Settings resolved from flags, then ``HEADROOM_MCP_*`` environment variables, then defaults.

Every process (daemon, stdio server, hooks, CLI, ``Memory()``) resolves them the same way,
so two of them started with the same environment agree on the data dir and identity. This
is the one module that resolves those variables (the CLI asks the environment only whether
a session was named, and install which variables to pass on to Codex); a daemon is started
with ``Settings.to_env``.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput
from .project import project_id
from .store.faults import DEFAULT_MIN_FREE
from .store.records import DEFAULT_FORGET_RETENTION, DEFAULT_TURN_TTL
from .store.scopes import Context

APP_NAME = "headroom-mcp"
#: The daemon exits after this many seconds with no clients and no requests.
DEFAULT_IDLE_TIMEOUT = 900.0
#: The loopback names: where an HTTP server may run without tokens (the ones the MCP SDK's
#: DNS-rebinding protection covers), and where plain http is not worth a warning.
LOOPBACK = ("127.0.0.1", "::1", "localhost")

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: A century: past it a timestamp no longer fits a date.
_MAX_DURATION = 100 * 365 * 86400.0


def _megabytes(text: str | None, name: str) -> int:
    """Bytes in a number of megabytes (``64``, ``0.5``); the default reserve when unset."""
    if not text:
        return DEFAULT_MIN_FREE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise InvalidInput(f"{name} must be a number of megabytes such as 64; got {text!r}")
    return int(value * 1024 * 1024)


def duration(text: str, name: str) -> float:
    """Seconds in ``text``: a number with an optional unit (``90``, ``90s``, ``15m``, ``12h``, ``30d``, ``2w``).

    Raises ``InvalidInput`` naming the variable, so a typo in the environment is reported
    at start instead of becoming a zero that purges everything at once.
    """
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not found or not math.isfinite(seconds := float(found[1]) * _UNITS[found[2]]) or seconds > _MAX_DURATION:
        raise InvalidInput(f"{name} must be a duration such as 3600, 90m, 12h or 30d (at most 100 years); got {text!r}")
    return seconds


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def named_project(env: Mapping[str, str] | None = None) -> str:
    """The project ``HEADROOM_MCP_PROJECT`` names, or "" (then callers decide: the working
    directory's repository, or none)."""
    return (os.environ if env is None else env).get("HEADROOM_MCP_PROJECT", "")


def os_user() -> str:
    """The default user id: the OS user name."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return os.environ.get("USER") or "user"


@dataclass(frozen=True)
class EmbedderChoice:
    """Which embedder the store uses: an OpenAI-compatible endpoint (``url``, ``model``,
    ``api_key``), another ONNX model directory, or (all empty) the bundled one."""

    url: str = ""
    model: str = ""
    #: ``HEADROOM_MCP_EMBED_API_KEY``, else ``OPENAI_API_KEY``. Kept out of reprs (and logs).
    api_key: str = field(default="", repr=False)
    model_dir: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmbedderChoice:
        return cls(url=env.get("HEADROOM_MCP_EMBED_URL", ""), model=env.get("HEADROOM_MCP_EMBED_MODEL", ""),
                   api_key=env.get("HEADROOM_MCP_EMBED_API_KEY") or env.get("OPENAI_API_KEY") or "",
                   model_dir=env.get("HEADROOM_MCP_EMBED_MODEL_DIR", ""))

    def to_env(self) -> dict[str, str]:
        return {"HEADROOM_MCP_EMBED_URL": self.url, "HEADROOM_MCP_EMBED_MODEL": self.model,
                "HEADROOM_MCP_EMBED_API_KEY": self.api_key, "HEADROOM_MCP_EMBED_MODEL_DIR": self.model_dir}


@dataclass
class Settings:
    """Where the store is and who is speaking. Build with ``Settings.resolve``."""

    data_dir: Path
    user_id: str
    agent_id: str = ""
    project: str = ""
    session_id: str = ""
    chroma_url: str = ""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    turn_ttl: float = DEFAULT_TURN_TTL
    forget_retention: float = DEFAULT_FORGET_RETENTION
    #: What a write holding a credential gets: "redact" (default) or "refuse".
    secrets: str = "redact"
    #: Writes are refused while the data dir's disk has less free space than this, bytes
    #: (``HEADROOM_MCP_MIN_FREE_MB``; see ``store.faults``).
    min_free: int = DEFAULT_MIN_FREE
    #: Team mode's bearer tokens when not ``tokens.json`` in the data dir (see ``tokens_file``).
    tokens_override: Path | None = None
    embedder: EmbedderChoice = field(default_factory=EmbedderChoice)

    @property
    def tokens_file(self) -> Path:
        """Team mode's bearer tokens (see ``tokens``); replicas can share one file."""
        return self.tokens_override or self.data_dir / "tokens.json"

    @classmethod
    def resolve(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        project: str | None = None,
        session_id: str | None = None,
        chroma_url: str | None = None,
        tokens_file: str | os.PathLike[str] | None = None,
        idle_timeout: float | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        default_agent: str = "",
    ) -> Settings:
        """``default_agent``: the agent id when neither the flag nor ``HEADROOM_MCP_AGENT`` names one."""
        env = dict(os.environ if env is None else env)

        def pick(explicit: str | None, name: str) -> str:
            return explicit if explicit is not None else env.get(f"HEADROOM_MCP_{name}", "")

        def seconds(explicit: float | None, name: str, default: float) -> float:
            text = str(explicit) if explicit is not None else env.get(f"HEADROOM_MCP_{name}") or str(default)
            return duration(text, f"HEADROOM_MCP_{name}")

        directory = pick(str(data_dir) if data_dir is not None else None, "DATA_DIR")
        tokens = pick(str(tokens_file) if tokens_file is not None else None, "TOKENS_FILE")
        workdir = cwd or env.get("CLAUDE_PROJECT_DIR") or env.get("GEMINI_PROJECT_DIR") or None
        return cls(
            data_dir=Path(directory).expanduser() if directory else default_data_dir(),
            user_id=pick(user_id, "USER") or os_user(),
            agent_id=pick(agent_id, "AGENT") or default_agent,
            # An explicit project, even "" (none: an app serving many users), is used as given.
            project=project if project is not None else named_project(env) or project_id(workdir),
            session_id=pick(session_id, "SESSION") or uuid.uuid4().hex[:16],
            chroma_url=pick(chroma_url, "CHROMA_URL"),
            idle_timeout=seconds(idle_timeout, "IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT),
            turn_ttl=seconds(None, "TURN_TTL", DEFAULT_TURN_TTL),
            forget_retention=seconds(None, "FORGET_RETENTION", DEFAULT_FORGET_RETENTION),
            secrets=env.get("HEADROOM_MCP_SECRETS") or "redact",
            min_free=_megabytes(env.get("HEADROOM_MCP_MIN_FREE_MB"), "HEADROOM_MCP_MIN_FREE_MB"),
            tokens_override=Path(tokens).expanduser() if tokens else None,
            embedder=EmbedderChoice.from_env(env),
        )

    def to_env(self) -> dict[str, str]:
        """The store's settings as the variables ``resolve`` reads back to them: what a daemon
        is spawned with, so that it opens the store exactly as its client would have. The
        identity is not among them: each request carries its own."""
        return {
            "HEADROOM_MCP_DATA_DIR": str(self.data_dir), "HEADROOM_MCP_CHROMA_URL": self.chroma_url,
            "HEADROOM_MCP_TOKENS_FILE": str(self.tokens_override) if self.tokens_override else "",
            "HEADROOM_MCP_IDLE_TIMEOUT": str(self.idle_timeout), "HEADROOM_MCP_TURN_TTL": str(self.turn_ttl),
            "HEADROOM_MCP_FORGET_RETENTION": str(self.forget_retention), "HEADROOM_MCP_SECRETS": self.secrets,
            "HEADROOM_MCP_MIN_FREE_MB": str(self.min_free / (1024 * 1024)), **self.embedder.to_env(),
        }

    def context(self, turn_id: str = "") -> Context:
        return Context(self.user_id, self.project, self.session_id, self.agent_id or "unknown", turn_id)
