"""Instrumentation of the Google GenAI SDK (``from google import genai``): Gemini API and Vertex AI.

What is wrapped, and why at that level:

* ``Models._generate_content`` / ``Models._generate_content_stream`` and their ``AsyncModels``
  twins: the SDK's one-HTTP-request methods. The public ``generate_content`` may send several
  requests for one call (automatic function calling sends one per tool round and returns only the
  last response's usage; automatic continuation sums the usage of its hops). Google bills each
  request on its own (the long-context tier of ``gemini-2.5-pro`` applies per request), so each
  request is one span with one cost. When an SDK version lacks these methods, the public
  ``generate_content`` / ``generate_content_stream`` are wrapped instead.
* ``Models.embed_content`` / ``AsyncModels.embed_content`` (one request each).

Gemini's usage is converted to OpenTelemetry's: input = ``prompt_token_count`` (which includes
``cached_content_token_count``) + ``tool_use_prompt_token_count``; output =
``candidates_token_count`` + ``thoughts_token_count`` (candidates exclude thoughts); cache read =
``cached_content_token_count``; reasoning = ``thoughts_token_count``. A stream reports running
totals on its chunks, so the last ``usage_metadata`` seen is the call's; a stream that reports
none is estimated locally (cost status ``estimated``).

The provider is ``gcp.vertex_ai`` when the client was made with ``vertexai=True``, else
``gcp.gemini``; ``server.address`` is the host of the client's base URL (never its path, query
or credentials). Message content is captured only when opted in
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` or ``instrument(capture_content=True)``):
``contents``, ``config.system_instruction`` and ``config.tools``, and the candidates (a stream's
assembled from its chunks); never for embeddings. See :mod:`._content`.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from opentelemetry.trace import Tracer

from .. import semconv as sc
from ..pricing import Usage
from ..pricing.providers import semconv_provider_name
from ._base import LLMCostInstrumentor, Target
from ._call import LLMCallSpan, Outcome
from ._content import ContentCapture, content_capture
from ._google_genai_content import GenerateStreamContent, candidates_output, generate_request
from ._stream import AsyncTracedStream, TracedStream
from ._tokens import estimate_usage
from ._wrap import CallHooks

__all__ = ["GoogleGenAIInstrumentor", "provider_name", "usage_from_metadata"]

_MODULE = "google.genai.models"
_GENERATE = "generate_content"
_EMBEDDINGS = "embeddings"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def provider_name(api_client: Any) -> str:
    """Return the ``gen_ai.provider.name`` of a google-genai API client: Vertex AI or the Gemini API."""
    return semconv_provider_name("vertex" if getattr(api_client, "vertexai", False) else "google")


def _get(obj: Any, name: str) -> Any:
    """A field of a pydantic SDK object or of the plain dict the SDK also accepts."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int:
    # counts are ints on the wire; Vertex embedding statistics arrive as floats
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def usage_from_metadata(meta: Any) -> Usage | None:
    """Convert a ``usage_metadata`` (Gemini semantics) to a :class:`Usage` (OpenTelemetry semantics).

    Args:
        meta: a ``GenerateContentResponseUsageMetadata`` (or ``None``).

    Returns:
        The usage, or ``None`` when the response reported no token counts.
    """
    if meta is None:
        return None
    prompt = _get(meta, "prompt_token_count")
    candidates = _get(meta, "candidates_token_count")
    if prompt is None and candidates is None:
        return None
    thoughts = _count(_get(meta, "thoughts_token_count"))
    return Usage(
        input_tokens=_count(prompt) + _count(_get(meta, "tool_use_prompt_token_count")),
        output_tokens=_count(candidates) + thoughts,
        cache_read_tokens=_count(_get(meta, "cached_content_token_count")),
        reasoning_tokens=thoughts,
    )


def _finish_reason(value: Any) -> str | None:
    if value is None:
        return None
    raw = getattr(value, "value", value)  # FinishReason is a str enum; an unknown one may be a str
    return str(raw).lower().removeprefix("finish_reason_") or None


