"""Instrumentation of the ``anthropic`` SDK: every Messages API call a priced GenAI span.

**Wrap point.** Every way the SDK offers to call the Messages API -- ``messages.create`` (with or
without ``stream=True``), the ``messages.stream(...)`` helper, ``messages.parse``, their
``beta.messages`` twins and the ``with_raw_response`` wrappers, sync and async -- ends in one
``request()`` of the client (``SyncAPIClient.request`` / ``AsyncAPIClient.request``) for
``POST /v1/messages``, made once per call with the SDK's retries inside it. That is the method
wrapped, so each call gets exactly one span and one cost, whichever helper made it:
``messages.stream()`` is built on the same request, not on ``create``, and its
``MessageStream`` reads the raw event stream this module returns traced. ``request`` is looked up on
the client class at every call, so instrumenting and uninstrumenting take effect for clients that
already exist. Other API calls (``count_tokens``, batches, files...) pass through untouched.

**Tokens.** Anthropic's ``usage.input_tokens`` *excludes* cache reads and writes; the span carries
OpenTelemetry's inclusive count (``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens``), and that inclusive count is what decides a long-context tier, as
Anthropic bills it. ``usage.cache_creation.ephemeral_1h_input_tokens`` is the part of the cache
writes billed at the one-hour rate; ``output_tokens_details.thinking_tokens`` the reasoning part of
the output. The token usage of a beta response's ``compaction`` iterations, which the top-level
usage leaves out, is added to it (same model, billed too).

**Streams.** ``message_start`` carries the input and cache counts, ``message_delta`` the final
(cumulative) output count. A stream that ends before ``message_delta`` (cut off, or closed early
by the application) keeps the exact input counts of ``message_start`` and estimates the output
from the text streamed so far (cost status ``estimated``); one that ends before any event has no
usage (``no_usage``).

**Providers.** ``AnthropicVertex`` calls are ``gcp.vertex_ai`` and ``AnthropicBedrock`` calls
``aws.bedrock`` (priced by the request's Bedrock model id, since the response names Anthropic's
model, which Bedrock's price list does not use); every other client is ``anthropic``, with
``server.address`` from the client's ``base_url`` so the pricer can tell the endpoint that bills.

**Content.** Message content is captured only when opted in
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` or ``instrument(capture_content=True)``):
``system`` as the system instructions, the messages' content blocks, the tools, and the output
blocks (a stream's assembled from its events); see :mod:`._content`.

**Not covered.** A raw *streamed* response
(``with_streaming_response`` or ``with_raw_response`` with ``stream=True``) ends its span at once
with no usage, since its events are read by the application later. Server-tool fees (web search),
the ``priority``/``fast`` service tiers and ``advisor`` iterations (another model) are not priced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from opentelemetry.trace import Tracer

from .. import semconv as sc
from ..pricing import Usage
from ._anthropic_content import DELTA_TEXT, MessageStreamContent, message_output, messages_request
from ._base import LLMCostInstrumentor, Target
from ._call import LLMCallSpan, Outcome
from ._content import ContentCapture, content_capture
from ._stream import AsyncTracedStream, TracedStream
from ._tokens import count_tokens, estimate_usage

__all__ = ["AnthropicInstrumentor"]

_MODULE = "anthropic._base_client"
_MESSAGES_PATH = "/v1/messages"
_OPERATION = "chat"
_ANTHROPIC = "anthropic"
_BEDROCK = "aws.bedrock"
_VERTEX = "gcp.vertex_ai"

# Client base classes (by name, so that no optional part of the SDK is imported) -> provider.
_CLIENT_PROVIDERS: Mapping[str, str] = {"BaseBedrockClient": _BEDROCK, "BaseVertexClient": _VERTEX}
# The SDK's own name of a client's platform, for clients that do not derive from those classes.
_PLATFORM_PROVIDERS: Mapping[str, str] = {"bedrock": _BEDROCK, "vertex": _VERTEX}


def _get(obj: Any, name: str) -> Any:
    """Read a field of a response model or a decoded body (``None`` when absent)."""
    # Read the instance dict: ``getattr`` of a field a model lacks goes through pydantic's
    # ``__getattr__`` and an exception, which costs more than the whole outcome; and ``dict``
    # rather than the ``Mapping`` ABC, whose check costs more than the read itself.
    if isinstance(obj, dict):
        return obj.get(name)
    fields = getattr(obj, "__dict__", None)
    if fields is None:
        return getattr(obj, name, None)
    value = fields.get(name)
    if value is None and (extra := getattr(obj, "__pydantic_extra__", None)):
        value = extra.get(name)  # a field this SDK version does not know yet
    return value


def _int(obj: Any, name: str) -> int | None:
    value = _get(obj, name)
    return value if type(value) is int else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | int | None:
    # request fields the caller left out are the SDK's ``omit`` sentinels: only real numbers count
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_providers: dict[type, str] = {}


def _provider_of(client_type: type) -> str:
    """Return the ``gen_ai.provider.name`` of a client class (remembered per class)."""
    provider = _providers.get(client_type)
    if provider is None:
        provider = next(
            (_CLIENT_PROVIDERS[k.__name__] for k in client_type.__mro__ if k.__name__ in _CLIENT_PROVIDERS), None
        )
        if provider is None:
            platform = getattr(client_type, "_otel_platform", None)
            provider = _PLATFORM_PROVIDERS.get(platform, _ANTHROPIC) if isinstance(platform, str) else _ANTHROPIC
        _providers[client_type] = provider
    return provider


# --- usage ------------------------------------------------------------------------------------


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "output_tokens_details",
    "iterations",
)


def _usage(*sources: Any) -> Usage | None:
    """Convert Anthropic usage (exclusive input tokens) to OpenTelemetry semantics.

    Each field is taken from the first of *sources* that has it: a stream passes its
    ``message_delta`` usage (final, cumulative) before its ``message_start`` usage.
    """
    fields: dict[str, Any] = {}
    for source in reversed(sources):  # the first source that has a field wins
        if source is not None:
            for name in _USAGE_FIELDS:
                value = _get(source, name)
                if value is not None:
                    fields[name] = value
    uncached, output = _int(fields, "input_tokens"), _int(fields, "output_tokens")
    if uncached is None and output is None:
        return None
    read = _int(fields, "cache_read_input_tokens") or 0
    written = _int(fields, "cache_creation_input_tokens")
    by_ttl = fields.get("cache_creation")
    one_hour = _int(by_ttl, "ephemeral_1h_input_tokens") or 0
    if written is None:  # only the breakdown was reported
        written = (_int(by_ttl, "ephemeral_5m_input_tokens") or 0) + one_hour
    usage = Usage(
        input_tokens=(uncached or 0) + read + written,
        output_tokens=output or 0,
        cache_read_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=one_hour,
        reasoning_tokens=_int(fields.get("output_tokens_details"), "thinking_tokens") or 0,
    )
    iterations = fields.get("iterations")
    if isinstance(iterations, (list, tuple)):
        for entry in iterations:
            if _get(entry, "type") == "compaction":
                usage = _plus(usage, entry)
    return usage


def _plus(usage: Usage, entry: Any) -> Usage:
    """Add one usage entry (a compaction iteration) to *usage*."""
    part = _usage(entry)
    if part is None:
        return usage
    return Usage(
        input_tokens=usage.input_tokens + part.input_tokens,
        output_tokens=usage.output_tokens + part.output_tokens,
        cache_read_tokens=usage.cache_read_tokens + part.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens + part.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens + part.cache_write_1h_tokens,
        reasoning_tokens=usage.reasoning_tokens + part.reasoning_tokens,
    )


def _outcome(
    call: LLMCallSpan,
    usage: Usage | None,
    model: Any,
    response_id: Any,
    stop_reason: Any,
    *,
    estimated: bool = False,
) -> Outcome:
    response_model = _str(model)
    attributes: dict[str, Any] = {}
    if call.provider == _BEDROCK and response_model:
        # The body names Anthropic's model; Bedrock bills (and its price list names) the request's id.
        attributes[sc.GEN_AI_RESPONSE_MODEL] = response_model
        response_model = None
    stop = _str(stop_reason)
    return Outcome(
        usage=usage,
        response_model=response_model,
        response_id=_str(response_id),
        finish_reasons=(stop,) if stop else (),
        estimated=estimated,
        attributes=attributes,
    )


def _message_outcome(call: LLMCallSpan, message: Any) -> Outcome:
    """Read the outcome of a non-streamed call from its ``Message`` (model or decoded body)."""
    return _outcome(
        call, _usage(_get(message, "usage")), _get(message, "model"), _get(message, "id"), _get(message, "stop_reason")
    )


# --- prompt text, for estimates ---------------------------------------------------------------


def _texts(content: Any, out: list[str]) -> None:
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, (list, tuple)):  # never a generator: the SDK consumed it already
        for block in content:
            if not isinstance(block, Mapping):
                continue
            text = block.get("text")
            if isinstance(text, str):
                out.append(text)
            elif block.get("type") == "tool_result":
                _texts(block.get("content"), out)


def _prompt_texts(body: Mapping[str, Any]) -> list[str]:
    """Return the texts of a request's system prompt and messages."""
    out: list[str] = []
    _texts(body.get("system"), out)
    messages = body.get("messages")
    if isinstance(messages, (list, tuple)):
        for message in messages:
            if isinstance(message, Mapping):
                _texts(message.get("content"), out)
    return out


