"""A model service on loopback that plays a script, so the real agent CLIs can run a turn offline.

It speaks just enough of Anthropic's Messages API (Claude Code), OpenAI's Responses API
(Codex CLI) and Gemini's ``streamGenerateContent`` (Gemini CLI): each request to a model is answered with the next
step of its script (a tool call, or final text once the script is used up), and every
request body is kept so a test can see what the client sent (hook context, tool results).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedModel:
    def __init__(self, tool_calls: list[tuple[str, dict[str, Any]]]):
        """``tool_calls``: (tool name as the client names it, arguments), in order."""
        self.script = list(tool_calls)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, "application/json", b"{}")

            def do_HEAD(self) -> None:
                self._send(200, "application/json", b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {}
                if "count_tokens" in self.path:
                    return self._send(200, "application/json", b'{"input_tokens": 12}')
                with model._lock:
                    model.requests.append({"path": self.path, "body": payload})
                    step = model.script.pop(0) if model.script and model._wants_step(payload) else None
                if self.path.startswith("/v1/messages"):
                    return self._send(200, "text/event-stream", model._anthropic(step))
                if self.path.startswith("/v1/responses"):
                    return self._send(200, "text/event-stream", model._responses(step))
                if ":streamGenerateContent" in self.path or ":generateContent" in self.path:
                    return self._send(200, "text/event-stream", model._gemini(step))
                self._send(404, "application/json", b'{"error": "not scripted"}')

            def _send(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    @staticmethod
    def _wants_step(payload: dict[str, Any]) -> bool:
        """Side requests (titles, summaries) carry no tools: they never consume the script."""
        return bool(payload.get("tools"))

    @staticmethod
    def _events(events: list[tuple[str, dict[str, Any]]]) -> bytes:
        return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()

    def _anthropic(self, step: tuple[str, dict[str, Any]] | None) -> bytes:
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
        if step:
            name, arguments = step
            block = {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": "Done."}
            stop = "end_turn"
        return self._events([
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}}),
            ("message_stop", {"type": "message_stop"}),
        ])

    def _responses(self, step: tuple[str, dict[str, Any]] | None) -> bytes:
        """Codex: an MCP tool is called as ``{"namespace": "mcp__<server>", "name": <tool>}``."""
        if step:
            namespace, _, tool = step[0].rpartition("__")
            item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "namespace": namespace, "name": tool,
                    "arguments": json.dumps(step[1]), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}
        usage = {"input_tokens": 10, "input_tokens_details": None, "output_tokens": 5, "output_tokens_details": None, "total_tokens": 15}
        return self._events([
            ("response.created", {"type": "response.created", "response": {"id": "resp_1"}}),
            ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed", "response": {"id": "resp_1", "usage": usage}}),
        ])

    @staticmethod
    def _gemini(step: tuple[str, dict[str, Any]] | None) -> bytes:
        part = {"functionCall": {"name": step[0], "args": step[1]}} if step else {"text": "Done."}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}
        return f"data: {json.dumps(chunk)}\n\n".encode()
