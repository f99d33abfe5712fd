"""``headroom-mcp hook session-start|prompt``: memory context through the agents' hooks.

The clients do not read MCP resources on their own, so their hooks carry the context:
Claude Code and Codex call ``SessionStart`` and ``UserPromptSubmit`` hooks, Gemini CLI
``SessionStart`` and ``BeforeAgent``. Each passes JSON on stdin (``cwd``, ``session_id``,
``hook_event_name``, ``prompt``) and reads JSON on stdout; all three accept
``{"hookSpecificOutput": {"hookEventName": ..., "additionalContext": ...}}``.

Hooks run on every prompt, so they talk to the warm daemon and never import Chroma or
load the model; an agent registered with a team server (``install --url``) gets hooks that
ask that server instead (``remote.RemoteClient``). They must never break the agent: any
failure prints ``{}`` (Gemini CLI wants JSON only on stdout), logs to ``hooks.log`` in the
data dir, and exits 0.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from . import injection
from .agents import hook_event
from .config import Settings
from .errors import HeadroomError

#: Hooks sit on the agent's critical path: a slow or starting daemon costs a prompt at most
#: this long (the first hook of the day starts the daemon and loads the model, ~2 s).
HOOK_START_TIMEOUT = 8.0
HOOK_REQUEST_TIMEOUT = 5.0
#: Memories already injected in a session are not injected again; state older than this goes.
STATE_TTL = 7 * 86400


def _state_path(settings: Settings, session: str) -> Path:
    safe = "".join(c for c in session if c.isalnum() or c in "-_")[:80] or "default"
    return Path(settings.data_dir) / "hook-state" / f"{safe}.json"


def _already_shown(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return set()


def _remember_shown(path: Path, ids: set[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(ids)))
    os.replace(tmp, path)
    cutoff = time.time() - STATE_TTL
    for old in path.parent.glob("*.json"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


#: Memories a session-start hook asks for, most important first; the budget keeps those that fit.
SESSION_CANDIDATES = 60


def hook_text(kind: str, client: Any, context: Mapping[str, Any], prompt: str = "",
              shown: Collection[str] = ()) -> tuple[str, list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """What a hook injects for ``context``: (the markdown, the memories in it, the candidates it chose from).

    ``session-start`` takes the memories that matter most; ``prompt`` those recalled for
    ``prompt`` well enough, less the ``shown`` ones (already injected this session). The
    memory browser's preview calls this too, so what it shows is what the hook prints.
    """
    if kind == "session-start":
        candidates = client.call("context", {"limit": SESSION_CANDIDATES}, context)["memories"]
        budget, heading = injection.SESSION_BUDGET, injection.HEADING
    else:
        if not prompt.strip():
            return "", [], []
        results = client.call("recall", injection.prompt_recall(prompt.strip()), context)["results"]
        candidates = [m for m in results if m["id"] not in shown]
        budget, heading = injection.PROMPT_BUDGET, injection.PROMPT_HEADING
    chosen = injection.fit(candidates, budget)
    return injection.render(chosen, budget, heading), chosen, candidates


def context_for(kind: str, payload: Mapping[str, Any], settings: Settings, client: Any) -> str:
    """The markdown to inject for this hook call (empty when nothing is worth adding)."""
    context = settings.context().to_mapping()
    state = _state_path(settings, str(payload.get("session_id") or settings.session_id))
    shown = set() if kind == "session-start" else _already_shown(state)
    text, chosen, _ = hook_text(kind, client, context, str(payload.get("prompt") or ""), shown)
    if chosen or kind == "session-start":
        _remember_shown(state, shown | {m["id"] for m in chosen})
    return text


def hook_output(event: str, text: str) -> dict[str, Any]:
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}} if text else {}


def run_hook(kind: str, stdin_text: str, agent: str | None = None, data_dir: str | None = None,
             url: str | None = None, token_env: str | None = None, project: str | None = None) -> dict[str, Any]:
    """Everything ``headroom-mcp hook`` does, minus printing; never raises.

    With ``url`` the memories come from that team server, as the user whose token is in
    the environment variable ``token_env``, in ``project`` when given.
    """
    try:
        payload = json.loads(stdin_text) if stdin_text.strip() else {}
        if not isinstance(payload, dict):
            payload = {}
    except ValueError:
        payload = {}
    default_event = hook_event(agent, kind)  # when stdin does not say
    event = str(payload.get("hook_event_name") or default_event)
    try:
        from .client import DaemonClient

        settings = Settings.resolve(data_dir=data_dir, agent_id=agent, cwd=payload.get("cwd") or None)
        if url:
            from .remote import DEFAULT_TOKEN_ENV, RemoteClient
            from .tokens import looks_like_token

            variable = token_env or DEFAULT_TOKEN_ENV
            token = os.environ.get(variable, "").strip()
            if not looks_like_token(token):  # never echo it: it could be a secret pasted wrong
                raise HeadroomError(f"{variable} is {'not set' if not token else 'not a headroom-mcp token'}: "
                                    f"the hook has no token for {url}")
            remote = RemoteClient(url, token, project or "", timeout=HOOK_REQUEST_TIMEOUT)
            return hook_output(event, context_for(kind, payload, settings, remote))
        with DaemonClient(settings, start_timeout=HOOK_START_TIMEOUT, request_timeout=HOOK_REQUEST_TIMEOUT) as client:
            return hook_output(event, context_for(kind, payload, settings, client))
    except Exception as exc:  # never break the agent
        _log_failure(data_dir, kind, exc)
        return {}


def _log_failure(data_dir: str | None, kind: str, exc: BaseException) -> None:
    try:
        settings = Settings.resolve(data_dir=data_dir)
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(Path(settings.data_dir) / "hooks.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} hook {kind} failed: {type(exc).__name__}: {exc}\n")
    except Exception:
        pass
