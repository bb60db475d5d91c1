"""A local HTTP server that answers like the Anthropic Messages API, for integration tests.

Speaks enough of the wire format for the official ``anthropic`` clients:

* ``POST /v1/messages`` (also ``?beta=true``): a JSON ``message``, or with ``"stream": true`` a
  ``text/event-stream`` of ``message_start``, ``content_block_start``, ``ping``,
  ``content_block_delta`` (one word each), ``content_block_stop``, ``message_delta`` and
  ``message_stop`` events, each written as ``event:`` and ``data:`` lines.
* The same request through the Vertex AI route (``.../publishers/anthropic/models/{model}:rawPredict``
  or ``:streamRawPredict``) and the Bedrock route (``/model/{model}/invoke``, JSON only), where the
  model is named by the path.
* Errors with Anthropic's ``{"type": "error", "error": {...}}`` body, a malformed body, a body
  without usage, and a stream cut off midway, chosen per request by the ``x-fake-scenario`` header
  (see :data:`SCENARIOS`).

Token counts (the fake tokenizer: one token per :data:`CHARS_PER_TOKEN` characters of a block's
text, rounded up; one output token per word of the reply) and prompt caching follow Anthropic's
rules: a block with ``cache_control`` (or the request's top-level ``cache_control``, which marks the
last block) is a cache breakpoint; the longest prefix ending at a breakpoint that was written
before is *read*, each later breakpoint *writes* the blocks since the previous one with its TTL
(``5m`` by default, or ``1h``), and ``input_tokens`` counts only the blocks after the last
breakpoint (Anthropic's input tokens exclude cache reads and writes). The cache is the server's,
so a second identical request reads what the first one wrote. Every request and the usage the
server answered it with are kept in :attr:`FakeAnthropicServer.requests`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ._http import FakeHandler, FakeServer, ServerState, serving

__all__ = [
    "CHARS_PER_TOKEN",
    "COMPACTION",
    "REPLY_TEXT",
    "SCENARIOS",
    "SNAPSHOTS",
    "THINKING_TOKENS",
    "FakeAnthropicServer",
    "MessageUsage",
    "RecordedRequest",
    "block_tokens",
    "response_model",
    "serve",
]

REPLY_TEXT = "Hello from the fake Anthropic server, streamed one word at a time."
"""The assistant's reply to every request (one output token per word)."""

CHARS_PER_TOKEN = 3
"""The fake tokenizer: characters of text per input token (unlike the 4 of our local estimate)."""

THINKING_TOKENS = 24
"""Output tokens reported as thinking when the request enables ``thinking``."""

COMPACTION = (5000, 400)
"""(input, output) tokens of the compaction iteration the ``compaction`` scenario reports."""

SNAPSHOTS: Mapping[str, str] = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-5@20250929": "claude-sonnet-4-5-20250929",  # Vertex id
    "anthropic.claude-sonnet-4-5-20250929-v1:0": "claude-sonnet-4-5-20250929",  # Bedrock id
}
"""Request model -> the model the response names (the dated snapshot, as Anthropic answers)."""

SCENARIOS: Mapping[str, str] = {
    "rate-limited": "429 with a rate_limit_error body",
    "server-error": "500 with an api_error body",
    "overloaded": "529 with an overloaded_error body",
    "overloaded-once": "529 on the first attempt (x-stainless-retry-count 0), then the normal answer",
    "malformed": "200 with a truncated JSON body",
    "compaction": "the answer's usage has a compaction iteration (COMPACTION tokens) beside the message one",
    "no-usage": "200 with a message that has no usage",
    "cut-after-3": "stream: the connection closes after 3 events (message_start and two more)",
    "cut-after-0": "stream: the connection closes right after the response headers",
}
"""Value of the ``x-fake-scenario`` request header -> what the server does instead of answering."""

_ERRORS: Mapping[str, tuple[int, str, str]] = {
    "rate-limited": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "server-error": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "overloaded-once": (529, "overloaded_error", "Overloaded"),
}


def response_model(request_model: str) -> str:
    """Return the model name the server puts in its response for *request_model*."""
    return SNAPSHOTS.get(request_model, request_model)


