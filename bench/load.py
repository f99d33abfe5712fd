"""Team-mode load: N concurrent MCP clients mixing remember and recall on one server.

    .venv/bin/python bench/load.py [--clients 20] [--seconds 60] [--transport http|sse] [--users 4]
                                   [--write-ratio 0.5] [--out FILE] [--keep]

Starts a real ``headroom-mcp serve --transport http|sse`` on loopback over a fresh temp
data dir, with one write token per user (clients share the users round-robin, all on one
project) and ``--rate-limit 0``, so the limiter is not what gets measured. Once /healthz
answers, N MCP sessions (the SDK's client, all in this one asyncio process, each opened
before the clock starts and held for the whole run) loop until time is up: with
probability ``--write-ratio`` a ``remember`` of a new fact, else a ``recall`` about a fact
some client (often another user) remembered earlier.

Facts are generated coding-project facts (incidents, flaky tests, on-call rotations,
migrations, releases, decisions...). Each one carries a number no other fact has (its
ticket, sprint, release...), and dedup never merges facts that differ in a number, so
every ``remember`` should come back ``created``; the statuses are reported, so a merge
would show. A recall names the fact's identifier, the way an agent asks about an error
code or a ticket, and the report says how often that fact was in the top 5: a write
acknowledged to one session is visible to the others.

Nothing lost: every id acknowledged as created or merged must still be in the store, with
the content sent, checked twice: through the running server's daemon socket, and after
stopping the server (SIGTERM) by opening the store in this process. Errors are counted by kind:
tool errors, HTTP answers >= 400 seen by the clients, exceptions (a call unanswered after
CALL_TIMEOUT is one). A call that raises ends its session; the client opens a new one.
Also reported: the server's peak RSS (VmHWM), what its /metrics say, and its exit status
on SIGTERM. Exit status 1 on any error, lost or altered memory, or a server that died.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from store_bench import pct  # noqa: E402

from headroom_mcp import SyncMemory  # noqa: E402
from headroom_mcp.tokens import TokenFile  # noqa: E402

EXE = str(Path(sys.executable).parent / "headroom-mcp")
PROJECT = "github.com/acme/load"
#: MCP client names, so memories carry the three agents' provenance (claude, codex, gemini).
CLIENT_NAMES = ("claude-code", "codex-mcp-client", "gemini-cli-mcp-client")
#: A call unanswered after this long counts as an error (a wedged server fails the run).
CALL_TIMEOUT = 60.0
#: How long to wait for the server's /healthz, and for all sessions to open.
START_TIMEOUT = 60.0
RECALL_LIMIT = 5
OPS = ("remember", "recall")

SERVICES = ("billing", "search", "auth", "checkout", "notifications", "ledger", "uploads", "reports", "gateway",
            "scheduler", "inventory", "analytics")
DEPENDENCIES = ("postgres", "redis", "kafka", "the payments API", "S3", "elasticsearch", "rabbitmq", "the auth service")
PEOPLE = ("Priya", "Marcus", "Lena", "Aiko", "Dmitri", "Fatima", "Jonas", "Camila")
THINGS = ("refund", "login", "export", "retry", "pagination", "webhook", "invoice", "upload")
CHANGES = ("add_index", "split_table", "backfill_totals", "drop_legacy_column", "rename_status")
TOOLS = (("uv", "pip", "dependency management"), ("ruff", "flake8", "linting"), ("pnpm", "npm", "the frontend build"),
         ("structlog", "the stdlib logger", "request logs"), ("httpx", "requests", "outbound HTTP"))
JOBS = ("reconciliation", "export", "cleanup", "digest", "reindex")
#: (fact, question about it); ``{n}`` is unique to the fact and appears in both.
TEMPLATES = (
    ("Incident INC-{n}: the {svc} service timed out calling {dep} because its connection pool was capped at {k}; "
     "raise the pool size before load tests.", "what caused incident INC-{n} in {svc}?"),
    ("Flaky test test_{thing}_{n} in the {svc} suite fails under pytest-xdist; run it serially until it is fixed.",
     "why does test_{thing}_{n} fail?"),
    ("{person} owns the {svc} on-call rotation for sprint {n} and wants pages routed to #{svc}-oncall.",
     "who is on call for {svc} in sprint {n}?"),
    ("Migration {n}_{change} in {svc} must run before the {dep} upgrade, otherwise the orders table lacks its index.",
     "when should migration {n}_{change} run?"),
    ("The {svc} service reads its feature flags from config/{svc}/flags-{n}.yaml; changes there need a review from {person}.",
     "where does {svc} keep flags-{n}.yaml?"),
    ("Release 3.{k}.{n} of {svc} dropped support for {dep}; clients have to upgrade before they deploy it.",
     "what did {svc} release 3.{k}.{n} drop?"),
    ("Decision ADR-{n}: {svc} uses {tool} instead of {alt} for {purpose}, because it is faster in CI.",
     "what did ADR-{n} decide for {svc}?"),
    ("The nightly {job} job of {svc} writes to s3://{svc}-exports/{n}/ and has to finish before 06:00 UTC.",
     "where does the nightly {job} job write, run {n}?"),
)


def make_fact(n: int, rng: random.Random) -> tuple[str, str]:
    """The ``n``-th fact and a question about it (templates and word lists vary the text)."""
    fact, question = TEMPLATES[n % len(TEMPLATES)]
    tool, alt, purpose = rng.choice(TOOLS)
    fields = dict(n=n, svc=rng.choice(SERVICES), dep=rng.choice(DEPENDENCIES), person=rng.choice(PEOPLE),
                  thing=rng.choice(THINGS), change=rng.choice(CHANGES), job=rng.choice(JOBS), k=rng.choice((5, 10, 20, 50)),
                  tool=tool, alt=alt, purpose=purpose)
    return fact.format(**fields), question.format(**fields)


@dataclass(frozen=True)
class Fact:
    """A remember the server acknowledged."""

    id: str
    content: str
    question: str
    created: bool


@dataclass
class Tally:
    """What the clients saw. One asyncio thread updates it, so it needs no lock."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    facts: list[Fact] = field(default_factory=list)
    recalls_found: int = 0
    sessions_opened: int = 0
    last_answer: float = 0.0

    def ok(self, op: str, started: float) -> None:
        self.last_answer = time.perf_counter()
        self.latency[op].append((self.last_answer - started) * 1000)

    def fail(self, op: str, kind: str) -> None:
        self.failed[op] += 1
        self.error(kind)

    def error(self, kind: str) -> None:
        self.last_answer = time.perf_counter()
        self.errors[kind] += 1

    async def http_answer(self, response: httpx2.Response) -> None:
        """httpx event hook: count every HTTP error answer, including ones the SDK turns into a generic error."""
        if response.status_code >= 400:
            self.errors[f"HTTP {response.status_code} on {response.request.method}"] += 1


