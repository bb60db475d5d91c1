"""Opt-in capture of message content on GenAI spans, in the OpenTelemetry GenAI semantic conventions' shape.

Off by default: prompts and completions reach a span only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (or ``instrument(capture_content=True)``) opts
in. The setting is read once, when an instrumentor's ``instrument()`` runs; the per-call cost when
off is one ``None`` check. Accepted values (case-insensitive) are the union of both vocabularies in
use: the boolean ``true``/``false`` (``1``/``0``, ``yes``/``no``, ``on``/``off``) of the older GenAI
instrumentations, and the ``ContentCapturingMode`` names of ``opentelemetry-util-genai``:
``SPAN_ONLY`` and ``SPAN_AND_EVENT`` capture onto the span, ``NO_CONTENT`` and ``EVENT_ONLY`` do not
(this instrumentation emits no events). Any other value raises :class:`~otel_llmcost.config.ConfigError`.

With capture on, a call's span carries, each as a JSON string:

* ``gen_ai.input.messages``: ``[{"role": ..., "parts": [...]}, ...]`` -- the chat history sent;
* ``gen_ai.system_instructions``: ``[{"type": "text", "content": ...}]`` -- instructions the API
  takes apart from the history (Anthropic ``system``, Gemini ``system_instruction``, the Responses
  API ``instructions``, Bedrock ``system``); an OpenAI chat ``system`` message stays in the history;
* ``gen_ai.tool.definitions``: ``[{"type": "function", "name": ..., "description": ..., "parameters": ...}]``;
* ``gen_ai.output.messages``: ``[{"role": "assistant", "parts": [...], "finish_reason": ...}]``, one
  per choice / candidate, set when the call ends (a stream's from the chunks it delivered).

Parts are ``text``, ``reasoning``, ``tool_call`` (``id``, ``name``, ``arguments``),
``tool_call_response`` (``id``, ``response``), ``blob`` / ``uri`` / ``file`` for media, and a bare
``{"type": <provider type>}`` for blocks of a kind not mapped. Finish reasons are normalised to the
conventions' ``stop``, ``length``, ``content_filter``, ``tool_call``, ``error`` where one fits.

**Size cap.** Each attribute is at most ``OTEL_LLMCOST_CONTENT_MAX_LENGTH`` characters (default
32768; also no more than ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` / ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``
when those are set, since the SDK would cut the JSON blindly). Over the cap, the longest strings
are shortened alike, each ending in ``…[truncated N chars]``, so the value stays valid JSON; if that
is not enough, whole messages are left out (the oldest of the input, the last of the others). A
truncated attribute is named in ``llm.content.truncated``.

Never failing the call: converting and serialising run under :func:`._wrap.guarded`; a failure is
logged once, counted, and the span simply lacks the content attribute. No credentials are read:
only the request's messages and the response's content.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import semconv as sc
from .._spans import span_attributes
from ..config import (
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
    OTEL_LLMCOST_CONTENT_MAX_LENGTH,
    ConfigError,
    env_int,
)
from ._call import LLMCallSpan
from ._wrap import guarded

__all__ = [
    "ContentCapture",
    "Part",
    "RequestContent",
    "blob_part",
    "content_capture",
    "finish_reason",
    "function_tool",
    "json_arguments",
    "message",
    "output_message",
    "text_part",
    "tool_call_part",
    "tool_response_part",
]

Part = dict[str, Any]
"""One message part (``{"type": "text", "content": ...}``...)."""

_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_OFF = frozenset({"false", "0", "no", "off", "no_content", "event_only"})
_SDK_LIMITS = ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
_MIN_LENGTH = 256  # below this not even one message's skeleton fits
_MIN_CLIP = 32  # strings are never cut shorter than this: roles and part types stay intact
_WHAT = "capturing message content"

# provider stop reasons -> the conventions' FinishReason (others pass through as the provider says)
_FINISH: Mapping[str, str] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "completed": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_context_window_exceeded": "length",
    "incomplete": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_use": "tool_call",
    "content_filter": "content_filter",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "refusal": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
    "malformed_function_call": "error",
    "unexpected_tool_call": "error",
    "failed": "error",
}


# --- building parts ---------------------------------------------------------------------------------


def text_part(content: str) -> Part:
    """A ``text`` part."""
    return {"type": "text", "content": content}


def json_arguments(value: Any) -> Any:
    """Tool-call arguments as an object: a JSON string is decoded; anything else kept as given."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:  # partial or free-form arguments: kept verbatim
            return value
    return value


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> Part:
    """A ``tool_call`` part (a tool call the model requested)."""
    return {
        "type": "tool_call",
        "id": call_id if isinstance(call_id, str) else None,
        "name": name if isinstance(name, str) else "",
        "arguments": json_arguments(arguments),
    }