# --- one call ---------------------------------------------------------------------------------


class _MessagesCall(LLMCallSpan):
    """The span of one Messages call, keeping the request body for a stream's estimate."""

    __slots__ = ("body",)

    body: Mapping[str, Any]


class _StreamAccumulator:
    """Reads a Messages event stream: usage from ``message_start`` and ``message_delta``, text for estimates."""

    __slots__ = (
        "_call",
        "_capture",
        "_content",
        "_delta_usage",
        "_id",
        "_model",
        "_seen",
        "_start_usage",
        "_stop",
        "_text",
    )

    def __init__(self, call: LLMCallSpan, capture: ContentCapture | None = None) -> None:
        self._call = call
        self._capture = capture
        self._content = MessageStreamContent() if capture is not None else None
        self._seen = False
        self._start_usage: Any = None
        self._delta_usage: Any = None
        self._model: Any = None
        self._id: Any = None
        self._stop: Any = None
        self._text: list[str] = []

    def feed(self, event: Any) -> None:
        """Take one raw stream event."""
        self._seen = True
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            # text, thinking and tool-input deltas are all generated (output) tokens
            delta = event.delta
            part = DELTA_TEXT.get(getattr(delta, "type", None))
            text = _get(delta, part) if part else None
            if isinstance(text, str):
                self._text.append(text)
        elif kind == "message_start":
            message = event.message
            self._start_usage = getattr(message, "usage", None)
            self._model = getattr(message, "model", None)
            self._id = getattr(message, "id", None)
        elif kind == "message_delta":
            self._delta_usage = getattr(event, "usage", None) or self._delta_usage
            self._stop = getattr(getattr(event, "delta", None), "stop_reason", None) or self._stop
        if self._content is not None:  # last: the usage above is read even if this fails
            self._content.feed(event)

    def outcome(self) -> Outcome:
        """Return the usage the stream reported (or the estimate for a stream cut short), and its content."""
        out = self._usage_outcome()
        if self._capture is not None and self._content is not None:
            out.attributes = {
                **out.attributes,
                **self._capture.response_attributes(self._call, self._content.messages),
            }
        return out

    def _usage_outcome(self) -> Outcome:
        call = self._call
        if self._delta_usage is not None:
            usage = _usage(self._delta_usage, self._start_usage)
            return _outcome(call, usage, self._model, self._id, self._stop)
        if not self._seen:
            return _outcome(call, None, self._model, self._id, self._stop)
        completion = "".join(self._text)
        model = _str(self._model) or call.request_model
        start = _usage(self._start_usage)
        if start is not None:
            # message_start's input counts are exact; its output count is a placeholder
            usage = dataclasses.replace(start, output_tokens=count_tokens(completion, model), reasoning_tokens=0)
        else:
            usage = estimate_usage(model, _prompt_texts(getattr(call, "body", {})), completion)
        return _outcome(call, usage, self._model, self._id, self._stop, estimated=True)


