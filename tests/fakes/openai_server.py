"""A local HTTP server that answers like the OpenAI API, for integration tests.

Speaks just enough of the wire format for the official ``openai`` client:

* ``POST /v1/chat/completions``: a JSON ``chat.completion``, or with ``"stream": true`` a
  ``text/event-stream`` of ``chat.completion.chunk`` events ending in ``data: [DONE]`` (plus a final
  ``choices: []`` chunk carrying ``usage`` when ``stream_options.include_usage`` is true).
* ``POST /v1/embeddings``: float or base64 vectors, with ``usage``.
* Errors on demand, chosen by the request's ``model`` (see :data:`ERROR_MODELS`), with OpenAI's
  ``{"error": {...}}`` body.

Token counts are a pure function of the request (:func:`chat_usage`, :func:`embedding_usage`) so a
test can compute the exact bill; every request is also kept in :attr:`FakeOpenAIServer.requests`.
The response ``model`` is the dated snapshot of the requested one (:data:`SNAPSHOTS`), as OpenAI does.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "CREATED",
    "EMBEDDING_DIMENSIONS",
    "ERROR_MODELS",
    "REPLY_TEXT",
    "SNAPSHOTS",
    "ChatUsage",
    "FakeOpenAIServer",
    "RecordedRequest",
    "chat_usage",
    "embedding_usage",
    "response_model",
    "serve",
]

CREATED = 1_700_000_000
"""The fixed ``created`` timestamp of every response."""

REPLY_TEXT = "Hello from the fake OpenAI server."
"""The assistant's reply to every chat request (streamed one word per chunk)."""

EMBEDDING_DIMENSIONS = 8

SNAPSHOTS: Mapping[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "o4-mini": "o4-mini-2025-04-16",
    # a deployment name no catalog knows, served by a model it does: only the response model prices it
    "acme-router": "gpt-4o-mini-2024-07-18",
}
"""Request model -> the dated snapshot the response names; other models are echoed unchanged."""

ERROR_MODELS: Mapping[str, tuple[int, str, str | None, str]] = {
    "rate-limited": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests. Try again later."),
    "server-error": (500, "server_error", None, "The server had an error while processing your request."),
    "bad-request": (400, "invalid_request_error", "invalid_value", "Invalid value for 'model'."),
}
"""Request model -> (HTTP status, error type, error code, message) answered instead of a result."""

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def response_model(request_model: str) -> str:
    """Return the model name the server puts in its response for *request_model*."""
    return SNAPSHOTS.get(request_model, request_model)


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text", "")) for part in content if isinstance(part, dict))
    return 0


@dataclass(frozen=True)
class ChatUsage:
    """The usage the server reports for one chat request (OpenAI semantics: subsets inside totals)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def chat_usage(body: Mapping[str, Any]) -> ChatUsage:
    """Return the usage the server reports for the chat request *body*.

    Prompt tokens are 100 plus the characters of every message's text; half of them, rounded down
    to a multiple of 64 (OpenAI caches in 64-token steps), are reported as cached. Completion
    tokens are the reply's words plus, for reasoning models (o-series, gpt-5), 32 reasoning tokens.
    """
    messages = body.get("messages") or []
    prompt = 100 + sum(_text_length(m.get("content")) for m in messages if isinstance(m, dict))
    cached = (prompt // 2) // 64 * 64
    model = str(body.get("model", ""))
    reasoning = 32 if model.startswith(_REASONING_PREFIXES) else 0
    completion = len(REPLY_TEXT.split()) + reasoning
    return ChatUsage(prompt, completion, cached, reasoning)


def embedding_usage(body: Mapping[str, Any]) -> int:
    """Return the prompt tokens the server reports for the embeddings request *body* (characters of input + 1 per item)."""
    inputs = body.get("input")
    items = [inputs] if isinstance(inputs, str) else list(inputs or [])
    return sum(len(str(item)) + 1 for item in items)


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1.0"
    timeout = 10  # an idle keep-alive connection ends its thread after this
    disable_nagle_algorithm = True  # stream chunks leave at once, not after a delayed ACK

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep test output clean

    # --- plumbing ---------------------------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{status}")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, err_type: str, code: str | None, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": err_type, "param": None, "code": code}})

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # --- routes -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        body = self._read_json()
        path = self.path.split("?", 1)[0]
        with self.server.state.lock:
            self.server.state.requests.append(RecordedRequest("POST", path, dict(self.headers.items()), body))
        model = str(body.get("model", ""))
        if model in ERROR_MODELS:
            self._send_error(*ERROR_MODELS[model])
        elif path == "/v1/chat/completions":
            if body.get("stream"):
                self._chat_stream(body)
            else:
                self._chat(body)
        elif path == "/v1/embeddings":
            self._embeddings(body)
        else:
            self._send_error(404, "invalid_request_error", "unknown_url", f"Unknown request URL: POST {path}.")

    def _chat(self, body: dict[str, Any]) -> None:
        usage = chat_usage(body)
        self._send_json(
            200,
            {
                "id": f"chatcmpl-fake{len(self.server.state.requests)}",
                "object": "chat.completion",
                "created": CREATED,
                "model": response_model(str(body["model"])),
                "system_fingerprint": "fp_fake",
                "service_tier": "default",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": REPLY_TEXT, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage.as_json(),
            },
        )

    def _chat_stream(self, body: dict[str, Any]) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-fake{len(self.server.state.requests)}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": response_model(str(body["model"])),
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }
        if include_usage:
            base["usage"] = None

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        words = REPLY_TEXT.split()
        events = [choice({"role": "assistant", "content": "", "refusal": None})]
        events += [choice({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        events.append(choice({}, "stop"))
        if include_usage:
            events.append({**base, "choices": [], "usage": chat_usage(body).as_json()})

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in events:
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # the terminating zero-length chunk

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(items):
            vector = [((len(str(item)) + index + d) % 7) / 7 for d in range(dims)]
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = embedding_usage(body)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": response_model(str(body["model"])),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes its keep-alive connection resets the handler's read; that is not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeOpenAIServer:
    """The fake OpenAI API on 127.0.0.1, on a free port; start with :meth:`start` or ``with``."""

    def __init__(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = _State()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The client's ``base_url`` (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._httpd.state.lock:
            return list(self._httpd.state.requests)

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve() -> Iterator[FakeOpenAIServer]:
    """Run a :class:`FakeOpenAIServer` for the duration of the block."""
    with FakeOpenAIServer() as server:
        yield server