class SessionLost(Exception):
    """A call raised (already counted): leave this session and open another."""


class Run:
    """The start barrier and the deadline shared by all clients."""

    def __init__(self, clients: int, seconds: float):
        self.clients, self.seconds = clients, seconds
        self.waiting = 0
        self.all_open = anyio.Event()
        self.go = anyio.Event()
        self.started = 0.0
        self.deadline = float("inf")

    async def ready(self) -> None:
        """Wait until every session is open (or START_TIMEOUT passed), so the clock measures load only."""
        self.waiting += 1
        if self.waiting == self.clients:
            self.all_open.set()
        await self.go.wait()

    def start(self) -> None:
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + self.seconds
        self.go.set()

    def over(self) -> bool:
        return time.monotonic() >= self.deadline


def describe(exc: BaseException) -> str:
    """An error kind: the first leaf of an exception group, without ids that would split kinds."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return f"timeout (no answer in {CALL_TIMEOUT:.0f} s)"
    if isinstance(exc, MCPError):
        return f"MCP error {exc.code}: {exc.message[:100]}"
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:100]}"


@contextlib.asynccontextmanager
async def open_session(url: str, transport: str, token: str, name: str, tally: Tally) -> AsyncIterator[ClientSession]:
    """An initialised MCP session as the token's user, whose HTTP answers go through ``tally``."""
    headers = {"Authorization": f"Bearer {token}"}

    def http_client(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                    auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks["response"].append(tally.http_answer)
        return client

    async with contextlib.AsyncExitStack() as stack:
        if transport == "sse":
            streams = await stack.enter_async_context(sse_client(url, headers=headers, httpx_client_factory=http_client))
        else:
            client = await stack.enter_async_context(http_client(headers))
            streams = await stack.enter_async_context(streamable_http_client(url, http_client=client))
        session = await stack.enter_async_context(
            ClientSession(streams[0], streams[1], client_info=Implementation(name=name, version="1")))
        with anyio.fail_after(CALL_TIMEOUT):
            await session.initialize()
        tally.sessions_opened += 1
        yield session


async def timed_call(session: ClientSession, op: str, arguments: dict[str, Any], tally: Tally) -> dict[str, Any] | None:
    """One tool call: its structured result, or None after a tool error; raises SessionLost."""
    started = time.perf_counter()
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            result = await session.call_tool(op, arguments)
    except Exception as exc:
        tally.fail(op, describe(exc))
        raise SessionLost from exc
    if result.is_error:
        text = getattr(result.content[0], "text", "") if result.content else ""
        tally.fail(op, f"tool error from {op}: {text[:100]}")
        return None
    tally.ok(op, started)
    return result.structured_content


async def step(session: ClientSession, rng: random.Random, numbers: Iterator[int], write_ratio: float, tally: Tally) -> None:
    """One remember of a new fact, or one recall about an acknowledged one."""
    if not tally.facts or rng.random() < write_ratio:
        content, question = make_fact(next(numbers), rng)
        result = await timed_call(session, "remember", {"content": content}, tally)
        if result is not None:
            tally.statuses[result["status"]] += 1
            tally.facts.append(Fact(result["id"], content, question, result["status"] == "created"))
        return
    target = rng.choice(tally.facts)
    result = await timed_call(session, "recall", {"query": target.question, "limit": RECALL_LIMIT}, tally)
    if result is not None and target.id in {m["id"] for m in result["results"]}:
        tally.recalls_found += 1


async def client(index: int, url: str, transport: str, token: str, run: Run, numbers: Iterator[int],
                 write_ratio: float, tally: Tally) -> None:
    """One agent: a session held until the deadline, reopened only if a call broke it."""
    rng = random.Random(index)
    first = True  # the first pass waits at the start barrier, whether or not its session opened
    while first or not run.over():
        try:
            async with open_session(url, transport, token, CLIENT_NAMES[index % len(CLIENT_NAMES)], tally) as session:
                if first:
                    first = False
                    await run.ready()
                with contextlib.suppress(SessionLost):
                    while not run.over():
                        await step(session, rng, numbers, write_ratio, tally)
        except Exception as exc:  # opening or closing the session
            tally.error(f"session: {describe(exc)}")
            if first:
                first = False
                await run.ready()
            await anyio.sleep(0.5)


async def drive(url: str, transport: str, tokens: list[str], clients: int, seconds: float, write_ratio: float) -> tuple[Tally, float]:
    """Run the clients; returns the tally and the seconds from the start to the last answer."""
    tally = Tally()
    run = Run(clients, seconds)
    numbers = itertools.count(1)
    async with anyio.create_task_group() as group:
        for i in range(clients):
            group.start_soon(client, i, url, transport, tokens[i % len(tokens)], run, numbers, write_ratio, tally)
        with anyio.move_on_after(START_TIMEOUT):
            await run.all_open.wait()
        run.start()
    return tally, tally.last_answer - run.started


def free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, transport: str, log: Path) -> tuple[subprocess.Popen, str]:
    """``headroom-mcp serve`` on a free loopback port, once its /healthz answers 200."""
    port = free_port()
    proc = subprocess.Popen(
        [EXE, "serve", "--transport", transport, "--port", str(port), "--data-dir", str(data_dir), "--rate-limit", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.terminate()
            sys.exit(f"server not healthy after {START_TIMEOUT:.0f} s:\n{log.read_text()}")
        time.sleep(0.2)


def scrape(base: str, admin_token: str) -> dict[str, float]:
    """The /metrics samples (name with labels -> value)."""
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {admin_token}"}, timeout=30).raise_for_status().text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used since boot (to see what else ran meanwhile)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def stored(data_dir: Path, embedded: bool) -> dict[str, str]:
    """id -> content of every memory of the project, through the daemon socket or opened here."""
    with SyncMemory(user_id="load-check", agent_id="load-check", project=PROJECT, data_dir=data_dir, embedded=embedded) as memory:
        return {m["id"]: m["content"] for m in memory.get_all(limit=1_000_000)}


def missing(facts: list[Fact], store: dict[str, str]) -> tuple[int, int]:
    """(acknowledged ids not in the store, created facts whose stored content differs)."""
    lost = {f.id for f in facts if f.id not in store}
    altered = sum(1 for f in facts if f.created and f.id in store and store[f.id] != f.content)
    return len(lost), altered


def plural(n: int, noun: str) -> str:
    """``1 client``, ``20 clients``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def report(args: argparse.Namespace, tally: Tally, elapsed: float, checks: dict[str, Any]) -> str:
    """The markdown report: the summary row, the per-op table, then one line per check."""
    ops = sum(len(v) for v in tally.latency.values()) + sum(tally.failed.values())
    errors = sum(tally.errors.values())
    recalls = len(tally.latency["recall"])
    found = f"{tally.recalls_found} of {recalls} ({tally.recalls_found / recalls:.1%})" if recalls else "no recalls"
    lines = [
        f"`{shlex.join(['.venv/bin/python', 'bench/load.py', *sys.argv[1:]])}` — {plural(args.clients, 'client')} as "
        f"{plural(args.users, 'user')} on one project, {args.transport} on loopback, write ratio {args.write_ratio}, {os.cpu_count()} cores "
        f"(server and clients on the same machine).", "",
        "| clients | transport | seconds | ops | ops/s | errors | lost | server RSS peak (MB) | memories (/metrics) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {args.clients} | {args.transport} | {elapsed:.1f} | {ops} | {ops / elapsed:.1f} | {errors} | {checks['lost']} | "
        f"{checks['rss_mb']:.0f} | {checks['memories']} |", "",
        "| op | ok | failed | p50 (ms) | p95 (ms) | p99 (ms) |", "|---|---|---|---|---|---|",
        *[f"| {op} | {len(tally.latency[op])} | {tally.failed[op]} | " +
          " | ".join(f"{pct(tally.latency[op], q):.0f}" if tally.latency[op] else "-" for q in (0.5, 0.95, 0.99)) + " |"
          for op in OPS], "",
        "remember statuses: " + (", ".join(f"{k} {v}" for k, v in sorted(tally.statuses.items())) or "none") +
        f" (every fact unique). Recall returned the asked-about fact in its top {RECALL_LIMIT}: {found}.",
        "Errors by kind: " + ("; ".join(f"{kind}: {n}" for kind, n in tally.errors.most_common()) or "none") +
        f". MCP sessions opened: {tally.sessions_opened}.",
        f"CPU used while the clients ran: server {checks['server_cpu']:.0f} s, load clients {checks['client_cpu']:.0f} s, "
        f"other processes {checks['other_cpu']:.0f} s (of {os.cpu_count()} cores x {elapsed:.0f} s = {(os.cpu_count() or 1) * elapsed:.0f} s).",
        f"Nothing lost: {len({f.id for f in tally.facts})} acknowledged ids; missing while serving {checks['lost_live']}, "
        f"after stopping the server and reopening the store {checks['lost_reopened']}; content altered {checks['altered']}. "
        f"Server stopped with SIGTERM: exit status {checks['exit']}. /metrics: HTTP answers >= 400 {checks['server_http_errors']:.0f}, "
        f"tool calls not ok {checks['server_tool_errors']:.0f}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--transport", choices=["http", "sse"], default="http")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--write-ratio", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data dir, tokens, server log)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="headroom-load-"))
    data_dir, log = work / "store", work / "server.log"
    tokens = TokenFile(data_dir / "tokens.json")
    user_tokens = [tokens.create(f"user{i}", [PROJECT], "write", name="load")[0] for i in range(args.users)]
    admin_token = tokens.create("load-admin", ["*"], "admin", name="metrics")[0]
    proc, base = start_server(data_dir, args.transport, log)
    url = base + ("/sse" if args.transport == "sse" else "/mcp")
    try:
        server_cpu, client_cpu, all_cpu = cpu_seconds(proc.pid), time.process_time(), machine_cpu_seconds()
        tally, elapsed = anyio.run(drive, url, args.transport, user_tokens, args.clients, args.seconds, args.write_ratio)
        client_cpu, all_cpu = time.process_time() - client_cpu, machine_cpu_seconds() - all_cpu
        alive = proc.poll() is None
        server_cpu = cpu_seconds(proc.pid) - server_cpu if alive else float("nan")
        samples = scrape(base, admin_token) if alive else {}
        rss = peak_rss_mb(proc.pid) if alive else float("nan")
        live = stored(data_dir, embedded=False) if alive else {}
    finally:
        if proc.poll() is None:
            proc.terminate()
        exit_status = proc.wait(timeout=60)
    lost_live = missing(tally.facts, live)[0] if alive else 0
    lost_reopened, altered = missing(tally.facts, stored(data_dir, embedded=True))
    checks = {
        "lost": max(lost_live, lost_reopened), "lost_live": lost_live if alive else "unchecked (server died)",
        "lost_reopened": lost_reopened, "altered": altered, "exit": exit_status, "rss_mb": rss,
        "server_cpu": server_cpu, "client_cpu": client_cpu, "other_cpu": max(0.0, all_cpu - server_cpu - client_cpu),
        "memories": int(samples.get("headroom_memories", -1)),
        "server_http_errors": sum(v for k, v in samples.items()
                                  if k.startswith("headroom_http_responses_total") and int(k.split('"')[1]) >= 400),
        "server_tool_errors": sum(v for k, v in samples.items()
                                  if k.startswith("headroom_tool_calls_total") and 'outcome="ok"' not in k),
    }
    text = report(args, tally, elapsed, checks)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    server_log = log.read_text().strip()
    if server_log:
        print(f"\nserver log ({log}):\n{server_log[-4000:]}", file=sys.stderr)
    if args.keep:
        print(f"kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    failed = tally.errors or checks["lost"] or altered or not alive
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