def tool_response_part(call_id: Any, response: Any) -> Part:
    """A ``tool_call_response`` part (a tool's result sent back to the model)."""
    return {"type": "tool_call_response", "id": call_id if isinstance(call_id, str) else None, "response": response}


def blob_part(data: Any, mime_type: Any, modality: str = "image") -> Part:
    """A ``blob`` part: inline media, base64 in the JSON."""
    content = base64.b64encode(data).decode() if isinstance(data, (bytes, bytearray)) else str(data)
    return {
        "type": "blob",
        "mime_type": mime_type if isinstance(mime_type, str) else None,
        "modality": modality,
        "content": content,
    }


def message(role: Any, parts: list[Part], *, name: Any = None) -> dict[str, Any]:
    """An input message (``role``, ``parts``, and ``name`` when the request gave one)."""
    out: dict[str, Any] = {"role": role if isinstance(role, str) else "user", "parts": parts}
    if isinstance(name, str) and name:
        out["name"] = name
    return out


def finish_reason(reason: Any) -> str:
    """The conventions' finish reason for a provider's stop reason (``""`` when there is none)."""
    if not isinstance(reason, str) or not reason:
        return ""
    return _FINISH.get(reason.lower(), reason)


def function_tool(name: Any, description: Any = None, parameters: Any = None, kind: str = "function") -> dict[str, Any]:
    """A tool definition (``type``, ``name``, and ``description`` / ``parameters`` when given)."""
    out: dict[str, Any] = {"type": kind, "name": name if isinstance(name, str) else ""}
    if isinstance(description, str):
        out["description"] = description
    if parameters is not None:
        out["parameters"] = parameters
    return out


class RequestContent(NamedTuple):
    """What a request sent, in the conventions' shape."""

    messages: Sequence[dict[str, Any]]
    system: Sequence[Part] = ()
    tools: Sequence[dict[str, Any]] = ()


# --- serialising under a cap ------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    dump = getattr(value, "model_dump", None)  # an SDK (pydantic) model inside a tool result
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default)


def _plain(value: Any) -> Any:
    """*value* as JSON-ready data (round-tripped), so clipping sees every string."""
    return json.loads(_dumps(value))


