"""A local HTTP server that answers like the Amazon Bedrock Runtime API, for integration tests.

Speaks just enough of the rest-json wire format for a real ``boto3.client("bedrock-runtime")``
(the model id is URL-encoded in the path, ``us.anthropic.claude-...-v1%3A0``):

* ``POST /model/{modelId}/converse``: a Converse JSON response with ``usage`` (Bedrock semantics:
  ``inputTokens`` excludes cache reads and writes, ``totalTokens`` includes them).
* ``POST /model/{modelId}/converse-stream``: ``application/vnd.amazon.eventstream`` messages
  (``messageStart``, ``contentBlockDelta``..., ``messageStop``, ``metadata``), binary-framed with
  their CRCs so botocore's decoder verifies them (:func:`encode_event`).
* ``POST /model/{modelId}/invoke``: an Anthropic Messages response body, plus the
  ``x-amzn-bedrock-*-token-count`` headers Bedrock adds to every InvokeModel response.
* ``POST /model/{modelId}/invoke-with-response-stream``: ``chunk`` events wrapping Anthropic stream
  events, the last one carrying ``amazon-bedrock-invocationMetrics``; for a Meta Llama, Amazon Titan
  Text or Mistral model id (:func:`model_family`), that family's own chunk JSON, one word each.
* ``POST /model/{modelId}/count-tokens`` and the control plane's ``GET /foundation-models``: calls
  that are not LLM calls.
* Errors on demand, chosen by the model id (:data:`ERROR_MODELS`): the ``x-amzn-ErrorType`` header and
  a JSON ``message``, as Bedrock sends them; :data:`STREAM_ERROR_MODEL` fails inside the stream.

A request that enables extended thinking (Anthropic's ``thinking`` in an InvokeModel body, or in a
Converse call's ``additionalModelRequestFields``) gets a reasoning block of :data:`THINKING_TEXT`
before the reply, streamed one word per ``thinking_delta`` / ``reasoningContent`` delta and ended
with a signature delta, as Bedrock streams it.

Token counts are a pure function of the request (:func:`usage_for`) so a test can compute the bill.
Knobs for bad responses: :attr:`FakeBedrockServer.cut_stream_after` (close the socket after that many
stream events), :attr:`FakeBedrockServer.omit_usage` (answer, or end a stream cleanly, without any
usage report) and :attr:`FakeBedrockServer.truncate_body` (an InvokeModel body cut off midway).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ._http import FakeHandler, FakeServer, ServerState, serving

__all__ = [
    "ERROR_MODELS",
    "REPLY_TEXT",
    "STREAM_ERROR_MODEL",
    "THINKING_TEXT",
    "FakeBedrockServer",
    "RecordedRequest",
    "ServedUsage",
    "encode_event",
    "serve",
    "usage_for",
]

REPLY_TEXT = "Hello from the fake Bedrock server."
"""The assistant's reply to every request (streamed one word per delta)."""

THINKING_TEXT = "The user wants a greeting, so a short hello will do."
"""The reasoning of a request that enables extended thinking (streamed one word per delta)."""

ERROR_MODELS: Mapping[str, tuple[int, str, str]] = {
    "throttled.model-v1:0": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "broken.model-v1:0": (500, "InternalServerException", "The server encountered an internal error."),
    "unavailable.model-v1:0": (503, "ServiceUnavailableException", "The service is temporarily unavailable."),
    "invalid.model-v1:0": (400, "ValidationException", "The provided model identifier is invalid."),
}
"""Model id -> (HTTP status, error code, message) answered instead of a result."""

STREAM_ERROR_MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
"""Streams of this model fail midway with a ``modelStreamErrorException`` event."""

_CACHE_READ = 1536
_CACHE_WRITE = 512
_CACHE_WRITE_1H = 128
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"


