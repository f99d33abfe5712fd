"""The command line under bad input: every verb (taken from the parser, so a new verb is
covered at once) with bad arguments, missing and unreadable files, and a closed stdout;
then each behaviour a newcomer tripped over, against a real store and daemon."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, kill_daemon, pid_alive

from headroom_mcp.api import SyncMemory
from headroom_mcp.cli import CLOSED_STDOUT, build_parser, verbs

VERBS = sorted(verbs(build_parser()))


def cli(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess:
    """One ``headroom-mcp`` process running this checkout; text output; stdin empty unless given."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    if input is None:
        kw.setdefault("stdin", subprocess.DEVNULL)
    out = subprocess.run([sys.executable, "-m", "headroom_mcp", *args], input=input.encode() if isinstance(input, str) else input,
                         env=full_env, timeout=180, **kw)
    for name in ("stdout", "stderr"):
        if isinstance(getattr(out, name), bytes):
            setattr(out, name, getattr(out, name).decode("utf-8", "replace"))
    return out


def assert_clean(out: subprocess.CompletedProcess) -> None:
    """No traceback, no interpreter complaint at exit."""
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr


def assert_refused(out: subprocess.CompletedProcess, code: int, says: str) -> None:
    assert_clean(out)
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.strip() and says in out.stderr, out.stderr


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One store and daemon for the many per-verb runs (opening a store costs seconds), and
    a HOME of its own so install/uninstall --dry-run read no real agent config."""
    root = tmp_path_factory.mktemp("shared")
    data = root / "store"
    env = {"HEADROOM_MCP_DATA_DIR": str(data), "HEADROOM_MCP_IDLE_TIMEOUT": "300", "HEADROOM_MCP_USER": "alice",
           "HEADROOM_MCP_PROJECT": "github.com/acme/atlas", "HOME": str(root / "home")}
    (root / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield root
        kill_daemon(data)


# -- every verb: bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_refuses_an_unknown_option_before_opening_a_store(verb, tmp_path):
    never = tmp_path / "never"
    out = cli(verb, "--no-such-option", env={"HEADROOM_MCP_DATA_DIR": str(never)})
    assert_refused(out, 2, "error:")
    assert not never.exists()


# -- every verb: bad input (missing, unreadable, malformed) -----------------------------------------


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _a_file(tmp: Path) -> str:
    return _write(tmp / "a-file", b"not a directory\n")


#: verb -> cases of (argv made from a temp dir, stdin, exit code, what stderr must say). Each
#: verb has at least one (test_the_tables_cover_every_verb).
BAD_INPUT: dict[str, list[tuple[Callable[[Path], list[str]], bytes | None, int, str]]] = {
    "import": [
        (lambda t: ["import", str(t / "missing.jsonl")], None, 1, "missing.jsonl: No such file or directory"),
        (lambda t: ["import", str(t)], None, 1, "Is a directory"),
        (lambda t: ["import", _write(t / "bin.jsonl", b'{"content": "fine"}\n\xff\xfe\n')], None, 1, "bin.jsonl:2: not UTF-8"),
        (lambda t: ["import", _write(t / "f.jsonl", b'{"content": "fine"}\n{"content": "x", "scope": "global"}\n')],
         None, 1, "f.jsonl:2: scope must be one of"),
        (lambda t: ["import", _write(t / "g.jsonl", b'{"content": "x", "created_at": "yesterday"}\n')],
         None, 1, "g.jsonl:1: created_at must be an ISO-8601 time"),
        (lambda t: ["import", _write(t / "h.jsonl", b'{"scope": "user"}\n')], None, 1, "h.jsonl:1: a record needs a content"),
        (lambda t: ["import", _write(t / "s.jsonl", b'{"content": "a note for this session", "scope": "session"}\n')],
         None, 1, "s.jsonl:1: a session memory needs its session_id, or no later call could see it"),
    ],
    "backup": [(lambda t: ["backup", _a_file(t)], None, 1, "is a file")],
    "export": [(lambda t: ["export", str(t)], None, 1, "Is a directory")],
    "remember": [
        (lambda t: ["remember", "-"], b"\xff\xfe", 1, "not UTF-8"),
        (lambda t: ["remember", "-"], None, 1, "stdin was empty: nothing to remember"),
        (lambda t: ["remember", "x", "--scope", "session"], None, 2, "needs --session"),
        (lambda t: ["remember", "x", "--scope", "turn"], None, 2, "--scope turn is for an agent's own turn"),
        (lambda t: ["remember", "x", "--importance", "3"], None, 1, "importance"),
    ],
    "forget": [
        (lambda t: ["forget"], None, 2, "say what to forget"),
        (lambda t: ["forget", "mem_a", "--query", "q"], None, 2, "not both"),
        (lambda t: ["forget", "mem_nope"], None, 1, "no memory with id 'mem_nope'"),
    ],
    "clear": [(lambda t: ["clear"], None, 2, "confirm with --yes")],
    "recall": [(lambda t: ["recall", "x", "--limit", "0"], None, 1, "limit")],
    "list": [(lambda t: ["list", "--limit", "0"], None, 1, "limit")],
    "show": [(lambda t: ["show", "mem_nope"], None, 1, "no memory")],
    "restore": [(lambda t: ["restore", "mem_nope"], None, 1, "no memory")],
    "unmerge": [(lambda t: ["unmerge", "mem_nope"], None, 1, "no memory")],
    "update": [(lambda t: ["update", "mem_nope", "--importance", "0.9"], None, 1, "no memory"),
               (lambda t: ["update", "mem_nope"], None, 2, "say what to change"),
               (lambda t: ["update", "mem_nope", "--importance", "2"], None, 1, "between 0 and 1")],
    "ui": [(lambda t: ["ui", "--host", "0.0.0.0"], None, 2, "loopback only"),
           (lambda t: ["ui", "--port", "0"], None, 2, "a port is a number from 1 to 65535")],
    "stats": [(lambda t: ["stats", "--data-dir", _a_file(t)], None, 1, "a-file")],
    "daemon": [(lambda t: ["daemon", "status", "--data-dir", _a_file(t)], None, 1, "a-file"),
               (lambda t: ["daemon", "restart"], None, 2, "invalid choice")],
    "serve": [(lambda t: ["serve", "--port", "99999"], None, 2, "a port is a number from 1 to 65535")],
    "token": [(lambda t: ["token", "list", "--tokens-file", str(t)], None, 1, "cannot read the tokens file"),
              (lambda t: ["token", "list", "--tokens-file", _write(t / "tokens.json", b"\xff{")], None, 1, "not a valid tokens file")],
    "hook": [(lambda t: ["hook", "nonsense"], None, 2, "invalid choice")],
    "model": [(lambda t: ["model", "build", "--dest", _a_file(t)], None, 1, "a-file")],
    "install": [(lambda t: ["install", "emacs"], None, 2, "invalid choice")],
    "uninstall": [(lambda t: ["uninstall", "emacs"], None, 2, "invalid choice")],
    "doctor": [(lambda t: ["doctor", "extra"], None, 2, "unrecognized arguments")],
}
BAD_CASES = [pytest.param(verb, *case, id=f"{verb}-{n}") for verb, cases in BAD_INPUT.items() for n, case in enumerate(cases)]


@pytest.mark.parametrize("verb, argv, stdin, code, says", BAD_CASES)
def test_every_verb_answers_bad_input_with_a_clear_message(shared, tmp_path, verb, argv, stdin, code, says):
    assert_refused(cli(*argv(tmp_path), input=stdin), code, says)


# -- every verb: a closed stdout (`| head`) ---------------------------------------------------------


def _forgotten_id(memory: SyncMemory, tmp: Path) -> list[str]:
    saved = memory.save(f"the staging database is in {tmp.name}")
    memory.delete(ids=[saved["id"]])
    return ["restore", saved["id"]]


def _restatement_id(memory: SyncMemory, tmp: Path) -> list[str]:
    memory.save("this repo uses uv, not pip")
    with SyncMemory(agent_id="codex") as codex:
        restated = codex.save("The repository uses uv instead of pip.")
    assert restated["status"] == "merged", restated
    return ["unmerge", restated["restatement"]]


def _exported(memory: SyncMemory, tmp: Path) -> list[str]:
    memory.save("an export writes JSON lines, oldest first")  # an empty store exports nothing at all
    return ["export"]


#: verb -> argv (made with the store's API and a temp dir) that prints on stdout and succeeds.
#: serve and model only print their help here: serve's stdout is the MCP protocol itself, and
#: model build builds a model for minutes.
PRINTING: dict[str, Callable[[SyncMemory, Path], list[str]]] = {
    "daemon": lambda m, t: ["daemon", "status"],
    "serve": lambda m, t: ["serve", "--help"],
    "model": lambda m, t: ["model", "build", "--help"],
    "token": lambda m, t: ["token", "list"],
    "hook": lambda m, t: ["hook", "session-start", "--agent", "claude"],
    "remember": lambda m, t: ["remember", "CI runs on GitHub Actions"],
    "recall": lambda m, t: ["recall", "where does CI run?"],
    "forget": lambda m, t: ["forget", "--query", "zebra migration schedule"],
    "restore": _forgotten_id,
    "unmerge": _restatement_id,
    "update": lambda m, t: ["update", m.save("the API listens on port 8080")["id"], "--importance", "0.7"],
    "ui": lambda m, t: ["ui", "--help"],
    "list": lambda m, t: ["list"],
    "show": lambda m, t: ["show", m.save("the API listens on port 8080")["id"]],
    "stats": lambda m, t: ["stats"],
    "export": _exported,
    "import": lambda m, t: ["import", _write(t / "one.jsonl", b'{"content": "lint with ruff"}\n')],
    "backup": lambda m, t: ["backup", str(t / "copy")],
    "clear": lambda m, t: ["clear", "--yes", "--user", "nobody-else"],
    "install": lambda m, t: ["install", "all", "--dry-run"],
    "uninstall": lambda m, t: ["uninstall", "all", "--dry-run"],
    "doctor": lambda m, t: ["doctor", "--json"],
}


def test_the_tables_cover_every_verb():
    assert set(BAD_INPUT) == set(VERBS), "give each new verb its bad-input cases"
    assert set(PRINTING) == set(VERBS), "give each new verb a closed-stdout case"


def closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has already gone, as `| head` leaves it."""
    read, write = os.pipe()
    os.close(read)
    try:
        return cli(*args, stdout=write, input=b"{}")
    finally:
        os.close(write)


