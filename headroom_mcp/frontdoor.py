"""``headroom-mcp serve`` over stdio: the process an agent spawns, answering at once.

Agents list a server's tools right after spawning it and give it little time (Codex waits
about a second for an optional server; Claude Code's first model request goes out with
whatever tools are listed by then), and on a busy machine importing the MCP SDK alone can
take longer than that. So this process imports only the standard library: it answers
``initialize``, ``ping`` and the list requests from ``manifest.json`` (the real server's
own answers, see ``sessions``), and relays everything else, byte for byte, to an MCP
session that the daemon hosts with the real server. Only the first tool call may wait for
a cold daemon (the model load); the handshake never does.

The daemon connection is opened (and the daemon started) while the agent is still listing
tools. At each (re)connection the client's ``initialize`` is replayed to the daemon under a
private id whose answer is dropped; requests not yet answered when a connection breaks (a
daemon killed, or exiting to reopen a broken store) are sent again on the next one, a few
times: a repeated ``remember`` merges into the memory the first one created.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from . import __version__
from .client import DaemonClient
from .config import Settings
from .errors import HeadroomError
from .paths import DaemonPaths

log = logging.getLogger("headroom_mcp.frontdoor")

#: The handshake answers of the real server (package data); regenerate with
#: ``python -m headroom_mcp.sessions --write`` whenever the tools, their descriptions or the SDK change.
MANIFEST = Path(__file__).with_name("manifest.json")
#: Requests whose answer depends only on the server's code, never on the store or the caller:
#: answered from the manifest once the handshake is agreed.
STATIC_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
#: The daemon request that turns a connection into an MCP session (``daemon``, ``sessions``).
SESSION = "mcp-session"
#: The ids of the session request and of the client's ``initialize`` replayed to the daemon.
HELLO_ID, REPLAY_ID = "headroom-mcp:hello", "headroom-mcp:replay"
#: How many connections one request is sent on before it is answered with an error.
SENDS = 4
#: Pause before reconnecting after a connection broke, seconds.
RECONNECT_PAUSE = 0.1


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _handshake(initialize: dict[str, Any]) -> list[bytes]:
    """The lines that open a daemon session as ``initialize`` opened the client's, under the
    private id (the daemon's answer to it is dropped)."""
    return [_line({**initialize, "id": REPLAY_ID}), _line({"jsonrpc": "2.0", "method": "notifications/initialized"})]


def _parse(line: bytes) -> Any:
    """The JSON value of a line, or None for anything the real server should judge."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        return None


def load_manifest(path: Path = MANIFEST) -> dict[str, Any] | None:
    """The stored handshake answers, or None when missing or written by another version
    (then every request goes to the daemon's real server: slower, never wrong)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("server_version") == __version__ else None


class FrontDoor:
    """One agent's stdio session: local handshake answers, the rest relayed to the daemon."""

    def __init__(self, settings: Settings, output: BinaryIO, manifest: dict[str, Any] | None):
        self.settings = settings
        self.manifest = manifest
        self._output = output
        self._output_lock = threading.Lock()
        #: Guards the connection and what waits for it.
        self._lock = threading.Condition()
        self._sock: socket.socket | None = None
        #: Requests relayed and not answered yet: JSON id → [line, connections sent on].
        self._pending: dict[str, list[Any]] = {}
        #: Notifications and responses waiting for a connection (sent once).
        self._backlog: list[bytes] = []
        #: What each new daemon session is sent first: the ``initialize`` answered here and its
        #: ``initialized``; empty when the client's own handshake went to the daemon; None
        #: until the client's first request says which.
        self._replay: list[bytes] | None = None
        self._agreed: str | None = None
        #: The client's own ``initialize`` when it went to the daemon: from the next connection
        #: on, ``_replay``.
        self._handshake: list[bytes] = []
        self._connected_once = False
        self._closed = False
        #: Reasons already logged: a daemon that cannot be reached fails every call alike, and
        #: the agent's log should say so once, not once a call (each call's answer says it).
        self._logged: set[str] = set()

    # -- the client's side (main thread) --

    def run(self, input: BinaryIO) -> None:
        """Serve until the client closes stdin."""
        threading.Thread(target=self._connection_loop, name="daemon-link", daemon=True).start()
        try:
            for line in iter(input.readline, b""):
                if line.strip():
                    self._from_client(line if line.endswith(b"\n") else line + b"\n")
        finally:
            with self._lock:
                self._closed = True
                if self._sock is not None:
                    self._sock.close()
                self._lock.notify_all()

    def _from_client(self, line: bytes) -> None:
        message = _parse(line)
        if not isinstance(message, dict) or "method" not in message:
            self._relay(line)  # a response to the server, or something the real server should judge
            return
        method, has_id = message["method"], "id" in message
        if has_id and (answer := self._local_answer(message)) is not None:
            self._write(_line({"jsonrpc": "2.0", "id": message["id"], "result": answer}))
            return
        if method == "notifications/initialized" and self._replay:
            return  # the replay sends its own
        if method == "notifications/cancelled" and isinstance(message.get("params"), dict):
            with self._lock:  # the server never answers a cancelled request: never send it again
                self._pending.pop(json.dumps(message["params"].get("requestId")), None)
        if has_id and self._replay is None:
            self._decide([])  # the client's handshake (or a protocol without one) is the real server's
            if method == "initialize":  # replayed on the next connections, after this one carried it
                self._handshake = _handshake(message)
        self._relay(line, json.dumps(message["id"]) if has_id else None)

    def _decide(self, replay: list[bytes]) -> None:
        with self._lock:
            self._replay = replay
            self._lock.notify_all()

    def _local_answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The manifest's answer to ``request``, or None when the real server must answer."""
        method, params = request["method"], request.get("params")
        manifest = self.manifest
        if manifest is None or request.get("jsonrpc") != "2.0" or type(request["id"]) not in (int, str):
            return None
        answer: dict[str, Any] | None = None
        if method == "ping":
            answer = {}
        elif method == "initialize" and self._replay is None and self._well_formed(params):
            self._agreed = manifest["offers"].get(params["protocolVersion"], manifest["counter_offer"])
            self._decide(_handshake(request))
            answer = manifest["answers"][self._agreed]["initialize"]
        elif method in STATIC_METHODS and self._agreed is not None and not (isinstance(params, dict) and params.get("cursor")):
            answer = manifest["answers"][self._agreed][method]
        return answer

    @staticmethod
    def _well_formed(params: Any) -> TypeGuard[dict[str, Any]]:
        """An ``initialize`` the real server would accept; any other gets its own error."""
        if not isinstance(params, dict) or not isinstance(params.get("protocolVersion"), str):
            return False
        info = params.get("clientInfo")
        return isinstance(params.get("capabilities"), dict) and isinstance(info, dict) \
            and isinstance(info.get("name"), str) and isinstance(info.get("version"), str)

    def _relay(self, line: bytes, key: str | None = None) -> None:
        with self._lock:
            if key is not None:
                self._pending[key] = [line, 0]
            if self._sock is None:
                if key is None:
                    self._backlog.append(line)
                self._lock.notify_all()
                return
            if key is not None:
                self._pending[key][1] += 1
            try:
                self._sock.sendall(line)
            except OSError:
                pass  # the reader sees the broken connection and sends it again on the next

    def _write(self, line: bytes) -> None:
        with self._output_lock:
            try:
                self._output.write(line)
                self._output.flush()
            except (OSError, ValueError):  # the client is gone
                pass

    # -- the daemon's side (connection thread) --

    def _connection_loop(self) -> None:
        while True:
            with self._lock:
                # Connect at once (to warm the daemon), later only when something waits for it.
                while not self._closed and self._connected_once and not (self._pending or self._backlog):
                    self._lock.wait()
                if self._closed:
                    return
            self._connected_once = True
            try:
                sock = DaemonClient(self.settings).open()
            except (HeadroomError, OSError) as exc:  # no daemon, and none could be started
                self._fail_all(str(exc))
                continue
            sock.settimeout(None)
            try:
                self._session(sock)
            except OSError as exc:
                log.debug("daemon connection lost: %s", exc)
            except Exception:  # a bug here must not leave the agent's requests unanswered
                log.exception("relaying to the daemon failed")
            finally:
                with self._lock:
                    self._sock = None
                    if self._replay == [] and self._handshake:
                        self._replay = self._handshake
                sock.close()
            self._give_up_on_resent()
            time.sleep(RECONNECT_PAUSE)

    def _session(self, sock: socket.socket) -> None:
        """Open an MCP session on ``sock``, bring it up to date, and relay its answers."""
        context = self.settings.context().to_mapping()
        sock.sendall(_line({"id": HELLO_ID, "method": SESSION, "context": context, "agent": self.settings.agent_id}))
        reader = sock.makefile("rb")
        accepted = _parse(reader.readline())  # nothing else is sent until the daemon hosts the session
        if not (isinstance(accepted, dict) and accepted.get("id") == HELLO_ID and "result" in accepted):
            self._fail_all(self._refusal(accepted))
            return
        with self._lock:
            while self._replay is None and not self._closed:
                self._lock.wait()
            if self._closed or self._replay is None:
                return
            sock.sendall(b"".join(self._replay))
            for entry in self._pending.values():
                entry[1] += 1
                sock.sendall(entry[0])
            for line in self._backlog:
                sock.sendall(line)
            self._backlog.clear()
            self._sock = sock
        for line in iter(reader.readline, b""):
            self._from_daemon(line)

    def _refusal(self, answer: Any) -> str:
        """Why the daemon did not host the session, from its answer to the session request."""
        error = answer.get("error") if isinstance(answer, dict) else None
        message = error.get("message", "") if isinstance(error, dict) else ""
        if "unknown method" in message:  # a daemon of an older headroom-mcp, still running
            lock = DaemonPaths.for_data_dir(self.settings.data_dir).lock
            return (f"the store daemon running for {self.settings.data_dir} is an older headroom-mcp that cannot serve "
                    f"this one: stop it (kill $(cat {lock})) and the next call starts a current one")
        return message or "the store daemon closed the connection before hosting the session"

    def _from_daemon(self, line: bytes) -> None:
        message = _parse(line)
        if not (isinstance(message, dict) and message.get("jsonrpc") == "2.0"):
            log.warning("dropped a line from the daemon that is not JSON-RPC: %.200r", line)
            return
        if "method" not in message and "id" in message:
            if message["id"] == REPLAY_ID:
                if "error" in message:
                    log.warning("the daemon refused the replayed handshake: %s", message["error"])
                return
            with self._lock:
                self._pending.pop(json.dumps(message["id"]), None)
        self._write(line if line.endswith(b"\n") else line + b"\n")

    def _give_up_on_resent(self) -> None:
        """Answer, with an error, the requests already sent on ``SENDS`` connections."""
        with self._lock:
            spent = [key for key, (_, sent) in self._pending.items() if sent >= SENDS]
        for key in spent:
            self._fail(key, f"lost the store daemon for {self.settings.data_dir} {SENDS} times while answering")

    def _fail_all(self, why: str) -> None:
        if why not in self._logged:
            self._logged.add(why)
            log.warning("%s", why)
        with self._lock:
            keys = list(self._pending)
            self._backlog.clear()
        for key in keys:
            self._fail(key, why)

    def _fail(self, key: str, why: str) -> None:
        """Answer a pending request with ``why``: a failed tool result for a tool call (what
        the real server gives when the store refuses), else a JSON-RPC error."""
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None:
            return
        request = json.loads(entry[0])
        if request.get("method") == "tools/call":
            answer: dict[str, Any] = {"result": {"content": [{"type": "text", "text": why}], "isError": True}}
        else:
            answer = {"error": {"code": -32603, "message": why}}
        self._write(_line({"jsonrpc": "2.0", "id": request["id"], **answer}))


def serve(settings: Settings) -> None:
    """Serve the agent on this process's stdin and stdout."""
    FrontDoor(settings, sys.stdout.buffer, load_manifest()).run(sys.stdin.buffer)
