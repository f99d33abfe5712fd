"""``with_memory``: a real ``openai`` client against an OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from openai import AsyncOpenAI, OpenAI

from headroom_mcp import with_memory
from headroom_mcp.wrap import HEADING


class ChatServer:
    """``/v1/chat/completions`` answering each call with the next scripted text (streamed in small pieces when asked)."""

    def __init__(self, replies: list[str], piece: int = 5):
        self.replies, self.requests = list(replies), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                text = server.replies.pop(0)
                if body.get("stream"):
                    chunks = [text[i:i + piece] for i in range(0, len(text), piece)]
                    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": c}, "finish_reason": None}]} for c in chunks]
                    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    data = "".join(f"data: {json.dumps({'id': 'c1', 'object': 'chat.completion.chunk', 'created': 1, 'model': 'm', **e})}\n\n" for e in events)
                    data += "data: [DONE]\n\n"
                    ctype = "text/event-stream"
                else:
                    data = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                    ctype = "application/json"
                raw = data.encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def system_messages(self, n: int) -> list[str]:
        return [m["content"] for m in self.requests[n]["messages"] if m["role"] == "system" and HEADING in m["content"]]


@pytest.fixture
def chat(request):
    server = ChatServer(request.param if hasattr(request, "param") else [])
    yield server
    server.http.shutdown()


def ask(text: str, history: list | None = None) -> dict:
    return {"model": "m", "messages": [*(history or []), {"role": "user", "content": text}]}


REPLY = "Noted, I will use uv.\n<memory>\n- the user prefers uv over pip\n- the user deploys on Tuesdays\n</memory>"


@pytest.mark.parametrize("chat", [[REPLY, "Use uv.", "Sure."]], indirect=True)
def test_facts_are_extracted_stripped_and_recalled_in_the_next_session(data_dir, chat):
    first = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice", session_id="s1", agent_id="my-app")
    reply = first.chat.completions.create(**ask("I always use uv, not pip, and we deploy on Tuesdays."))
    assert reply.choices[0].message.content == "Noted, I will use uv."
    assert "<memory>" in chat.system_messages(0)[0]  # the model was asked for the block
    first.flush()

    second = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice", session_id="s2", agent_id="my-app")
    second.chat.completions.create(**ask("should I install packages with pip or uv?"))
    [context] = chat.system_messages(1)
    assert "the user prefers uv over pip" in context and "not instructions" in context
    stored = {m["content"]: m for m in second.memory.get_all()}
    assert stored["the user deploys on Tuesdays"]["scope"] == "user" and stored["the user deploys on Tuesdays"]["agents"] == ["my-app"]
    # The next turn of the same conversation carries one fresh context message, never two.
    history = [{"role": "user", "content": "should I install packages with pip or uv?"}, {"role": "assistant", "content": "Use uv."}]
    second.chat.completions.create(**ask("and how do I add a dependency?", history))
    assert len(chat.system_messages(2)) == 1


def stream_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("chat", [[REPLY, REPLY]], indirect=True)
def test_streaming_output_is_the_unwrapped_stream_minus_the_block(data_dir, chat):
    plain = stream_text(OpenAI(base_url=chat.url, api_key="k").chat.completions.create(**ask("hi"), stream=True))
    wrapped_client = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice")
    wrapped = stream_text(wrapped_client.chat.completions.create(**ask("I prefer uv"), stream=True))
    assert plain == REPLY  # pieces of five characters split the tags across chunks
    assert wrapped == re.sub(r"<memory>.*?</memory>", "", REPLY, flags=re.S)
    wrapped_client.flush()
    assert {m["content"] for m in wrapped_client.memory.get_all()} == {"the user prefers uv over pip", "the user deploys on Tuesdays"}


@pytest.mark.parametrize("chat", [[REPLY, REPLY]], indirect=True)
def test_async_client_plain_and_streaming(data_dir, chat):
    async def go():
        client = with_memory(AsyncOpenAI(base_url=chat.url, api_key="k"), user_id="alice")
        reply = await client.chat.completions.create(**ask("I prefer uv"))
        stream = await client.chat.completions.create(**ask("again"), stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return client, reply.choices[0].message.content, text

    client, content, text = asyncio.run(go())
    assert content == "Noted, I will use uv." and "<memory>" not in text and text.startswith("Noted, I will use uv.")
    client.flush()
    assert len(client.memory.get_all()) == 2  # the same two facts from both calls, merged


@pytest.mark.parametrize("chat", [["Answer first. <memory>\n- half a block", "a < b and <mem is not a tag", "plain"]], indirect=True)
def test_malformed_or_missing_blocks_never_break_the_response(data_dir, chat):
    client = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice")
    assert client.chat.completions.create(**ask("x")).choices[0].message.content == "Answer first."
    assert client.chat.completions.create(**ask("y")).choices[0].message.content == "a < b and <mem is not a tag"
    assert client.chat.completions.create(**ask("z")).choices[0].message.content == "plain"


@pytest.mark.parametrize("chat", [["fine"]], indirect=True)
def test_an_unreachable_store_never_breaks_the_call(chat, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    client = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice", data_dir=str(blocked / "store"))
    assert client.chat.completions.create(**ask("hello")).choices[0].message.content == "fine"


def test_memory_handle_and_any_object_with_chat_completions_create(data_dir):
    calls = []

    def create(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="ok <memory>- the user likes short answers</memory>"))])

    duck = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)), other="kept")
    client = with_memory(duck, user_id="bob")
    assert client.other == "kept"
    assert client.chat.completions.create(**ask("be brief")).choices[0].message.content == "ok"
    client.flush()
    added = client.memory.add("the user works in Berlin", importance=0.9)
    assert added["status"] == "created"
    assert [m["content"] for m in client.memory.search("where does the user work?", top_k=1)] == ["the user works in Berlin"]
    assert client.memory.stats()["total"] == 2
    assert client.memory.clear()["forgotten"] == 2 and client.memory.get_all() == []
    kept = client.memory.remember("the user works in Lisbon now")
    assert [m["id"] for m in client.memory.recall("where does the user work?", limit=1)] == [kept["id"]]
    assert [m["id"] for m in client.memory.list()] == [kept["id"]] and kept["scope"] == "user"


@pytest.mark.parametrize("chat", [["Sure.", "Sure."]], indirect=True)
def test_an_app_serving_many_users_shows_project_memories_only_when_it_names_the_project(data_dir, chat, tmp_path, monkeypatch):
    import subprocess

    from headroom_mcp import SyncMemory

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "https://github.com/acme/atlas.git"], check=True)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("HEADROOM_MCP_PROJECT")
    with SyncMemory(user_id="bob", project="github.com/acme/atlas") as bob:
        bob.save("bob's customer Initech renews its contract in March", scope="project")

    alice = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice", session_id="s1")
    alice.chat.completions.create(**ask("when does Initech renew its contract?"))
    assert "Initech" not in " ".join(chat.system_messages(0)) and alice.memory.get_all() == []
    named = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="alice", session_id="s2", project="github.com/acme/atlas")
    named.chat.completions.create(**ask("when does Initech renew its contract?"))
    assert "Initech renews its contract in March" in chat.system_messages(1)[0]


#: The reply a chat model wrote to "I prefer Go for performance-critical code" under the
#: wrapper's system message (a helper session playing the model, shown only that request;
#: docs/quality.md, "As the agent asks"). Its fact names what kind of thing it is, as the
#: message asks, and so the question below finds it.
SEED_REPLY = "Got it \u2014 I'll default to Go when we're working on performance-critical code. It's a solid choice there: it compiles to native code, has cheap concurrency with goroutines and channels, predictable low-latency garbage collection, and good built-in profiling (pprof, benchmarks in `go test`) for finding hot spots.\n\nIf you ever want me to suggest something else for a particular case (for example, very tight latency budgets where manual memory control matters), I'll flag it, but Go will be my starting point.\n\n<memory>\nthe user's preferred language for performance-critical code is Go\n</memory>"


@pytest.mark.parametrize("chat", [[SEED_REPLY, "Go.", "Use flexbox."]], indirect=True)
def test_the_seed_example_carries_a_preference_into_a_new_session_and_nothing_else(data_dir, chat):
    first = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="bob", session_id="s1")
    first.chat.completions.create(**ask("I prefer Go for performance-critical code"))
    first.flush()
    later = with_memory(OpenAI(base_url=chat.url, api_key="k"), user_id="bob", session_id="s2")
    later.chat.completions.create(**ask("What language for my new microservice?"))
    [context] = chat.system_messages(1)
    assert "preferred language for performance-critical code is Go" in context
    later.chat.completions.create(**ask("How do I center a div in CSS?"))
    assert all("performance-critical" not in m for m in chat.system_messages(2))  # the ask for a block, no memory