@pytest.mark.parametrize("verb", [*VERBS, "--version"])
def test_every_verb_stops_quietly_when_stdout_is_closed(shared, tmp_path, verb):
    if verb == "--version":
        argv = ["--version"]
    else:
        with SyncMemory(agent_id="claude") as memory:
            argv = PRINTING[verb](memory, tmp_path)
    out = closed_stdout(*argv)
    assert_clean(out)
    # argparse writes --help and --version itself, ignoring a failed write, and exits 0
    expected = 0 if {"--help", "--version"} & set(argv) else CLOSED_STDOUT
    assert out.returncode == expected, (argv, out.returncode, out.stderr)


# -- each behaviour ------------------------------------------------------------------------------


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == "headroom-mcp 0.1.0"


def test_remember_reads_stdin_names_the_superseded_id_and_says_what_was_redacted(data_dir):
    first = json.loads(cli("remember", "-", "--json", input="the API listens on port 8080\n").stdout)
    assert first["status"] == "created"
    assert json.loads(cli("show", first["id"], "--json").stdout)["content"] == "the API listens on port 8080"
    out = cli("remember", "the API listens on port 9090", "--supersedes", first["id"])
    head = out.stdout.split()
    assert out.returncode == 0 and head[:3] == ["superseded", first["id"], "by"] and head[3].startswith("mem_"), out.stdout
    assert head[3] != first["id"]
    token = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
    out = cli("remember", f"the deploy token is {token}")
    assert out.returncode == 0 and "redacted github-token" in out.stdout and token not in out.stdout, out.stdout


