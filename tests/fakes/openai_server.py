"""A local HTTP server that answers like the OpenAI API, for integration tests.

Speaks just enough of the wire format for the official ``openai`` client:

* ``POST /v1/chat/completions``: a JSON ``chat.completion``, or with ``"stream": true`` a
  ``text/event-stream`` of ``chat.completion.chunk`` events ending in ``data: [DONE]`` (plus a final
  ``choices: []`` chunk carrying ``usage`` when ``stream_options.include_usage`` is true).
* ``POST /v1/embeddings``: float or base64 vectors, with ``usage``.
* ``POST /v1/responses``: a JSON ``response``, or with ``"stream": true`` the Responses API's
  named events (``response.created``, ``response.output_text.delta``..., ``response.completed``
  carrying the usage).
* The image and audio routes of :mod:`.openai_media` (``/v1/images/*``, ``/v1/audio/*``).
* Azure OpenAI's paths (``/openai/deployments/{deployment}/chat/completions?api-version=...``)
  answer as the ``/v1`` ones do.
* Errors on demand, chosen by the request's ``model`` (see :data:`ERROR_MODELS`), with OpenAI's
  ``{"error": {...}}`` body; :data:`MALFORMED_MODEL` gets a 200 whose body is not JSON, and
  :data:`CUT_STREAM_MODEL` a stream the server cuts off after :data:`CUT_AFTER_CHUNKS` chunks.
* A chat completion that stops on another finish reason than ``stop``, chosen by the request's
  ``model`` too (see :data:`FINISH_REASON_MODELS`): billed (with usage) as any other.

Token counts are a pure function of the request (:func:`chat_usage`, :func:`embedding_usage`) so a
test can compute the exact bill; every request is also kept in :attr:`FakeOpenAIServer.requests`.
The response ``model`` is the dated snapshot of the requested one (:data:`SNAPSHOTS`), as OpenAI does.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ._http import FakeHandler, FakeServer, serving
from .openai_media import MEDIA_ROUTES, MediaRoutes

__all__ = [
    "CREATED",
    "CUT_AFTER_CHUNKS",
    "CUT_STREAM_MODEL",
    "EMBEDDING_DIMENSIONS",
    "ERROR_MODELS",
    "FINISH_REASON_MODELS",
    "MALFORMED_MODEL",
    "REPLY_TEXT",
    "SNAPSHOTS",
    "ChatUsage",
    "FakeOpenAIServer",
    "RecordedRequest",
    "chat_usage",
    "embedding_usage",
    "response_model",
    "responses_usage",
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
    "cut-stream": "gpt-4o-mini-2024-07-18",  # CUT_STREAM_MODEL: what was streamed before the cut is priced
    "length-limited": "gpt-4o-mini-2024-07-18",  # FINISH_REASON_MODELS: billed as gpt-4o-mini
    "content-filtered": "gpt-4o-mini-2024-07-18",
}
"""Request model -> the dated snapshot the response names; other models are echoed unchanged."""

ERROR_MODELS: Mapping[str, tuple[int, str, str | None, str]] = {
    "rate-limited": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests. Try again later."),
    "server-error": (500, "server_error", None, "The server had an error while processing your request."),
    "bad-request": (400, "invalid_request_error", "invalid_value", "Invalid value for 'model'."),
}
"""Request model -> (HTTP status, error type, error code, message) answered instead of a result."""

FINISH_REASON_MODELS: Mapping[str, str] = {"length-limited": "length", "content-filtered": "content_filter"}
"""Request model -> the ``finish_reason`` its chat completion (or the last chunk of its stream) ends with."""

MALFORMED_MODEL = "malformed-json"
"""Request model answered with status 200 and a truncated, unparseable JSON body."""

CUT_STREAM_MODEL = "cut-stream"
"""Request model whose stream the server cuts off (closes the connection) midway; it answers as gpt-4o-mini."""

CUT_AFTER_CHUNKS = 3
"""What a :data:`CUT_STREAM_MODEL` stream sends before the cut: this many ``chat.completion.chunk`` events
(the role chunk, then words), or the Responses API's opening events and this many text deltas."""

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_AZURE_PATH = re.compile(r"^/openai/(?:deployments/[^/]+/|v1/)?")


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

    def as_responses_json(self) -> dict[str, Any]:
        """The usage as the Responses API reports it."""
        return {
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }

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


