"""``with_memory(client)``: the shared memory store for any OpenAI-compatible chat client.

    from openai import OpenAI
    from headroom_mcp import with_memory
    client = with_memory(OpenAI(), user_id="alice", session_id="s1", agent_id="my-app")
    client.chat.completions.create(model=..., messages=[...])   # used exactly as before

Before each call the memories relevant to the latest user message are recalled (same
scopes and visibility as the MCP server) and put into one framed system message, which
replaces the one a previous turn added, so context never piles up turn after turn. The
same message asks the model to end its reply with a small ``<memory>`` block of new facts
worth keeping; the wrapper cuts that block out of what the caller sees (also from a
stream, as it arrives, even when the tag is split across chunks) and saves the facts on a
background thread, so the caller waits for no extra model call and no store write. A
malformed or missing block never breaks a response: the text is passed through.

Works with sync and async clients and anything exposing ``chat.completions.create``;
every other attribute is the wrapped client's own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from . import injection
from .api import SyncMemory
from .config import named_project
from .methods import FACT_WORDING, RECALL_LIMIT

log = logging.getLogger("headroom_mcp.wrap")

HEADING = injection.HEADING
OPEN, CLOSE = "<memory>", "</memory>"
EXTRACTION = (
    "If the user's message states something durable worth remembering in later conversations "
    "(a preference, a decision, a fact about them or their work), end your reply with a block "
    f"{OPEN} one fact per line {CLOSE} holding only those facts, in plain words. {FACT_WORDING} "
    "Omit the block when there is nothing new. Never put secrets in it."
)
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.S)


def parse_block(text: str) -> tuple[str, list[str]]:
    """(the text without any memory block, the facts in it). An unclosed block runs to the end."""
    facts: list[str] = []
    for match in _BLOCK.finditer(text):
        for line in match.group(1).splitlines():
            fact = line.strip().lstrip("-*•").strip()
            if fact:
                facts.append(fact)
    cleaned = _BLOCK.sub("", text)
    return (cleaned.rstrip() if cleaned != text else text), facts


class StreamStripper:
    """Removes the memory block from text arriving in pieces, holding back only what could be a tag."""

    def __init__(self) -> None:
        self.pending = ""  # text that might be the start of OPEN
        self.block: str | None = None  # inside the block: its text so far
        self.block_text = ""  # a closed block's text
        self.finished = False

    def feed(self, piece: str) -> str:
        out: list[str] = []
        text = self.pending + piece
        self.pending = ""
        while text:
            if self.block is not None:
                end = text.find(CLOSE)
                if end < 0:
                    self.block += text
                    return "".join(out)
                self.block_text, self.block = self.block + text[:end], None
                text = text[end + len(CLOSE):]
                continue
            start = text.find(OPEN)
            if start >= 0:
                out.append(text[:start])
                self.block = ""
                text = text[start + len(OPEN):]
                continue
            keep = _partial_prefix(text, OPEN)
            out.append(text[: len(text) - keep])
            self.pending = text[len(text) - keep:]
            break
        return "".join(out)

    def finish(self) -> tuple[str, list[str]]:
        """Text still held back (a tag that never completed), and the facts of the block."""
        self.finished = True
        block = self.block if self.block is not None else self.block_text
        _, facts = parse_block(f"{OPEN}{block}{CLOSE}") if block else ("", [])
        rest, self.pending = self.pending, ""
        return rest, facts


def _partial_prefix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that begins ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def _text_of(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


class MemoryHandle:
    """``client.memory``: the store as this wrapper's user, session and agent see it.

    Named as ``SyncMemory``'s methods; ``search(top_k=)``, ``add`` and ``get_all`` are the
    names the first releases gave the same calls."""

    def __init__(self, memory: SyncMemory):
        self._memory = memory

    def recall(self, query: str, limit: int = RECALL_LIMIT, asked_by: str | None = None) -> list[dict[str, Any]]:
        return self._memory.recall(query, limit=limit, asked_by=asked_by)

    def search(self, query: str, top_k: int = RECALL_LIMIT) -> list[dict[str, Any]]:
        return self.recall(query, limit=top_k)

    def remember(self, content: str, importance: float | None = None) -> dict[str, Any]:
        """Keep a fact at ``user`` scope, as the facts the wrapper extracts are kept."""
        return self._memory.remember(content, scope="user", importance=importance)

    def list(self) -> list[dict[str, Any]]:
        return self._memory.list()

    add = remember
    get_all = list

    def stats(self) -> dict[str, Any]:
        return self._memory.stats()

    def clear(self) -> dict[str, Any]:
        return self._memory.clear()


class _Completions:
    def __init__(self, wrapper: MemoryClient, inner: Any):
        self._wrapper, self._inner = wrapper, inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        if self._wrapper._is_async:
            return self._wrapper._create_async(self._inner.create, args, kwargs)
        return self._wrapper._create(self._inner.create, args, kwargs)


class _Chat:
    def __init__(self, wrapper: MemoryClient, inner: Any):
        self._inner = inner
        self.completions = _Completions(wrapper, inner.completions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class MemoryClient:
    """The wrapped client: ``chat.completions.create`` with memory, everything else untouched."""

    def __init__(self, client: Any, memory: SyncMemory, budget_tokens: int, extract: bool):
        self._client = client
        self._store = memory
        self._budget = budget_tokens
        self._extract = extract
        create = client.chat.completions.create
        self._is_async = inspect.iscoroutinefunction(create) or "Async" in type(client.chat.completions).__name__
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="headroom-memory")
        self.chat = _Chat(self, client.chat)
        self.memory = MemoryHandle(memory)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    # -- before the call --

    def _with_context(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The request with our one system message (fresh context + extraction ask) in place."""
        messages = [m for m in kwargs.get("messages") or [] if HEADING not in _text_of(m) or _role(m) != "system"]
        latest = next((_text_of(m) for m in reversed(messages) if _role(m) == "user"), "")
        parts = []
        if latest.strip():
            try:
                results = self._store.recall(**injection.prompt_recall(latest))
                parts.append(injection.render(results, self._budget, heading=HEADING))
            except Exception as exc:  # memory must never break the call
                log.warning("recall failed: %s", exc)
        if self._extract:
            parts.append(("" if parts and parts[0] else f"## {HEADING}\n") + EXTRACTION)
        parts = [p for p in parts if p]
        if parts:
            at = next((i for i, m in enumerate(messages) if _role(m) != "system"), len(messages))
            messages.insert(at, {"role": "system", "content": "\n\n".join(parts)})
        return {**kwargs, "messages": messages}

    # -- after the call --

    def _save(self, facts: list[str]) -> None:
        for fact in facts[:10]:
            self._writer.submit(self._save_one, fact)

    def _save_one(self, fact: str) -> None:
        try:
            self._store.remember(fact, scope="user")
        except Exception as exc:
            log.warning("could not save extracted fact %r: %s", fact[:80], exc)

    def _strip_response(self, response: Any) -> Any:
        if not self._extract:
            return response
        try:
            for choice in response.choices[:1]:
                content = choice.message.content
                if isinstance(content, str) and OPEN in content:
                    cleaned, facts = parse_block(content)
                    choice.message.content = cleaned
                    self._save(facts)
        except Exception as exc:
            log.warning("could not read the memory block: %s", exc)
        return response

    def _strip_chunk(self, chunk: Any, stripper: StreamStripper) -> Any:
        try:
            delta = chunk.choices[0].delta
            if isinstance(delta.content, str):
                delta.content = stripper.feed(delta.content)
            if chunk.choices[0].finish_reason is not None:
                rest, facts = stripper.finish()
                if rest:
                    delta.content = (delta.content or "") + rest
                self._save(facts)
        except (AttributeError, IndexError, TypeError):
            pass
        return chunk

    def _end_of_stream(self, last: Any, stripper: StreamStripper) -> Any | None:
        """For a stream that ended without a finish chunk: a last chunk with held-back text, if any."""
        if stripper.finished:
            return None
        rest, facts = stripper.finish()
        self._save(facts)
        if not rest or last is None:
            return None
        tail = copy.deepcopy(last)
        try:
            tail.choices[0].delta.content = rest
        except (AttributeError, IndexError, TypeError):
            return None
        return tail

    # -- the calls --

    def _create(self, create: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = create(*args, **self._with_context(kwargs))
        if kwargs.get("stream") and self._extract:
            return _SyncStream(self, result)
        return self._strip_response(result)

    async def _create_async(self, create: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        prepared = await asyncio.to_thread(self._with_context, kwargs)
        result = await create(*args, **prepared)
        if kwargs.get("stream") and self._extract:
            return _AsyncStream(self, result)
        return self._strip_response(result)

    def flush(self, timeout: float | None = 30) -> None:
        """Wait for extracted facts still being saved (tests, and scripts about to exit)."""
        self._writer.submit(lambda: None).result(timeout)


def _role(message: Any) -> str:
    return str(message.get("role") if isinstance(message, dict) else getattr(message, "role", ""))


class _SyncStream:
    """The client's stream with the memory block cut out of the text as it arrives."""

    def __init__(self, wrapper: MemoryClient, stream: Any):
        self._wrapper, self._stream, self._stripper = wrapper, stream, StreamStripper()

    def __iter__(self) -> Iterator[Any]:
        last = None
        for last in self._stream:
            yield self._wrapper._strip_chunk(last, self._stripper)
        tail = self._wrapper._end_of_stream(last, self._stripper)
        if tail is not None:
            yield tail

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self._stream, "close", None)
        if close:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AsyncStream:
    def __init__(self, wrapper: MemoryClient, stream: Any):
        self._wrapper, self._stream, self._stripper = wrapper, stream, StreamStripper()

    async def __aiter__(self) -> AsyncIterator[Any]:
        last = None
        async for last in self._stream:
            yield self._wrapper._strip_chunk(last, self._stripper)
        tail = self._wrapper._end_of_stream(last, self._stripper)
        if tail is not None:
            yield tail

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        close = getattr(self._stream, "close", None)
        if close:
            result = close()
            if inspect.isawaitable(result):
                await result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def with_memory(
    client: Any,
    user_id: str | None = None,
    session_id: str | None = None,
    agent_id: str = "app",
    project: str | None = None,
    data_dir: str | None = None,
    budget_tokens: int = injection.PROMPT_BUDGET,
    extract: bool = True,
) -> MemoryClient:
    """``client`` with shared memory: recalled context before each call, facts kept after it.

    ``user_id``, ``session_id`` and ``data_dir`` fall back to the same ``HEADROOM_MCP_*``
    settings as every other entry point; extracted facts are saved at ``user`` scope, so a
    later session of the same user recalls them. ``project`` is only what the app names
    (the argument or ``HEADROOM_MCP_PROJECT``), never the working directory's repository:
    project memories are shared by every user of a project, and an app serving many end
    users must not show one user's project notes to another.
    """
    project = project if project is not None else named_project()
    memory = SyncMemory(user_id=user_id, agent_id=agent_id, project=project, session_id=session_id, data_dir=data_dir)
    return MemoryClient(client, memory, budget_tokens, extract)


__all__ = ["with_memory", "MemoryClient", "MemoryHandle", "parse_block", "StreamStripper"]