def test_re_forgetting_says_so_and_fails(data_dir):
    saved = json.loads(cli("remember", "the cache lives in redis", "--json").stdout)
    first = cli("forget", saved["id"])
    assert first.returncode == 0 and first.stdout.startswith(f"forgot {saved['id']}")
    again = cli("forget", saved["id"])
    assert_refused(again, 1, f"{saved['id']} was already forgotten")
    assert not again.stdout.startswith("forgot")
    as_json = cli("forget", saved["id"], "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["forgotten"] == []


def test_import_takes_a_bare_content_with_remembers_defaults(data_dir, tmp_path):
    dump = tmp_path / "mine.jsonl"
    dump.write_text('{"content": "we lint with ruff"}\n\n{"content": "alice prefers tabs", "scope": "user"}\n')
    before = time.time()
    out = cli("import", str(dump), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["created"] == 2, out.stdout + out.stderr
    listed = {m["content"]: m for m in json.loads(cli("list", "--json").stdout)["memories"]}
    ruff, tabs = listed["we lint with ruff"], listed["alice prefers tabs"]
    assert (ruff["scope"], ruff["project"], tabs["scope"]) == ("project", "github.com/acme/atlas", "user")
    assert ruff["agents"] == ["cli"] and ruff["created_by"] == "cli" and ruff["id"].startswith("mem_")
    from headroom_mcp.store.records import parse_iso

    assert parse_iso(ruff["created_at"]) >= before - 1 and ruff["updated_at"] == ruff["created_at"]
    again = json.loads(cli("import", str(dump), "--json").stdout)
    assert again["created"] == 0 and again["merged"] == 2  # no ids: deduplicated as the same facts
    assert len(json.loads(cli("list", "--json").stdout)["memories"]) == 2
    exported = tmp_path / "export.jsonl"
    assert cli("export", str(exported)).returncode == 0
    restored = cli("import", str(exported))  # the same ids: each is overwritten by its own copy
    assert restored.returncode == 0 and "created 0, merged 0, updated (id already in the store) 2" in restored.stdout, restored.stdout


def test_a_session_scope_memory_is_seen_by_the_calls_that_name_its_session(data_dir):
    saved = cli("remember", "the flaky test is test_upload", "--scope", "session", "--session", "s-42")
    assert saved.returncode == 0 and "[session]" in saved.stdout, saved.stderr
    same = json.loads(cli("list", "--session", "s-42", "--json").stdout)["memories"]
    other = json.loads(cli("list", "--json").stdout)["memories"]
    assert [m["content"] for m in same] == ["the flaky test is test_upload"] and other == []


def test_daemon_status_and_stop_lose_nothing(data_dir):
    none = cli("daemon", "status")
    assert none.returncode == 1 and "no daemon is serving" in none.stdout
    assert cli("remember", "the docs are built with mkdocs").returncode == 0
    status = json.loads(cli("daemon", "status", "--json").stdout)
    assert status["running"] and status["data_dir"] == str(data_dir) and status["records"] == 1 and status["uptime"] > 0
    assert pid_alive(status["pid"])
    text = cli("daemon", "status").stdout
    assert text.startswith(f"daemon {status['pid']} serving {data_dir}: up ") and "1 records" in text
    stop = cli("daemon", "stop")
    assert stop.returncode == 0 and f"stopped daemon {status['pid']}" in stop.stdout
    deadline = time.monotonic() + 10  # the store is closed and the lock free; the process is on its way out
    while pid_alive(status["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(status["pid"])
    assert cli("daemon", "status").returncode == 1
    again = cli("daemon", "stop")
    assert again.returncode == 0 and "no daemon is serving" in again.stdout
    assert [m["content"] for m in json.loads(cli("list", "--json").stdout)["memories"]] == ["the docs are built with mkdocs"]


def on_a_terminal(*args: str, stdin: bytes = b"", stream: str = "stdin") -> tuple[subprocess.CompletedProcess, str]:
    """Run with ``stream`` (stdin or stderr) a pseudo-terminal; returns what was written to it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        if stream == "stdin":
            os.write(master, stdin)
            out = cli(*args, stdin=slave)
        else:
            out = cli(*args, stderr=slave)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return out, b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_clear_asks_on_a_terminal_and_forgets_only_when_told(data_dir, tmp_path):
    dump = tmp_path / "two.jsonl"
    dump.write_text('{"content": "the queue is rabbitmq"}\n{"content": "logs go to loki"}\n')
    assert cli("import", str(dump)).returncode == 0
    declined, _ = on_a_terminal("clear", stdin=b"n\n")
    assert declined.returncode == 1 and "Forget all 2 memories visible to user alice" in declined.stderr, declined.stderr
    assert json.loads(cli("stats", "--json").stdout)["total"] == 2
    accepted, _ = on_a_terminal("clear", stdin=b"y\n")
    assert accepted.returncode == 0 and accepted.stdout.startswith("forgot 2 memories"), accepted.stdout + accepted.stderr
    assert json.loads(cli("list", "--json").stdout)["memories"] == []
    assert len(json.loads(cli("list", "--forgotten", "--json").stdout)["memories"]) == 2


def test_import_draws_a_progress_bar_only_on_a_terminal(data_dir, tmp_path):
    dump = tmp_path / "many.jsonl"
    dump.write_text("".join(json.dumps({"content": f"service {n} listens on port {9000 + n}", "scope": "user"}) + "\n"
                            for n in range(300)))
    out, drawn = on_a_terminal("import", str(dump), "--no-dedup", stream="stderr")
    assert out.returncode == 0 and out.stdout.startswith("created 300"), out.stdout
    assert "import: 100%" in drawn and "300/300" in drawn and "Traceback" not in drawn, drawn
    piped = cli("import", str(dump))
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_named_with_the_reason(tmp_path):
    locked = tmp_path / "locked.jsonl"
    locked.write_text('{"content": "fine"}\n')
    locked.chmod(0)
    assert_refused(cli("import", str(locked)), 1, "locked.jsonl: Permission denied")


@pytest.mark.parametrize("argv", [["remember", "the queue drains every night"], ["list"], ["export"], ["doctor"], ["daemon", "status"]])
def test_a_verb_started_with_stdout_closed_does_nothing_and_says_so(data_dir, argv):
    """``>&-``: the answer could not be written, so nothing is done (no memory stored and
    then reported as failed)."""
    out = cli(*argv, stdout=None, preexec_fn=lambda: os.close(1))
    assert_clean(out)
    assert out.returncode == 1 and "standard output is closed, so nothing was done" in out.stderr
    if argv[0] == "remember":
        assert "the queue drains every night" not in cli("list").stdout
