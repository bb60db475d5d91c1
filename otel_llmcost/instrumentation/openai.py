"""Instrumentation of the ``openai`` SDK: chat completions, the Responses API, embeddings, images and audio.

Every ``create`` (and ``parse``) call of ``client.chat.completions``, ``client.responses`` and
``client.embeddings`` (and the image and audio calls of :mod:`._openai_media`), sync and async,
becomes a priced GenAI span, counted in the cost metrics whether or not the span is sampled.

- **Provider.** An OpenAI-compatible client calls every endpoint "openai"; the endpoint bills. The
  provider is read from the client's base URL host (:func:`endpoint_of`): ``*.openai.azure.com`` is
  ``azure.ai.openai``, ``api.groq.com`` is ``groq``, and so on; an ``AzureOpenAI`` client on an
  unknown host is Azure too; any other host (vLLM on localhost, a gateway) is ``openai``. Only the
  host goes on the span (``server.address``): never the URL's path, query string (Azure URLs can
  carry an ``api-key``) or credentials.
- **Usage.** OpenAI's token semantics already match OpenTelemetry's: ``prompt_tokens`` includes
  ``cached_tokens``, ``completion_tokens`` includes ``reasoning_tokens``.
- **Streams.** The span ends when the stream is exhausted, closed or fails. Usage comes from the
  final chunk (chat, with ``stream_options={"include_usage": True}``) or the ``response.completed``
  event. A stream that ends without usage, or is cut off, is counted locally
  (:mod:`._tokens`) and its cost marked ``estimated``.
- **Opt-in: ask for stream usage.** With ``OTEL_LLMCOST_STREAM_INCLUDE_USAGE=true`` (or
  ``OpenAIInstrumentor().instrument(include_stream_usage=True)``) a streaming chat request that sets
  no ``stream_options`` is sent with ``stream_options={"include_usage": True}``, so the bill is
  exact. This CHANGES THE REQUEST and the stream: the server then sends one more chunk, whose
  ``choices`` list is empty (code reading ``chunk.choices[0]`` unguarded fails on it), and an
  OpenAI-compatible server that does not know the option may reject the request.
- **Stream helpers.** ``chat.completions.stream()`` and ``responses.stream()`` read the traced
  stream ``create(stream=True)`` returns; leaving their ``with`` block early (or ``close()``) closes
  the stream's HTTP response, which ends the span at once with what was streamed so far (an
  estimate without usage), as closing the stream does (:mod:`._stream`).
- **Parse failures.** ``parse()`` (chat and Responses API, sync and async) raises after a billed
  answer when the completion stopped on its length limit or content filter
  (``LengthFinishReasonError``, ``ContentFilterFinishReasonError``: they carry the completion) or
  its content does not validate (pydantic ``ValidationError``: it carries nothing, and the answer is
  read from the SDK's frames in the exception's traceback, :func:`._openai_read.answer_in_traceback`).
  The span keeps ``error.type`` and its error status and the call is counted as failed, but its
  usage is priced. Limit: an SDK version that holds the answer nowhere reachable leaves such a
  call ``no_usage``; so does a ``ContentFilterFinishReasonError`` without a completion. The same
  errors raised by ``with_raw_response`` parse calls, whose span ends before the application
  parses, are priced when the span reads the answer. The Responses API's ``parse()`` has no
  finish-reason errors (an incomplete response is returned, with its usage).
- **Raw responses.** ``with_raw_response`` calls are priced from the parsed body (``parse()``
  memoises, so the application gets the same object); ``with_streaming_response`` bodies, and raw
  streams, belong to the application and are counted with cost status ``no_usage``.
- **Message content** is recorded only when opted in (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
  or ``instrument(capture_content=True)``): chat messages and choices, Responses API input,
  ``instructions`` and output items (:mod:`._openai_content`, :mod:`._content`). Embeddings never.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from openai import APIError
from openai.lib.azure import BaseAzureClient
from opentelemetry.context import get_current
from opentelemetry.trace import Tracer

from .. import semconv as sc
from .._state import IN_LLM_CALL
from ..config import OTEL_LLMCOST_STREAM_INCLUDE_USAGE, ConfigError, env_bool
from ..pricing import Usage, provider_from_address, semconv_provider_name
from ._base import LLMCostInstrumentor, Target
from ._call import LLMCallSpan, Outcome
from ._content import ContentCapture, RequestContent, content_capture
from ._openai_content import chat_output, chat_request, responses_output, responses_request
from ._openai_read import Call as _Call
from ._openai_read import ChatStream, ResponsesStream, answer_in_traceback, chat_usage, responses_usage
from ._openai_read import number as _number
from ._openai_read import to_int as _int
from ._openai_read import to_str as _str
from ._stream import AsyncTracedStream, TracedStream
from ._wrap import CallHooks

__all__ = [
    "OpenAIInstrumentor",
    "endpoint_of",
    "provider_for_host",
]

# The header the SDK's with_raw_response ("true") and with_streaming_response ("stream") add.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


# --- endpoint -> provider -------------------------------------------------------------------------


def provider_for_host(host: str | None, *, azure_client: bool = False) -> str:
    """Return the ``gen_ai.provider.name`` of an OpenAI-compatible endpoint.

    Args:
        host: the base URL's host name.
        azure_client: the call was made with an ``AzureOpenAI`` client (Azure on any host).

    Returns:
        The provider's OpenTelemetry name (``azure.ai.openai``, ``groq``...), ``openai`` for a host
        no catalog provider is known by.
    """
    provider = provider_from_address(host) or ("azure" if azure_client else "openai")
    return semconv_provider_name(provider)


def endpoint_of(client: Any) -> tuple[str, str | None, int | None]:
    """Return ``(gen_ai.provider.name, host, port)`` of an ``openai`` client's base URL.

    Only the host and port are read: the path, query string and any credentials in the URL are not.
    The port is ``None`` when the URL uses its scheme's default.
    """
    # what the public base_url property returns; the property imports a module on every read
    # (~1 us, openai 2.x and later), this runs on every call
    url = getattr(client, "_base_url", None)
    if url is None:
        url = getattr(client, "base_url", None)
    azure = isinstance(client, BaseAzureClient)
    # str(url) costs ~2 us on every call; a client keeps its (immutable) URL object, so the
    # answer is kept by that object's identity (the entry holds the object: its id stays its own)
    seen = _by_url.get(id(url))
    if seen is not None and seen[0] is url and seen[1] is azure:
        return seen[2]
    endpoint = _endpoint(str(url) if url is not None else "", azure)
    if len(_by_url) >= _MAX_URLS:
        _by_url.clear()
    _by_url[id(url)] = (url, azure, endpoint)
    return endpoint


_MAX_URLS = 64
_by_url: dict[int, tuple[Any, bool, tuple[str, str | None, int | None]]] = {}


@functools.lru_cache(maxsize=256)  # a process talks to a handful of endpoints, on every call
def _endpoint(url: str, azure_client: bool) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number: no port to report
        port = None
    host = parts.hostname or None
    return provider_for_host(host, azure_client=azure_client), host, port


# --- hooks ----------------------------------------------------------------------------------------


class _Hooks:
    """What the wrappers call for one kind of OpenAI call (see :class:`._wrap.CallHooks`)."""

    operation: ClassVar[str]
    answer: ClassVar[tuple[str, str] | None] = None
    """(module, class) of the answer ``parse()`` validates, for :meth:`failed_outcome`."""

    def __init__(
        self,
        tracer: Tracer,
        *,
        is_async: bool,
        include_stream_usage: bool = False,
        capture: ContentCapture | None = None,
    ) -> None:
        self.tracer = tracer
        self.is_async = is_async
        self.include_stream_usage = include_stream_usage
        self.capture = capture

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The ``gen_ai.request.*`` attributes of the call."""
        return {}

    def request_content(self, kwargs: Mapping[str, Any]) -> RequestContent | None:
        """The request's content, for capture (``None``: this kind of call has none)."""
        return None

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call | None:
        """Start the call's span."""
        ctx = get_current()
        if ctx.get(IN_LLM_CALL):  # an SDK helper calling another wrapped method: counted once, outside
            return None
        provider, host, port = endpoint_of(getattr(instance, "_client", None))
        streaming = kwargs.get("stream") is True
        attrs = self.request_attributes(kwargs)
        if streaming:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if self.capture is not None:
            attrs.update(self.capture.request_attributes(self.request_content, kwargs))
        call = _Call(
            self.tracer,
            provider=provider,
            operation=self.operation,
            request_model=_str(kwargs.get("model")),
            server_address=host,
            server_port=port,
            attributes=attrs,
            context=ctx,
        )
        headers = kwargs.get("extra_headers")  # None on most calls: no isinstance(ABC) check then
        raw = headers.get(_RAW_RESPONSE_HEADER) if headers is not None and isinstance(headers, Mapping) else None
        call.raw = _str(raw)
        call.request = kwargs
        call.streaming = streaming
        return call

    def stream(self, span: LLMCallSpan, result: Any) -> Any:
        """Wrap a streamed result so its span ends with it."""
        call: _Call = span  # type: ignore[assignment]  # start() made it
        if not call.streaming or call.raw:
            return None
        traced = AsyncTracedStream if self.is_async else TracedStream
        return traced(result, call, self.accumulator(call))

    def outcome(self, span: LLMCallSpan, result: Any) -> Outcome:
        """Read the usage and model of a returned (non-streamed) result."""
        call: _Call = span  # type: ignore[assignment]  # start() made it
        if call.raw:
            if call.raw != "true" or call.streaming:
                return Outcome()  # the body (or stream) is the application's to read
            try:
                result = result.parse()  # with_raw_response: already read, and parse() memoises
            except Exception as exc:  # parse()'s parser failing on a billed answer; the app meets it too
                failed = self.failed_outcome(call, exc)
                if failed is None:
                    raise
                return failed
        return self.read(call, result)

    def read(self, call: _Call, result: Any) -> Outcome:
        """Read the outcome of a parsed response object."""
        raise NotImplementedError

    def failed_outcome(self, span: LLMCallSpan, exc: BaseException) -> Outcome | None:
        """The billed outcome of a call whose ``parse()`` raised after the answer (module docs), else ``None``.

        Called only for a call that raised (see :class:`._wrap.FailedOutcome`).
        """
        if self.answer is None or isinstance(exc, APIError):  # APIError: the request failed, no answer
            return None
        answer = getattr(exc, "completion", None)  # LengthFinishReasonError, ContentFilterFinishReasonError
        if answer is None:
            kind = getattr(importlib.import_module(self.answer[0]), self.answer[1], None)
            answer = answer_in_traceback(exc, kind) if isinstance(kind, type) else None
        return self.read(span, answer) if answer is not None else None  # type: ignore[arg-type]

    def accumulator(self, call: _Call) -> Any:
        """Return the :class:`._wrap.StreamAccumulator` of a streamed call."""
        raise NotImplementedError


