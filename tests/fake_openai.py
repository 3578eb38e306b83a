"""A small OpenAI-compatible chat server on loopback for tests: a real HTTP server whose
answers come from a Python function of the request body."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

# answer(body) -> a chat message dict, or (status, text) for an HTTP error. It runs in the
# server's request thread, so it may sleep to play a slow model.
Answer = Callable[[dict], object]


def message(content: str = "", tool_calls: list | None = None) -> dict:
    return {"role": "assistant", "content": content, "tool_calls": tool_calls}


def tool(name: str, arguments: dict | str) -> dict:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}


def last_user(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


class _Handler(BaseHTTPRequestHandler):
    answer: Answer
    requests: list

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # readiness: /v1/models
        self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        out = self.server.answer(body)
        if isinstance(out, tuple):
            status, text = out
            self._send(status, {"error": text})
            return
        tokens = len((out.get("content") or "").split())
        self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                         "choices": [{"index": 0, "message": out, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fake_openai(answer: Answer) -> Iterator[tuple[str, list]]:
    """Serve ``answer`` on 127.0.0.1; yields (base URL ending in /v1, the request bodies seen)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.answer = answer
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.requests
    finally:
        server.shutdown()
        server.server_close()