def block_tokens(text: str) -> int:
    """Return the input tokens of one block of *text* for the fake tokenizer."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class MessageUsage:
    """The usage the server reports for one request, in Anthropic's (exclusive) semantics."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_5m_input_tokens: int = 0
    cache_1h_input_tokens: int = 0
    thinking_tokens: int = 0
    compaction: tuple[int, int] | None = None
    """(input, output) tokens of a compaction iteration, which the top-level counts leave out."""

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_5m_input_tokens + self.cache_1h_input_tokens

    @property
    def total_input_tokens(self) -> int:
        """All input tokens, cache reads and writes included (OpenTelemetry semantics)."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def as_json(self, *, output_tokens: int | None = None) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.cache_1h_input_tokens,
            },
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }
        if self.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        if self.compaction is not None:
            usage["iterations"] = [
                {
                    "type": "compaction",
                    "input_tokens": self.compaction[0],
                    "output_tokens": self.compaction[1],
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                },
                {
                    "type": "message",
                    "input_tokens": self.input_tokens,
                    "output_tokens": self.output_tokens,
                    "cache_read_input_tokens": self.cache_read_input_tokens,
                    "cache_creation_input_tokens": self.cache_creation_input_tokens,
                },
            ]
        return usage

    def delta_json(self) -> dict[str, Any]:
        """The cumulative usage of a ``message_delta`` event (no TTL breakdown, as the API sends it)."""
        usage: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        if self.compaction is not None:
            usage["iterations"] = self.as_json()["iterations"]
        return usage


@dataclass
class RecordedRequest:
    """One request as the server received it, and the usage it answered with (``None``: no answer)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    usage: MessageUsage | None = None