class _ChatHooks(_Hooks):
    operation = "chat"
    answer = ("openai.types.chat", "ChatCompletion")

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call | None:
        call = super().start(instance, args, kwargs)
        if (
            call is not None
            and call.streaming
            and self.include_stream_usage
            and not isinstance(kwargs.get("stream_options"), Mapping)
            and isinstance(kwargs, dict)
        ):
            # the opt-in: the wrapper passes this same dict on to the SDK method
            kwargs["stream_options"] = {"include_usage": True}
        return call

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        max_tokens = _number(kwargs.get("max_completion_tokens"))
        return {
            sc.GEN_AI_REQUEST_MAX_TOKENS: max_tokens if max_tokens is not None else _number(kwargs.get("max_tokens")),
            sc.GEN_AI_REQUEST_TEMPERATURE: _number(kwargs.get("temperature")),
            sc.GEN_AI_REQUEST_TOP_P: _number(kwargs.get("top_p")),
        }

    def request_content(self, kwargs: Mapping[str, Any]) -> RequestContent:
        return chat_request(kwargs)

    def read(self, call: _Call, result: Any) -> Outcome:
        usage, cost = chat_usage(getattr(result, "usage", None), call.provider)
        reasons = []
        for choice in getattr(result, "choices", None) or ():
            reason = getattr(choice, "finish_reason", None)
            if reason and isinstance(reason, str):
                reasons.append(reason)
        out = Outcome(
            usage=usage,
            provider_cost=cost,
            response_model=_str(getattr(result, "model", None)),
            response_id=_str(getattr(result, "id", None)),
            finish_reasons=tuple(reasons),
        )
        if self.capture is not None:
            out.attributes = self.capture.response_attributes(call, chat_output, result)
        return out

    def accumulator(self, call: _Call) -> ChatStream:
        return ChatStream(call, self.capture)