@dataclass(frozen=True)
class ServedUsage:
    """The usage the server reports for one request, in Bedrock's terms (input excludes cache)."""

    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0

    @property
    def total_input(self) -> int:
        """Every input token, cache reads and writes included (OpenTelemetry's input count)."""
        return self.input_tokens + self.cache_read + self.cache_write

    def converse(self) -> dict[str, Any]:
        """The Converse ``usage`` object."""
        out: dict[str, Any] = {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_input + self.output_tokens,
        }
        if self.cache_read or self.cache_write:
            out["cacheReadInputTokens"] = self.cache_read
            out["cacheWriteInputTokens"] = self.cache_write
        if self.cache_write:
            details = [{"ttl": "1h", "inputTokens": self.cache_write_1h}] if self.cache_write_1h else []
            if self.cache_write > self.cache_write_1h:
                details.append({"ttl": "5m", "inputTokens": self.cache_write - self.cache_write_1h})
            out["cacheDetails"] = details
        return out

    def anthropic(self) -> dict[str, Any]:
        """The Anthropic Messages ``usage`` object."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write - self.cache_write_1h,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
            "output_tokens": self.output_tokens,
        }

    def invocation_metrics(self) -> dict[str, Any]:
        """The ``amazon-bedrock-invocationMetrics`` of a streamed InvokeModel call."""
        return {
            "inputTokenCount": self.input_tokens,
            "outputTokenCount": self.output_tokens,
            "invocationLatency": 420,
            "firstByteLatency": 120,
            "cacheReadInputTokenCount": self.cache_read,
            "cacheWriteInputTokenCount": self.cache_write,
        }

    def headers(self) -> dict[str, str]:
        """The token-count headers of an InvokeModel response."""
        return {
            "X-Amzn-Bedrock-Input-Token-Count": str(self.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(self.output_tokens),
            "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": str(self.cache_read),
            "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": str(self.cache_write),
            "X-Amzn-Bedrock-Invocation-Latency": "420",
        }


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def thinks(body: Mapping[str, Any]) -> bool:
    """Whether the request (Anthropic or Converse JSON) enables extended thinking."""
    extra = body.get("additionalModelRequestFields")
    return bool(body.get("thinking") or (isinstance(extra, dict) and extra.get("thinking")))


def _words(text: str) -> list[str]:
    """*text* as stream deltas: one word each, the space kept in front of every word but the first."""
    return [w if i == 0 else " " + w for i, w in enumerate(text.split())]


FAMILY_PREFIXES = {"meta.": "meta", "amazon.titan-text": "titan", "mistral.": "mistral"}
"""Model id prefixes (after any ``us.``/``eu.``/``global.`` profile) whose invoke streams use that family's JSON."""


def model_family(model_id: str) -> str | None:
    """The non-Anthropic family whose stream format the server answers *model_id* with, or ``None``."""
    base = model_id.split(".", 1)[1] if model_id.split(".", 1)[0] in ("us", "eu", "apac", "global") else model_id
    return next((family for prefix, family in FAMILY_PREFIXES.items() if base.startswith(prefix)), None)


def usage_for(body: Mapping[str, Any]) -> ServedUsage:
    """Return the usage the server reports for the request *body* (Converse or Anthropic JSON).

    Uncached input is 12 plus a token per 4 characters of the texts (``text`` fields and string
    ``content``) of ``messages`` and ``system``. A request with a cache point (``cachePoint`` block or
    ``cache_control``) also reads 1536 and writes 512 cached tokens, 128 of those with a one-hour
    TTL when a cache point asks for ``"ttl": "1h"``. Output is one token per word of the reply, and
    of the reasoning when the request enables thinking.
    """
    chars = 0
    cached = one_hour = False
    texts = {"m": body.get("messages"), "s": body.get("system"), "p": body.get("prompt"), "i": body.get("inputText")}
    for key, value in _walk(texts):
        if key in ("text", "content", "s", "p", "i") and isinstance(value, str):
            chars += len(value)
        cached = cached or key in ("cachePoint", "cache_control")
        one_hour = one_hour or (key == "ttl" and value == "1h")
    return ServedUsage(
        input_tokens=12 + chars // 4,
        output_tokens=len(REPLY_TEXT.split()) + (len(THINKING_TEXT.split()) if thinks(body) else 0),
        cache_read=_CACHE_READ if cached else 0,
        cache_write=_CACHE_WRITE if cached else 0,
        cache_write_1h=_CACHE_WRITE_1H if cached and one_hour else 0,
    )