def _endpoint(api_client: Any, config: Any) -> tuple[str | None, int | None]:
    """The host and port a request goes to (a per-request base URL wins over the client's)."""
    base_url = _get(_get(config, "http_options"), "base_url")
    if not base_url:
        base_url = _get(getattr(api_client, "_http_options", None), "base_url")
    if not isinstance(base_url, str) or not base_url:
        return None, None
    parts = urlsplit(base_url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a malformed port: leave it out
        port = None
    return parts.hostname, port


def _request_attributes(config: Any, stream: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.GEN_AI_REQUEST_TEMPERATURE: _get(config, "temperature"),
        sc.GEN_AI_REQUEST_TOP_P: _get(config, "top_p"),
        sc.GEN_AI_REQUEST_MAX_TOKENS: _get(config, "max_output_tokens"),
    }
    if stream:
        attrs[sc.GEN_AI_REQUEST_STREAM] = True
    return {k: v for k, v in attrs.items() if isinstance(v, (int, float, bool))}


def _texts(value: Any) -> Iterator[str]:
    """Every text in a ``contents`` argument: a string, Content, Part, their dict forms, or lists of them."""
    if value is None:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    else:
        text = _get(value, "text")
        if isinstance(text, str):
            yield text
        parts = _get(value, "parts")
        if isinstance(parts, (list, tuple)):
            yield from _texts(parts)


def _candidate_texts(response: Any) -> Iterator[str]:
    for candidate in _get(response, "candidates") or ():
        yield from _texts(_get(_get(candidate, "content"), "parts"))


def _finish_reasons(response: Any) -> list[str]:
    reasons = (_finish_reason(_get(c, "finish_reason")) for c in _get(response, "candidates") or ())
    return [r for r in reasons if r]


def _response_outcome(response: Any) -> Outcome:
    return Outcome(
        usage=usage_from_metadata(_get(response, "usage_metadata")),
        response_model=_get(response, "model_version") or None,
        response_id=_get(response, "response_id") or None,
        finish_reasons=_finish_reasons(response),
    )


def _embedding_outcome(response: Any) -> Outcome:
    # the Gemini API reports usage_metadata; Vertex also per embedding, in its statistics
    tokens = _get(_get(response, "usage_metadata"), "prompt_token_count")
    if tokens is None:
        stats = [_get(_get(e, "statistics"), "token_count") for e in _get(response, "embeddings") or ()]
        tokens = sum(_count(t) for t in stats) if stats and None not in stats else None
    return Outcome(usage=None if tokens is None else Usage(input_tokens=_count(tokens)))


class _GenAICall(LLMCallSpan):
    """A call span that also keeps the request's contents, for estimating a stream without usage."""

    __slots__ = ("config", "contents")

    def __init__(self, tracer: Tracer, *, contents: Any, config: Any, **kwargs: Any) -> None:
        super().__init__(tracer, **kwargs)
        self.contents = contents
        self.config = config


class _StreamAccumulator:
    """Reads a ``generate_content_stream``: last usage, model, id, finish reasons, and the text."""

    __slots__ = ("_call", "_capture", "_chunks", "_content", "_meta", "_model", "_reasons", "_response_id", "_text")

    def __init__(self, call: _GenAICall, capture: ContentCapture | None = None) -> None:
        self._call = call
        self._capture = capture
        self._content = GenerateStreamContent() if capture is not None else None
        self._chunks = 0
        self._meta: Any = None
        self._model: str | None = None
        self._response_id: str | None = None
        self._reasons: dict[int, str] = {}
        self._text: list[str] = []

    def feed(self, chunk: Any) -> None:
        """Take one streamed ``GenerateContentResponse``."""
        self._chunks += 1
        meta = _get(chunk, "usage_metadata")
        if meta is not None:  # running totals: the latest replaces the previous
            self._meta = meta
        self._model = _get(chunk, "model_version") or self._model
        self._response_id = _get(chunk, "response_id") or self._response_id
        for position, candidate in enumerate(_get(chunk, "candidates") or ()):
            index = _get(candidate, "index")
            reason = _finish_reason(_get(candidate, "finish_reason"))
            if reason:
                self._reasons[index if isinstance(index, int) else position] = reason
        if self._meta is None:  # the text is only needed for an estimate
            self._text.extend(_candidate_texts(chunk))
        if self._content is not None:  # last: the usage above is read even if this fails
            self._content.feed(chunk)

    def outcome(self) -> Outcome:
        """What the stream reported so far; estimated when chunks came but no usage did."""
        usage = usage_from_metadata(self._meta)
        estimated = False
        if usage is None and self._chunks:
            call = self._call
            prompt = [*_texts(call.contents), *_texts(_get(call.config, "system_instruction"))]
            usage = estimate_usage(self._model or call.request_model, prompt, "".join(self._text))
            estimated = True
        content = self._content
        return Outcome(
            usage=usage,
            response_model=self._model,
            response_id=self._response_id,
            finish_reasons=[self._reasons[i] for i in sorted(self._reasons)],
            estimated=estimated,
            attributes=self._capture.response_attributes(self._call, content.messages)
            if self._capture is not None and content is not None
            else {},
        )


class _Hooks:
    """Hooks for one wrapped method: ``generate_content`` (plain or streamed) or ``embed_content``."""

    def __init__(
        self, tracer: Tracer, operation: str, *, stream: bool = False, capture: ContentCapture | None = None
    ) -> None:
        self._tracer = tracer
        self._operation = operation
        self._stream = stream
        # embeddings carry no message content to capture
        self._capture = capture if operation == _GENERATE else None

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> LLMCallSpan | None:
        """Start the span from the keyword arguments (the SDK's methods take no positional ones)."""
        api_client = getattr(instance, "_api_client", None)
        config = kwargs.get("config")
        model = kwargs.get("model")
        address, port = _endpoint(api_client, config)
        attrs = _request_attributes(config, self._stream)
        if self._capture is not None:
            attrs.update(self._capture.request_attributes(generate_request, kwargs.get("contents"), config))
        return _GenAICall(
            self._tracer,
            contents=kwargs.get("contents"),
            config=config,
            provider=provider_name(api_client),
            operation=self._operation,
            request_model=model if isinstance(model, str) else None,
            server_address=address,
            server_port=port,
            attributes=attrs,
        )

    def outcome(self, call: LLMCallSpan, result: Any) -> Outcome:
        """Read usage, model, id and finish reasons from a response."""
        if self._operation == _EMBEDDINGS:
            return _embedding_outcome(result)
        out = _response_outcome(result)
        if self._capture is not None:
            out.attributes = self._capture.response_attributes(call, candidates_output, result)
        return out

    def stream(self, call: LLMCallSpan, result: Any) -> Any:
        """Wrap a streamed response (a generator, or an async iterator) so its span ends with it."""
        if not self._stream or not isinstance(call, _GenAICall):
            return None
        accumulator = _StreamAccumulator(call, self._capture)
        if hasattr(result, "__anext__"):
            return AsyncTracedStream(result, call, accumulator)
        if hasattr(result, "__next__"):
            return TracedStream(result, call, accumulator)
        return None


def _method_name(cls: Any, private: str, public: str) -> str:
    return private if callable(getattr(cls, private, None)) else public


class GoogleGenAIInstrumentor(LLMCostInstrumentor):
    """Prices every ``google-genai`` model call (Gemini API and Vertex AI) at the call site.

    Usage::

        GoogleGenAIInstrumentor().instrument(tracer_provider=provider)

    ``capture_content=True`` (default from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
    else off) records message content on the spans.
    """

    _instruments: ClassVar[Collection[str]] = ("google-genai >= 1.0.0",)

    def targets(self, tracer: Tracer, **kwargs: Any) -> Sequence[tuple[Target, CallHooks]]:
        """Return the SDK methods to wrap with their hooks (see the module docstring).

        Raises:
            ConfigError: ``capture_content`` or its environment variable has a value not accepted.
        """
        capture = content_capture(kwargs.get("capture_content"))
        try:
            from google.genai import models
        except ImportError:
            return []
        out: list[tuple[Target, CallHooks]] = []
        for cls in (models.Models, models.AsyncModels):
            for private, public, hooks in (
                ("_generate_content", "generate_content", _Hooks(tracer, _GENERATE, capture=capture)),
                (
                    "_generate_content_stream",
                    "generate_content_stream",
                    _Hooks(tracer, _GENERATE, stream=True, capture=capture),
                ),
                ("embed_content", "embed_content", _Hooks(tracer, _EMBEDDINGS)),
            ):
                name = _method_name(cls, private, public)
                method = getattr(cls, name, None)
                if method is None:
                    continue
                # a stream method may be a coroutine returning an async iterator (await it) or a
                # generator / async generator function (its result is the stream itself)
                is_async = inspect.iscoroutinefunction(method)
                out.append((Target(_MODULE, f"{cls.__name__}.{name}", is_async), hooks))
        return out