class _ResponsesHooks(_Hooks):
    operation = "chat"
    answer = ("openai.types.responses", "Response")

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            sc.GEN_AI_REQUEST_MAX_TOKENS: _number(kwargs.get("max_output_tokens")),
            sc.GEN_AI_REQUEST_TEMPERATURE: _number(kwargs.get("temperature")),
            sc.GEN_AI_REQUEST_TOP_P: _number(kwargs.get("top_p")),
        }

    def request_content(self, kwargs: Mapping[str, Any]) -> RequestContent:
        return responses_request(kwargs)

    def read(self, call: _Call, result: Any) -> Outcome:
        return Outcome(
            usage=responses_usage(getattr(result, "usage", None)),
            response_model=_str(getattr(result, "model", None)),
            response_id=_str(getattr(result, "id", None)),
            attributes=self.capture.response_attributes(call, responses_output, result) if self.capture else {},
        )

    def accumulator(self, call: _Call) -> ResponsesStream:
        return ResponsesStream(call, self.read, self.capture)


class _EmbeddingsHooks(_Hooks):
    operation = "embeddings"

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        encoding = _str(kwargs.get("encoding_format"))
        return {sc.GEN_AI_REQUEST_ENCODING_FORMATS: (encoding,) if encoding else None}

    def read(self, call: _Call, result: Any) -> Outcome:
        usage = getattr(result, "usage", None)
        return Outcome(
            usage=Usage(input_tokens=_int(getattr(usage, "prompt_tokens", None))) if usage is not None else None,
            response_model=_str(getattr(result, "model", None)),
        )


