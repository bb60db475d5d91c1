"""A fake Gemini API (and Vertex AI) server on 127.0.0.1 speaking the REST wire format ``google-genai`` uses.

Routes (the model is read from the path, whichever prefix it has, so the Gemini API form
``/v1beta/models/{model}:...`` and the Vertex forms ``/v1beta1/publishers/google/models/{model}:...``
and ``/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{model}:...`` all work):

* ``POST .../models/{model}:generateContent`` -- one JSON ``GenerateContentResponse``;
* ``POST .../models/{model}:streamGenerateContent?alt=sse`` -- server-sent events, one
  ``data: {json}`` line per chunk, one word of :data:`REPLY_TEXT` per chunk; every chunk carries the
  usage so far (as the Gemini API does: the last chunk's ``usageMetadata`` is the call's total);
* ``POST .../models/{model}:batchEmbedContents`` (or ``:embedContent``) -- one embedding per
  content, with ``usageMetadata`` (see :func:`embed_tokens`).

Usage is computed from the request by :func:`gemini_usage` (Gemini semantics: cached tokens are
part of ``promptTokenCount``; ``candidatesTokenCount`` excludes ``thoughtsTokenCount``; tool-use
prompt tokens are reported apart from the prompt). Some model names make the server misbehave on
purpose (:data:`ERROR_MODELS`, :data:`STREAM_MODELS`); ``modelVersion`` names the model that
answered (:data:`MODEL_VERSIONS`). A request that declares functions is answered with a
``functionCall`` of the first one until the request carries its ``functionResponse`` (so automatic
function calling makes two requests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import FakeHandler, FakeServer, serving

__all__ = [
    "ERROR_MODELS",
    "MODEL_VERSIONS",
    "REPLY_TEXT",
    "STREAM_MODELS",
    "THOUGHTS_TOKENS",
    "TOOL_USE_TOKENS",
    "FakeGeminiServer",
    "GeminiUsage",
    "RecordedRequest",
    "embed_tokens",
    "function_call",
    "gemini_usage",
    "model_version",
    "serve",
]

REPLY_TEXT = "Hello from the fake Gemini server."
"""The model's reply to every request (streamed one word per chunk)."""

THOUGHTS_TOKENS = 48
"""Thinking tokens reported for thinking models (see :func:`gemini_usage`)."""

TOOL_USE_TOKENS = 25
"""Tool-use prompt tokens reported when the request declares tools."""

MODEL_VERSIONS: Mapping[str, str] = {
    # an alias no catalog knows, served by a model it does: only the response model prices it
    "gemini-flash-latest": "gemini-2.5-flash-preview-09-2025",
    "stream-no-usage": "gemini-2.5-flash",
    "stream-cut-off": "gemini-2.5-flash",
}
"""Request model -> the ``modelVersion`` the response names; other models are echoed unchanged."""

ERROR_MODELS: Mapping[str, tuple[int, str, str]] = {
    "rate-limited": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "server-error": (500, "INTERNAL", "An internal error has occurred. Please retry or report."),
}
"""Request model -> (HTTP status, status string, message) of the error JSON answered instead."""

MALFORMED_MODEL = "malformed-body"
"""Request model answered with HTTP 200 and a body that is not JSON."""

STREAM_MODELS = ("stream-no-usage", "stream-cut-off")
"""Stream behaviours: chunks without ``usageMetadata``; the connection dropped after two chunks."""

_PATH = re.compile(r"models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_THINKING_PREFIXES = ("gemini-2.5", "gemini-3", "gemini-4")


def model_version(request_model: str) -> str:
    """Return the ``modelVersion`` the server puts in its response for *request_model*."""
    return MODEL_VERSIONS.get(request_model, request_model)


def _texts(value: Any) -> Iterator[str]:
    """Every ``text`` string inside a request's ``contents`` / ``systemInstruction``."""
    if isinstance(value, dict):
        text = value.get("text")
        if isinstance(text, str):
            yield text
        for key in ("parts", "contents", "content", "requests"):
            yield from _texts(value.get(key))
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


@dataclass(frozen=True)
class GeminiUsage:
    """The usage the server reports for one request, in Gemini semantics."""

    prompt_token_count: int
    candidates_token_count: int
    thoughts_token_count: int
    cached_content_token_count: int
    tool_use_prompt_token_count: int

    @property
    def total_token_count(self) -> int:
        return (
            self.prompt_token_count
            + self.candidates_token_count
            + self.thoughts_token_count
            + self.tool_use_prompt_token_count
        )

    def as_json(self) -> dict[str, Any]:
        """The ``usageMetadata`` object (zero counts left out, as the API does)."""
        out: dict[str, Any] = {
            "promptTokenCount": self.prompt_token_count,
            "candidatesTokenCount": self.candidates_token_count,
            "totalTokenCount": self.total_token_count,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_token_count}],
        }
        if self.thoughts_token_count:
            out["thoughtsTokenCount"] = self.thoughts_token_count
        if self.cached_content_token_count:
            out["cachedContentTokenCount"] = self.cached_content_token_count
        if self.tool_use_prompt_token_count:
            out["toolUsePromptTokenCount"] = self.tool_use_prompt_token_count
        return out

    def partial(self, words: int) -> GeminiUsage:
        """The running total after *words* words of the reply were streamed."""
        return GeminiUsage(
            self.prompt_token_count,
            min(words, self.candidates_token_count),
            self.thoughts_token_count,
            self.cached_content_token_count,
            self.tool_use_prompt_token_count,
        )