def encode_event(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one AWS event-stream message: prelude + CRC, string headers, payload, message CRC."""
    encoded = b"".join(
        struct.pack(">B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_event(headers, json.dumps(payload).encode())


def _exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_event(headers, json.dumps({"message": message}).encode())


def _chunk(payload: Mapping[str, Any]) -> bytes:
    return _event("chunk", {"bytes": base64.b64encode(json.dumps(payload).encode()).decode()})


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    model_id: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _State(ServerState[RecordedRequest]):
    cut_stream_after: int | None = None
    omit_usage: bool = False
    truncate_body: bool = False


class _Handler(FakeHandler):
    server_version = "fake-bedrock/1.0"

    def _record_call(self, model_id: str, body: dict[str, Any]) -> int:
        path = self.path.split("?", 1)[0]
        return self._record(RecordedRequest(self.command, path, model_id, dict(self.headers.items()), body))

    def _request_id(self) -> dict[str, str]:
        return {"x-amzn-RequestId": f"req-fake-{len(self.server.state.requests)}"}

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), headers={**self._request_id(), **(headers or {})})

    def _send_error(self, status: int, code: str, message: str) -> None:
        self._send_json(status, {"message": message}, {"x-amzn-ErrorType": f"{code}:{_ERROR_NAMESPACE}"})

    def do_GET(self) -> None:
        self._record_call("", {})
        if self.path.split("?", 1)[0] == "/foundation-models":
            self._send_json(200, {"modelSummaries": []})
        else:
            self._send_error(404, "ResourceNotFoundException", "Unknown operation.")

    def do_POST(self) -> None:
        body = self._read_json()
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[1] != "model":
            self._record_call("", body)
            self._send_error(404, "ResourceNotFoundException", "Unknown operation.")
            return
        model_id, route = unquote(parts[2]), parts[3]
        n = self._record_call(model_id, body)
        if model_id in ERROR_MODELS:
            self._send_error(*ERROR_MODELS[model_id])
        elif route == "converse":
            self._converse(body)
        elif route == "converse-stream":
            self._stream(self._converse_events(model_id, body))
        elif route == "invoke":
            self._invoke(body, n)
        elif route == "invoke-with-response-stream":
            self._stream(self._invoke_events(model_id, body, n))
        elif route == "count-tokens":
            self._send_json(200, {"inputTokens": usage_for(body.get("input", {}).get("converse", {})).input_tokens})
        else:
            self._send_error(404, "ResourceNotFoundException", "Unknown operation.")

    def _converse(self, body: dict[str, Any]) -> None:
        payload: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY_TEXT}]}},
            "stopReason": "end_turn",
            "usage": usage_for(body).converse(),
            "metrics": {"latencyMs": 420},
        }
        if self.server.state.omit_usage:
            del payload["usage"]
        self._send_json(200, payload)

    def _invoke(self, body: dict[str, Any], n: int) -> None:
        usage = usage_for(body)
        payload = {
            "id": f"msg_bdrk_fake{n}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": REPLY_TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage.anthropic(),
        }
        if self.server.state.omit_usage:
            del payload["usage"]
        if self.server.state.truncate_body:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])  # half the promised body, then the connection drops
            self._drop_connection()
            return
        self._send_json(200, payload, {} if self.server.state.omit_usage else usage.headers())

    def _converse_events(self, model_id: str, body: dict[str, Any]) -> list[bytes]:
        events = [_event("messageStart", {"role": "assistant"})]
        index = 0
        if thinks(body):
            events += [
                _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": w}}})
                for w in _words(THINKING_TEXT)
            ]
            signature = {"reasoningContent": {"signature": "c2lnbmF0dXJl"}}
            events.append(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": signature}))
            events.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
            index = 1
        events += [
            _event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": w}}) for w in _words(REPLY_TEXT)
        ]
        if model_id == STREAM_ERROR_MODEL:
            return [*events[:3], _exception("modelStreamErrorException", "The model stopped unexpectedly.")]
        events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        events.append(_event("messageStop", {"stopReason": "end_turn"}))
        if not self.server.state.omit_usage:
            events.append(_event("metadata", {"usage": usage_for(body).converse(), "metrics": {"latencyMs": 420}}))
        return events

    def _invoke_events(self, model_id: str, body: dict[str, Any], n: int) -> list[bytes]:
        family = model_family(model_id)
        if family is not None:
            return self._family_events(family, body)
        usage = usage_for(body)
        omit = self.server.state.omit_usage
        message = {"id": f"msg_bdrk_fake{n}", "type": "message", "role": "assistant", "model": "claude-fake"}
        if not omit:
            message["usage"] = {**usage.anthropic(), "output_tokens": 1}
        events = [_chunk({"type": "message_start", "message": {**message, "content": []}})]
        index = 0
        if thinks(body):
            block = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(_chunk({"type": "content_block_start", "index": 0, "content_block": block}))
            for w in _words(THINKING_TEXT):
                delta = {"type": "thinking_delta", "thinking": w}
                events.append(_chunk({"type": "content_block_delta", "index": 0, "delta": delta}))
            signature = {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}
            events.append(_chunk({"type": "content_block_delta", "index": 0, "delta": signature}))
            events.append(_chunk({"type": "content_block_stop", "index": 0}))
            index = 1
        text_block = {"type": "text", "text": ""}
        events.append(_chunk({"type": "content_block_start", "index": index, "content_block": text_block}))
        for w in _words(REPLY_TEXT):
            delta = {"type": "text_delta", "text": w}
            events.append(_chunk({"type": "content_block_delta", "index": index, "delta": delta}))
        if model_id == STREAM_ERROR_MODEL:
            return [*events[:3], _exception("modelStreamErrorException", "The model stopped unexpectedly.")]
        events.append(_chunk({"type": "content_block_stop", "index": index}))
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
        if not omit:
            delta["usage"] = {"output_tokens": usage.output_tokens}
        events.append(_chunk(delta))
        stop: dict[str, Any] = {"type": "message_stop"}
        if not omit:
            stop["amazon-bedrock-invocationMetrics"] = usage.invocation_metrics()
        events.append(_chunk(stop))
        return events

    def _family_events(self, family: str, body: dict[str, Any]) -> list[bytes]:
        """A non-Anthropic model's stream: its own chunk JSON per word; the last one has the metrics."""
        usage = usage_for(body)
        words = _words(REPLY_TEXT)
        chunks: list[dict[str, Any]] = []
        for i, w in enumerate(words):
            last = i == len(words) - 1
            if family == "meta":
                chunks.append(
                    {
                        "generation": w,
                        "prompt_token_count": usage.input_tokens if i == 0 else None,
                        "generation_token_count": i + 1,
                        "stop_reason": "stop" if last else None,
                    }
                )
            elif family == "titan":
                chunks.append(
                    {
                        "outputText": w,
                        "index": 0,
                        "totalOutputTextTokenCount": i + 1,
                        "completionReason": "FINISH" if last else None,
                        "inputTextTokenCount": usage.input_tokens if i == 0 else None,
                    }
                )
            else:  # mistral
                chunks.append({"outputs": [{"text": w, "stop_reason": "stop" if last else None}]})
        if not self.server.state.omit_usage:
            chunks[-1]["amazon-bedrock-invocationMetrics"] = usage.invocation_metrics()
        return [_chunk(c) for c in chunks]

    def _stream(self, events: list[bytes]) -> None:
        cut = self.server.state.cut_stream_after
        self._start_chunked("application/vnd.amazon.eventstream", self._request_id())
        for i, event in enumerate(events):
            if cut is not None and i == cut:
                self._drop_connection()  # mid-stream: no terminating chunk, the socket just closes
                return
            self._chunk(event)
        self._chunk(b"")


class FakeBedrockServer(FakeServer[RecordedRequest]):
    """The fake Bedrock Runtime API on 127.0.0.1, on a free port; start with :meth:`start` or ``with``."""

    handler = _Handler
    state_type = _State
    thread_name = "fake-bedrock"
    quiet_errors = (OSError,)

    @property
    def endpoint_url(self) -> str:
        """The client's ``endpoint_url``."""
        return self.base_url

    @property
    def cut_stream_after(self) -> int | None:
        """Streams drop their connection after this many events (``None``: streams complete)."""
        return self._httpd.state.cut_stream_after

    @cut_stream_after.setter
    def cut_stream_after(self, value: int | None) -> None:
        self._httpd.state.cut_stream_after = value

    @property
    def omit_usage(self) -> bool:
        """Responses carry no usage (no ``usage``, token-count headers or stream metadata)."""
        return self._httpd.state.omit_usage

    @omit_usage.setter
    def omit_usage(self, value: bool) -> None:
        self._httpd.state.omit_usage = value

    @property
    def truncate_body(self) -> bool:
        """InvokeModel responses send half their body, then drop the connection."""
        return self._httpd.state.truncate_body

    @truncate_body.setter
    def truncate_body(self, value: bool) -> None:
        self._httpd.state.truncate_body = value


def serve() -> AbstractContextManager[FakeBedrockServer]:
    """Run a :class:`FakeBedrockServer` for the duration of the block."""
    return serving(FakeBedrockServer)