# --- the instrumentor -----------------------------------------------------------------------------

_TARGETS: tuple[tuple[str, str, tuple[str, ...], type[_Hooks]], ...] = (
    # module, sync class (the async one is "Async" + it), methods, hooks. parse() posts directly
    # (it does not go through create()), so it is wrapped too; stream() helpers call create().
    ("openai.resources.chat.completions", "Completions", ("create", "parse"), _ChatHooks),
    ("openai.resources.responses", "Responses", ("create", "parse"), _ResponsesHooks),
    ("openai.resources.embeddings", "Embeddings", ("create",), _EmbeddingsHooks),
)


class OpenAIInstrumentor(LLMCostInstrumentor):
    """Prices every ``openai`` chat, Responses, embeddings, image and audio call, sync and async, streamed or not.

    Example::

        OpenAIInstrumentor().instrument()  # or: otel_llmcost.configure()

    Keyword arguments of :meth:`instrument`: ``tracer_provider`` (default the global one) and
    ``include_stream_usage`` (default from ``OTEL_LLMCOST_STREAM_INCLUDE_USAGE``, else ``False``):
    add ``stream_options={"include_usage": True}`` to streaming chat requests that set no
    ``stream_options`` (this changes the request: see the module documentation);
    ``capture_content`` (default from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else
    ``False``): record message content on the spans (:mod:`._content`).
    """

    _instruments = ("openai >= 1.40",)

    def targets(self, tracer: Tracer, **kwargs: Any) -> list[tuple[Target, CallHooks]]:
        """Return the SDK methods to wrap (those this SDK version has), each with its hooks.

        Raises:
            ConfigError: ``include_stream_usage`` or ``capture_content`` is not a bool, or an
                environment variable is not one of its accepted values.
        """
        include = kwargs.get("include_stream_usage")
        if include is None:
            include = env_bool(OTEL_LLMCOST_STREAM_INCLUDE_USAGE)
        elif not isinstance(include, bool):
            raise ConfigError("include_stream_usage", include, "expected True or False")
        capture = content_capture(kwargs.get("capture_content"))
        found: list[tuple[Target, CallHooks]] = []
        from ._openai_media import MEDIA_TARGETS  # its hooks derive from this module's: imported late

        for module_name, cls_name, methods, hooks_cls in (*_TARGETS, *MEDIA_TARGETS):
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # an API this SDK version lacks
                continue
            for is_async in (False, True):
                owner = getattr(module, ("Async" if is_async else "") + cls_name, None)
                hooks = hooks_cls(tracer, is_async=is_async, include_stream_usage=include, capture=capture)
                found += [
                    (Target(module_name, f"{owner.__name__}.{method}", is_async), hooks)
                    for method in methods
                    if owner is not None and callable(getattr(owner, method, None))
                ]
        return found