def gemini_usage(model: str, body: Mapping[str, Any]) -> GeminiUsage:
    """Return the usage the server reports for a request to *model* with *body*.

    Prompt tokens are 100 plus the characters of every text in ``contents`` and
    ``systemInstruction``; a quarter of them, rounded down to a multiple of 256, are reported as
    cached (implicit caching). Candidate tokens are the reply's words; thinking models (2.5 and
    later, not ``-lite``) add :data:`THOUGHTS_TOKENS` thoughts; a request with ``tools`` adds
    :data:`TOOL_USE_TOKENS` tool-use prompt tokens.
    """
    served = model_version(model)
    prompt = (
        100
        + sum(len(t) for t in _texts(body.get("contents")))
        + sum(len(t) for t in _texts(body.get("systemInstruction")))
    )
    cached = (prompt // 4) // 256 * 256
    thinking = served.startswith(_THINKING_PREFIXES) and "-lite" not in served
    return GeminiUsage(
        prompt_token_count=prompt,
        candidates_token_count=len(REPLY_TEXT.split()),
        thoughts_token_count=THOUGHTS_TOKENS if thinking else 0,
        cached_content_token_count=cached,
        tool_use_prompt_token_count=TOOL_USE_TOKENS if body.get("tools") else 0,
    )


def function_call(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``functionCall`` the model answers with: the first declared function, until a result came back."""
    declared = [
        d for tool in body.get("tools") or () for d in (tool.get("functionDeclarations") or ()) if isinstance(d, dict)
    ]
    contents = body.get("contents") or [{}]
    answered = any("functionResponse" in part for part in (contents[-1].get("parts") or ()))
    if not declared or answered:
        return None
    return {"name": declared[0].get("name"), "args": {"city": "Paris"}}


def embed_tokens(body: Mapping[str, Any]) -> int:
    """Return the prompt tokens the server reports for an embeddings request: characters + 1 per content."""
    requests = body.get("requests") or [body]
    return sum(sum(len(t) for t in _texts(r.get("content"))) + 1 for r in requests if isinstance(r, dict))


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]


class _Handler(FakeHandler):
    server_version = "fake-gemini/1.0"

    # --- plumbing ---------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json; charset=UTF-8")

    def _send_error(self, code: int, status: str, message: str) -> None:
        self._send_json(code, {"error": {"code": code, "message": message, "status": status}})

    # --- routes -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        body = self._read_json()
        url = urlsplit(self.path)
        self._record(RecordedRequest("POST", url.path, parse_qs(url.query), dict(self.headers.items()), body))
        match = _PATH.search(url.path)
        if match is None:
            self._send_error(404, "NOT_FOUND", f"Unknown path {url.path}")
            return
        model, method = match["model"], match["method"]
        if model in ERROR_MODELS:
            self._send_error(*ERROR_MODELS[model])
        elif model == MALFORMED_MODEL:
            self._send_bytes(200, b'{"candidates": [{"content": ')
        elif method == "generateContent":
            out = self._response(model, body, REPLY_TEXT, gemini_usage(model, body), "STOP")
            call = function_call(body)
            if call is not None:
                out["candidates"][0]["content"]["parts"] = [{"functionCall": call}]
            self._send_json(200, out)
        elif method == "streamGenerateContent":
            self._stream(model, body)
        elif method in ("embedContent", "batchEmbedContents"):
            self._embed(body)
        else:
            self._send_error(404, "NOT_FOUND", f"Unknown method {method}")

    def _response_id(self) -> str:
        return f"resp-fake{len(self.server.state.requests)}"

    def _response(
        self, model: str, body: Mapping[str, Any], text: str, usage: GeminiUsage | None, finish: str | None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        out: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": model_version(model),
            "responseId": self._response_id(),
        }
        if usage is not None:
            out["usageMetadata"] = usage.as_json()
        return out

    def _stream(self, model: str, body: Mapping[str, Any]) -> None:
        usage = gemini_usage(model, body)
        words = REPLY_TEXT.split()
        events = []
        for i, word in enumerate(words):
            last = i == len(words) - 1
            text = word if i == 0 else " " + word
            chunk_usage = None if model == "stream-no-usage" else usage.partial(i + 1)
            events.append(self._response(model, body, text, chunk_usage, "STOP" if last else None))
        self._start_chunked("text/event-stream")
        if model == "stream-cut-off":
            for event in events[:2]:
                self._chunk(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
            # drop the connection mid-body: no terminating zero-length chunk
            self.close_connection = True
            return
        for event in events:
            self._chunk(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        self._chunk(b"")

    def _embed(self, body: Mapping[str, Any]) -> None:
        tokens = embed_tokens(body)
        requests = body.get("requests") or [body]
        embeddings = [{"values": [((tokens + i + d) % 7) / 7 for d in range(8)]} for i in range(len(requests))]
        self._send_json(200, {"embeddings": embeddings, "usageMetadata": {"promptTokenCount": tokens}})


class FakeGeminiServer(FakeServer[RecordedRequest]):
    """The fake Gemini / Vertex AI API on 127.0.0.1, on a free port; start with :meth:`start` or ``with``.

    Its ``base_url`` is the client's ``HttpOptions.base_url``.
    """

    handler = _Handler
    thread_name = "fake-gemini"


def serve() -> AbstractContextManager[FakeGeminiServer]:
    """Run a :class:`FakeGeminiServer` for the duration of the block."""
    return serving(FakeGeminiServer)