class _MessagesHooks:
    """The :class:`~._wrap.CallHooks` of the client's ``request()`` for ``POST /v1/messages``."""

    def __init__(self, tracer: Tracer, stream_types: tuple[type, type], capture: ContentCapture | None = None) -> None:
        self._tracer = tracer
        self._stream, self._async_stream = stream_types
        self._capture = capture

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> LLMCallSpan | None:
        """Start the span of a Messages call; ``None`` (not traced) for any other request."""
        options = args[1] if len(args) > 1 else kwargs.get("options")
        url = getattr(options, "url", None)
        if not isinstance(url, str) or url.partition("?")[0] != _MESSAGES_PATH:
            return None
        if str(getattr(options, "method", "")).lower() != "post":
            return None
        body = getattr(options, "json_data", None)
        body = body if isinstance(body, Mapping) else {}
        stream = kwargs.get("stream") is True or body.get("stream") is True
        base_url = getattr(instance, "base_url", None)
        port = getattr(base_url, "port", None)
        content = self._capture.request_attributes(messages_request, body) if self._capture else {}
        call = _MessagesCall(
            self._tracer,
            provider=_provider_of(type(instance)),
            operation=_OPERATION,
            request_model=_str(body.get("model")),
            server_address=_str(getattr(base_url, "host", None)),
            server_port=port if isinstance(port, int) else None,
            attributes={
                sc.GEN_AI_REQUEST_MAX_TOKENS: _number(body.get("max_tokens")),
                sc.GEN_AI_REQUEST_TEMPERATURE: _number(body.get("temperature")),
                sc.GEN_AI_REQUEST_TOP_P: _number(body.get("top_p")),
                sc.GEN_AI_REQUEST_STREAM: True if stream else None,
                **content,
            },
        )
        call.body = body
        return call

    def outcome(self, call: LLMCallSpan, result: Any) -> Outcome:
        """Read the outcome of a call that returned a ``Message`` (or a raw response to one)."""
        http = getattr(result, "http_response", None)
        if http is not None:
            # ``with_raw_response``: the body of a non-streamed call is read already; a streamed one is not
            if not http.is_closed or not str(http.headers.get("content-type", "")).startswith("application/json"):
                return Outcome()
            result = http.json()
        out = _message_outcome(call, result)
        if self._capture is not None:
            out.attributes = {**out.attributes, **self._capture.response_attributes(call, message_output, result)}
        return out

    def stream(self, call: LLMCallSpan, result: Any) -> Any:
        """Wrap a returned event stream so that the span ends with it."""
        if isinstance(result, self._async_stream):
            return AsyncTracedStream(result, call, _StreamAccumulator(call, self._capture))
        if isinstance(result, self._stream):
            return TracedStream(result, call, _StreamAccumulator(call, self._capture))
        return None


class AnthropicInstrumentor(LLMCostInstrumentor):
    """Trace and price the ``anthropic`` SDK's Messages API calls (sync, async, streamed).

    ``AnthropicInstrumentor().instrument(tracer_provider=...)`` wraps the clients' requests; see the
    module documentation for what is covered. ``capture_content=True`` (default from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off) records message content.
    """

    _instruments: ClassVar[Sequence[str]] = ("anthropic >= 0.40",)

    def targets(self, tracer: Tracer, **kwargs: Any) -> Sequence[tuple[Target, _MessagesHooks]]:
        """Return the client ``request`` methods to wrap, sync and async, with their hooks.

        Raises:
            ConfigError: ``capture_content`` or its environment variable has a value not accepted.
        """
        from anthropic import AsyncStream, Stream  # the SDK is imported only when instrumenting

        hooks = _MessagesHooks(tracer, (Stream, AsyncStream), content_capture(kwargs.get("capture_content")))
        return [
            (Target(_MODULE, "SyncAPIClient.request"), hooks),
            (Target(_MODULE, "AsyncAPIClient.request", is_async=True), hooks),
        ]