def _clip(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return f"{value[:limit]}…[truncated {len(value) - limit} chars]"
    if isinstance(value, list):
        return [_clip(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _clip(v, limit) for k, v in value.items()}
    return value


def _longest(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return max((_longest(v) for v in value), default=0)
    if isinstance(value, dict):
        return max((_longest(v) for v in value.values()), default=0)
    return 0


def _fit(items: list[Any], cap: int, *, drop_oldest: bool) -> tuple[str, bool]:
    """Serialise *items* in at most *cap* characters: ``(json, truncated)``."""
    text = _dumps(items)
    if len(text) <= cap:
        return text, False
    data = _plain(items)

    def kept(n: int) -> list[Any]:
        return (data[len(data) - n :] if drop_oldest else data[:n]) if n else []

    def fits(value: Any, limit: int) -> str | None:
        candidate = _dumps(_clip(value, limit))
        return candidate if len(candidate) <= cap else None

    if fits(data, _MIN_CLIP) is None:
        # too many items even with every string at its shortest: keep the most that fit
        lo, hi = 0, len(data) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(kept(mid), _MIN_CLIP) is not None else (lo, mid - 1)
        data = kept(lo)
    # the largest per-string length that fits (binary search; only measured fits are kept)
    best = fits(data, _MIN_CLIP) or "[]"
    lo, hi = _MIN_CLIP + 1, _longest(data)
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = fits(data, mid)
        if candidate is not None:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best, True


@dataclass(frozen=True, slots=True)
class ContentCapture:
    """Content capture switched on: turns request and response content into span attributes.

    Attributes:
        max_length: the most characters of one content attribute (see the module documentation).
    """

    max_length: int

    def _attributes(
        self, values: Sequence[tuple[str, Sequence[Any], bool]], already: Sequence[str] = ()
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        truncated = list(already)
        for key, items, drop_oldest in values:
            if items:
                text, cut = _fit(list(items), self.max_length, drop_oldest=drop_oldest)
                attrs[key] = text
                if cut:
                    truncated.append(key)
        if len(truncated) > len(already):
            attrs[sc.LLM_CONTENT_TRUNCATED] = tuple(truncated)
        return attrs

    def request_attributes(self, convert: Callable[..., RequestContent | None], *args: Any) -> dict[str, Any]:
        """The content attributes of a request, from ``convert(*args)``; ``{}`` if anything fails."""

        def build() -> dict[str, Any]:
            content = convert(*args)
            if content is None:  # a call without content to capture (embeddings)
                return {}
            return self._attributes(
                (
                    (sc.GEN_AI_INPUT_MESSAGES, content.messages, True),
                    (sc.GEN_AI_SYSTEM_INSTRUCTIONS, content.system, False),
                    (sc.GEN_AI_TOOL_DEFINITIONS, content.tools, False),
                )
            )

        return guarded(_WHAT, build) or {}

    def response_attributes(
        self, call: LLMCallSpan, convert: Callable[..., list[dict[str, Any]]], *args: Any
    ) -> dict[str, Any]:
        """The ``gen_ai.output.messages`` attribute of a response, from ``convert(*args)``; ``{}`` on failure."""

        def build() -> dict[str, Any]:
            messages = convert(*args)
            if not messages:
                return {}
            before = span_attributes(call.span).get(sc.LLM_CONTENT_TRUNCATED) if call.span.is_recording() else None
            already = [str(k) for k in before] if isinstance(before, (list, tuple)) else []
            return self._attributes(((sc.GEN_AI_OUTPUT_MESSAGES, messages, False),), already)

        return guarded(_WHAT, build) or {}


def output_message(parts: list[Part], reason: Any, role: str = "assistant") -> dict[str, Any]:
    """An output message; ``finish_reason`` is required by the conventions' schema (``""`` if unknown)."""
    return {"role": role, "parts": parts, "finish_reason": finish_reason(reason)}


def _setting(value: bool | None, environ: Mapping[str, str]) -> bool:
    if value is not None:
        if not isinstance(value, bool):
            raise ConfigError("capture_content", value, "expected True or False")
        return value
    var = OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    raw = environ.get(var.name, "").strip().lower()
    if not raw or raw in _OFF:
        return False
    if raw in _ON:
        return True
    raise ConfigError(var.name, raw, "expected true, false, NO_CONTENT, SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT")


def content_capture(
    setting: bool | None = None, *, max_length: int | None = None, environ: Mapping[str, str] | None = None
) -> ContentCapture | None:
    """Return the content capture an instrumentor uses, or ``None`` when capture is off (the default).

    Args:
        setting: ``instrument(capture_content=...)``; ``None`` reads
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
        max_length: the per-attribute cap; ``None`` reads ``OTEL_LLMCOST_CONTENT_MAX_LENGTH``.
        environ: the environment to read (default ``os.environ``).

    Raises:
        ConfigError: a setting is not one of the accepted values.
    """
    env = os.environ if environ is None else environ
    if not _setting(setting, env):
        return None
    if max_length is None:
        max_length = env_int(OTEL_LLMCOST_CONTENT_MAX_LENGTH, minimum=_MIN_LENGTH, environ=env)
    elif isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < _MIN_LENGTH:
        raise ConfigError("content_max_length", max_length, f"expected a whole number of at least {_MIN_LENGTH}")
    for name in _SDK_LIMITS:  # the SDK cuts longer values blindly (invalid JSON): stay under its limit
        raw = env.get(name, "").strip()
        if raw.isdigit() and int(raw) >= _MIN_LENGTH:
            max_length = min(max_length, int(raw))
    return ContentCapture(max_length)