def _blocks(body: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The prompt as (text, cache TTL or None) blocks: system first, then every message's content."""
    out: list[tuple[str, str | None]] = []

    def add(content: Any) -> None:
        if isinstance(content, str):
            out.append((content, None))
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                text = block.get("text")
                text = text if isinstance(text, str) else json.dumps(block, sort_keys=True)
                cache = block.get("cache_control")
                out.append((text, (cache.get("ttl") or "5m") if isinstance(cache, dict) else None))

    add(body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            add(message.get("content"))
    top = body.get("cache_control")
    if isinstance(top, dict) and out:  # automatic caching: a breakpoint on the last block
        out[-1] = (out[-1][0], top.get("ttl") or "5m")
    return out


class _PromptCache:
    """The server's prompt cache: digests of prefixes that end at a written breakpoint."""

    def __init__(self) -> None:
        self._written: set[str] = set()
        self._lock = threading.Lock()

    def usage(self, body: Mapping[str, Any], output_tokens: int, thinking_tokens: int) -> MessageUsage:
        blocks = _blocks(body)
        digest = hashlib.sha256(str(body.get("model", "")).encode())
        ends: list[tuple[int, int, str, str]] = []  # (block index, tokens so far, digest, ttl)
        total = 0
        for index, (text, ttl) in enumerate(blocks):
            digest.update(text.encode() + b"\x00")
            total += block_tokens(text)
            if ttl is not None:
                ends.append((index, total, digest.hexdigest(), ttl))
        with self._lock:
            hit = max((i for i, end in enumerate(ends) if end[2] in self._written), default=-1)
            read = ends[hit][1] if hit >= 0 else 0
            written = {"5m": 0, "1h": 0}
            boundary = read
            for _, upto, key, ttl in ends[hit + 1 :]:
                written["1h" if ttl == "1h" else "5m"] += upto - boundary
                boundary = upto
                self._written.add(key)
        return MessageUsage(
            input_tokens=total - boundary,
            output_tokens=output_tokens,
            cache_read_input_tokens=read,
            cache_5m_input_tokens=written["5m"],
            cache_1h_input_tokens=written["1h"],
            thinking_tokens=thinking_tokens,
        )


@dataclass
class _State(ServerState[RecordedRequest]):
    cache: _PromptCache = field(default_factory=_PromptCache)


class _Handler(FakeHandler):
    server_version = "fake-anthropic/1.0"

    # --- plumbing ---------------------------------------------------------------------------

    def _send_body(self, status: int, data: bytes) -> None:
        headers = {"request-id": f"req_fake_{status}"}
        if status == 429:
            headers["retry-after"] = "30"
        if status == 529:
            headers["retry-after-ms"] = "5"  # a retrying client waits 5 ms, not seconds
        self._send_bytes(status, data, headers=headers)

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        self._send_body(status, json.dumps(payload).encode())

    def _send_error(self, status: int, err_type: str, message: str) -> None:
        payload = {"type": "error", "error": {"type": err_type, "message": message}, "request_id": "req_fake_error"}
        self._send_json(status, payload)

    # --- routes -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        body = self._read_json()
        path = self.path.split("?", 1)[0]
        model, stream = str(body.get("model", "")), bool(body.get("stream"))
        if path.endswith((":rawPredict", ":streamRawPredict")) and "/publishers/anthropic/models/" in path:
            model = path.rsplit("/", 1)[1].rsplit(":", 1)[0]  # Vertex: the model is in the path
            stream = path.endswith(":streamRawPredict")
        elif path.startswith("/model/") and path.endswith("/invoke"):
            model = unquote(path[len("/model/") : -len("/invoke")])  # Bedrock
        elif path != "/v1/messages":
            self._send_error(404, "not_found_error", f"Unknown route: POST {path}")
            return
        request = RecordedRequest("POST", self.path, dict(self.headers.items()), body)
        self._record(request)
        scenario = self.headers.get("x-fake-scenario", "")
        first_attempt = self.headers.get("x-stainless-retry-count", "0") == "0"
        if scenario in _ERRORS and (scenario != "overloaded-once" or first_attempt):
            self._send_error(*_ERRORS[scenario])
            return
        if scenario == "malformed":
            self._send_body(200, b'{"id": "msg_fake", "type": "message", "content": [{"type": "te')
            return
        words, stop_reason = self._reply(body)
        thinking = THINKING_TOKENS if isinstance(body.get("thinking"), dict) else 0
        usage = self.server.state.cache.usage(body, len(words) + thinking, thinking)
        if scenario == "compaction":
            usage = dataclasses.replace(usage, compaction=COMPACTION)
        request.usage = usage
        message = {
            "id": f"msg_fake{len(self.server.state.requests)}",
            "type": "message",
            "role": "assistant",
            "model": response_model(model),
            "content": [{"type": "text", "text": " ".join(words)}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage.as_json(),
        }
        if scenario == "no-usage":
            del message["usage"]
            request.usage = None
        if stream:
            self._stream(message, words, usage, scenario)
        else:
            self._send_json(200, message)

    @staticmethod
    def _reply(body: Mapping[str, Any]) -> tuple[list[str], str]:
        words = REPLY_TEXT.split()
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit < len(words):
            return words[:limit], "max_tokens"
        return words, "end_turn"

    def _stream(self, message: dict[str, Any], words: list[str], usage: MessageUsage, scenario: str) -> None:
        start = {**message, "content": [], "stop_reason": None, "usage": usage.as_json(output_tokens=1)}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        for i, word in enumerate(words):
            delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        delta_event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": usage.delta_json(),
        }
        events.append(("message_delta", delta_event))
        events.append(("message_stop", {"type": "message_stop"}))
        cut_after = int(scenario.rpartition("-")[2]) if scenario.startswith("cut-after-") else None

        self._start_chunked(
            "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache", "request-id": "req_fake_stream"}
        )
        for sent, (name, data) in enumerate(events):
            if sent == cut_after:
                self._drop_connection()
                return
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._chunk(b"")  # the terminating zero-length chunk


class FakeAnthropicServer(FakeServer[RecordedRequest]):
    """The fake Anthropic API on 127.0.0.1, on a free port; start with :meth:`start` or ``with``.

    Its ``base_url`` is the ``anthropic`` client's (the SDK adds ``/v1/messages``).
    """

    handler = _Handler
    state_type = _State
    thread_name = "fake-anthropic"


def serve() -> AbstractContextManager[FakeAnthropicServer]:
    """Run a :class:`FakeAnthropicServer` for the duration of the block."""
    return serving(FakeAnthropicServer)