def _usage_for(model: str, prompt_chars: int) -> ChatUsage:
    prompt = 100 + prompt_chars
    cached = (prompt // 2) // 64 * 64
    reasoning = 32 if model.startswith(_REASONING_PREFIXES) else 0
    completion = len(REPLY_TEXT.split()) + reasoning
    return ChatUsage(prompt, completion, cached, reasoning)


def chat_usage(body: Mapping[str, Any]) -> ChatUsage:
    """Return the usage the server reports for the chat request *body*.

    Prompt tokens are 100 plus the characters of every message's text; half of them, rounded down
    to a multiple of 64 (OpenAI caches in 64-token steps), are reported as cached. Completion
    tokens are the reply's words plus, for reasoning models (o-series, gpt-5), 32 reasoning tokens.
    """
    messages = body.get("messages") or []
    chars = sum(_text_length(m.get("content")) for m in messages if isinstance(m, dict))
    return _usage_for(str(body.get("model", "")), chars)


def responses_usage(body: Mapping[str, Any]) -> ChatUsage:
    """Return the usage the server reports for the Responses API request *body*.

    The same rule as :func:`chat_usage`, over the ``instructions`` and the ``input`` (a string, or
    items whose ``content`` is a string or a list of parts with ``text``).
    """
    items = body.get("input")
    chars = _text_length(body.get("instructions"))
    if isinstance(items, str):
        chars += len(items)
    elif isinstance(items, list):
        chars += sum(_text_length(item.get("content")) for item in items if isinstance(item, dict))
    return _usage_for(str(body.get("model", "")), chars)


def embedding_usage(body: Mapping[str, Any]) -> int:
    """Return the prompt tokens the server reports for the embeddings request *body* (characters of input + 1 per item)."""
    inputs = body.get("input")
    items = [inputs] if isinstance(inputs, str) else list(inputs or [])
    return sum(len(str(item)) + 1 for item in items)


def _output_message(status: str, text: str | None) -> dict[str, Any]:
    """A Responses API ``message`` output item (no content until its text is known)."""
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {"type": "message", "id": "msg_fake", "status": status, "role": "assistant", "content": content}


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    target: str = ""
    """The request target as sent: the path with its query string."""


class _Handler(FakeHandler, MediaRoutes):
    server_version = "fake-openai/1.0"

    # --- plumbing ---------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        self._send_raw(status, json.dumps(payload).encode())

    def _send_raw(self, status: int, data: bytes) -> None:
        self._send_bytes(status, data, headers={"x-request-id": f"req_fake_{status}"})

    def _send_error(self, status: int, err_type: str, code: str | None, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": err_type, "param": None, "code": code}})

    def _start_stream(self) -> None:
        self._start_chunked("text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})

    # --- routes -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        route = _AZURE_PATH.sub("/v1/", path)
        body = self._read_media_body() if route in MEDIA_ROUTES else self._read_json()
        self._record(RecordedRequest("POST", path, dict(self.headers.items()), body, self.path))
        model = str(body.get("model", ""))
        if model in ERROR_MODELS:
            self._send_error(*ERROR_MODELS[model])
        elif model == MALFORMED_MODEL:
            self._send_raw(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [')
        elif route == "/v1/chat/completions":
            if body.get("stream"):
                self._chat_stream(body)
            else:
                self._chat(body)
        elif route == "/v1/embeddings":
            self._embeddings(body)
        elif route in MEDIA_ROUTES:
            self._media(route, body)
        elif route == "/v1/responses":
            if body.get("stream"):
                self._responses_stream(body)
            else:
                self._send_json(200, self._response_object(body, "completed"))
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
                        "finish_reason": FINISH_REASON_MODELS.get(str(body["model"]), "stop"),
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
        events.append(choice({}, FINISH_REASON_MODELS.get(str(body["model"]), "stop")))
        if include_usage:
            events.append({**base, "choices": [], "usage": chat_usage(body).as_json()})

        self._start_stream()
        for i, event in enumerate(events):
            if body["model"] == CUT_STREAM_MODEL and i == CUT_AFTER_CHUNKS:
                self._drop_connection()
                return
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # the terminating zero-length chunk

    def _response_object(self, body: dict[str, Any], status: str) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": f"resp_fake{len(self.server.state.requests)}",
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "model": response_model(str(body["model"])),
            "output": [_output_message("completed", REPLY_TEXT)] if done else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": responses_usage(body).as_responses_json() if done else None,
        }

    def _responses_stream(self, body: dict[str, Any]) -> None:
        """Stream the Responses API's events, in the order (and with the fields) OpenAI sends them."""
        words = REPLY_TEXT.split()
        part = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": self._response_object(body, "in_progress")},
            {"type": "response.output_item.added", "output_index": 0, "item": _output_message("in_progress", None)},
            {
                "type": "response.content_part.added",
                **part,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ]
        events += [
            {"type": "response.output_text.delta", **part, "delta": w if i == 0 else " " + w, "logprobs": []}
            for i, w in enumerate(words)
        ]
        events += [
            {"type": "response.output_text.done", **part, "text": REPLY_TEXT, "logprobs": []},
            {
                "type": "response.content_part.done",
                **part,
                "part": {"type": "output_text", "text": REPLY_TEXT, "annotations": []},
            },
            {"type": "response.output_item.done", "output_index": 0, "item": _output_message("completed", REPLY_TEXT)},
            {"type": "response.completed", "response": self._response_object(body, "completed")},
        ]
        self._start_stream()
        for seq, event in enumerate(events):
            if body["model"] == CUT_STREAM_MODEL and seq == 3 + CUT_AFTER_CHUNKS:  # 3 opening events, then the deltas
                self._drop_connection()
                return
            data = json.dumps({**event, "sequence_number": seq}).encode()
            self._chunk(b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n")
        self._chunk(b"")

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


class FakeOpenAIServer(FakeServer[RecordedRequest]):
    """The fake OpenAI API on 127.0.0.1, on a free port; start with :meth:`start` or ``with``."""

    handler = _Handler
    thread_name = "fake-openai"

    @property
    def base_url(self) -> str:
        """The client's ``base_url`` (ends in ``/v1``)."""
        return f"{super().base_url}/v1"


def serve() -> AbstractContextManager[FakeOpenAIServer]:
    """Run a :class:`FakeOpenAIServer` for the duration of the block."""
    return serving(FakeOpenAIServer)
