"""Amazon Bedrock Runtime instrumentation: boto3 / botocore calls become priced GenAI spans.

boto3 builds its client classes at run time, so the one stable place to wrap is botocore's
``BaseClient._make_api_call``, through which every client method of every service passes. The
wrapper acts only on the ``bedrock-runtime`` service's model calls and lets everything else through
after one dictionary lookup:

* ``Converse``: usage read from the response.
* ``ConverseStream``: the response's ``stream`` (a botocore ``EventStream``) is wrapped; the span
  ends when the application has read it to the end, closes it or drops it; usage comes from the
  ``metadata`` event and the stop reason from ``messageStop``.
* ``InvokeModel``: for an Anthropic Messages payload the response ``body`` is read at once and
  replaced with an equivalent ``StreamingBody`` over the same bytes, so the span ends with the call
  and the application reads exactly what Bedrock sent (see :func:`_read_body` for why); for other
  payloads, and as a fallback, usage comes from the ``x-amzn-bedrock-*-token-count`` headers that
  Bedrock adds to every InvokeModel response.
* ``InvokeModelWithResponseStream``: the ``body`` event stream is wrapped; usage comes from the
  Anthropic ``message_start`` / ``message_delta`` events or, for any model, from the last chunk's
  ``amazon-bedrock-invocationMetrics``. A stream that ends (cut off, or closed by the application)
  after ``message_start`` but before ``message_delta`` keeps ``message_start``'s exact input counts
  and counts its output locally, as its ``output_tokens`` there is a placeholder: cost ``estimated``.
* A stream that ends before any usage report is estimated from the request's and the streamed
  texts (:mod:`._tokens`); the streamed text counted is every generated delta: text, reasoning and
  tool-call input.

Token semantics: Bedrock's ``inputTokens`` (Converse), ``input_tokens`` (Anthropic), the token-count
headers and the invocation metrics all count input *excluding* cache reads and writes (Converse's
``totalTokens`` is input + output + cache read + cache write), so the cache counts are added to
give OpenTelemetry's inclusive input count. Cache writes with a one-hour TTL come from Converse's
``cacheDetails`` or Anthropic's ``cache_creation.ephemeral_1h_input_tokens``.

The request model is the ``modelId`` exactly as given: a cross-region inference profile prefix
(``us.``, ``eu.``, ``global.``) or an ARN is kept, because the pricer bills ``global.`` profiles
differently from geographic ones. Errors are botocore's own: a ``ClientError`` propagates unchanged
and the span's ``error.type`` is ``botocore.<modelled exception>`` (``botocore.ThrottlingException``,
which is ``botocore.`` + the error code for every error Bedrock's model declares; an undeclared code
gives ``botocore.ClientError``). Message content is captured only when opted in
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` or ``instrument(capture_content=True)``):
Converse messages, system and tools and the output message, and the same for InvokeModel with an
Anthropic payload (:mod:`._bedrock_content`); other InvokeModel payloads are not read.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

from botocore.response import StreamingBody  # type: ignore[import-untyped]
from opentelemetry.trace import Tracer

from .. import semconv as sc
from ..pricing import Usage
from ._anthropic_content import MessageStreamContent, message_output
from ._base import LLMCostInstrumentor, Target
from ._bedrock_content import (
    ConverseStreamContent,
    anthropic_delta_text,
    converse_delta_text,
    converse_output,
    converse_request,
    invoke_request,
)
from ._bedrock_usage import (
    METRICS_KEY,
    METRICS_KEYS,
    anthropic_usage,
    converse_usage,
    counted_output,
    header_usage,
    model_chunk_text,
    request_id,
    usage_of,
)
from ._call import LLMCallSpan, Outcome
from ._content import ContentCapture, content_capture
from ._stream import TracedStream
from ._tokens import estimate_usage
from ._wrap import CallHooks, fail, finish

__all__ = ["BedrockInstrumentor"]

PROVIDER = "aws.bedrock"
"""The ``gen_ai.provider.name`` of every Bedrock call."""

_SERVICE = "bedrock-runtime"
_CONVERSE = "Converse"
_CONVERSE_STREAM = "ConverseStream"
_INVOKE = "InvokeModel"
_INVOKE_STREAM = "InvokeModelWithResponseStream"
_TRACED = frozenset((_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM))

_CHAT = "chat"
_EMBEDDINGS = "embeddings"
_ANTHROPIC_MARK = "anthropic_version"


def _texts(value: Any, out: list[str]) -> list[str]:
    """Collect the prompt texts of a Converse or Anthropic request (for estimating its input)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str):
                if key in ("text", "content"):
                    out.append(item)
            else:
                _texts(item, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                out.append(item)  # a plain-string system prompt or content
            else:
                _texts(item, out)
    return out


def _request_json(body: Any) -> Any:
    if isinstance(body, (bytes, bytearray, str)):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None  # a file-like body: not read, it is the application's


def _is_anthropic(body: Any) -> bool:
    """Whether an InvokeModel request body is an Anthropic Messages payload (a substring test: cheap)."""
    if isinstance(body, str):
        return _ANTHROPIC_MARK in body
    if isinstance(body, (bytes, bytearray)):
        return _ANTHROPIC_MARK.encode() in body
    return False


@functools.lru_cache(maxsize=64)
def _endpoint(url: str) -> tuple[str | None, int | None]:
    """The host and explicit port of a client's endpoint URL (never its user info or path)."""
    parts = urlsplit(url)
    return parts.hostname, parts.port


# --- one call --------------------------------------------------------------------------------------


class _BedrockCall(LLMCallSpan):
    """An :class:`LLMCallSpan` that remembers the Bedrock operation and its parameters."""

    __slots__ = ("api_operation", "params")

    api_operation: str
    params: Mapping[str, Any]

    def prompt_texts(self) -> list[str]:
        """The request's texts, read only when a stream ended without usage."""
        if self.api_operation in (_INVOKE, _INVOKE_STREAM):
            request = _request_json(self.params.get("body"))
            if not isinstance(request, Mapping):
                return []
            # Anthropic and Nova bodies; the other families' prompt (Llama, Mistral...), inputText
            # (Titan) or message (Cohere)
            keys = ("system", "messages", "prompt", "inputText", "message")
            return _texts([request.get(key) for key in keys], [])
        return _texts([self.params.get("system"), self.params.get("messages")], [])

    def estimate(self, completion: Sequence[str], stop: str | None) -> Outcome:
        """An estimated outcome from the prompt and the streamed text (the stream sent no usage)."""
        usage = estimate_usage(self.request_model, self.prompt_texts(), "".join(completion))
        return Outcome(usage=usage, estimated=True, finish_reasons=(stop,) if stop else ())


class _ConverseStreamAccumulator:
    """Reads ConverseStream events: text deltas, the stop reason, the ``metadata`` usage."""

    __slots__ = ("_attrs", "_call", "_capture", "_content", "_seen", "_stop", "_text", "_usage")

    def __init__(self, call: _BedrockCall, attrs: dict[str, Any], capture: ContentCapture | None = None) -> None:
        self._call = call
        self._attrs = attrs
        self._capture = capture
        self._content = ConverseStreamContent() if capture is not None else None
        self._text: list[str] = []
        self._stop: str | None = None
        self._usage: Usage | None = None
        self._seen = False

    def feed(self, event: Any) -> None:
        """Take one parsed event (``{"contentBlockDelta": {...}}``...)."""
        self._seen = True
        delta = event.get("contentBlockDelta")
        if delta is not None:  # the common case first: one check per text chunk
            delta = delta.get("delta", {})
            text = delta.get("text") or converse_delta_text(delta)  # reasoning and tool input are output too
            if text:
                self._text.append(text)
        elif "messageStop" in event:
            self._stop = event["messageStop"].get("stopReason")
        elif "metadata" in event:
            self._usage = converse_usage(event["metadata"].get("usage"))
        if self._content is not None:  # last: the usage above is read even if this fails
            self._content.feed(event)

    def outcome(self) -> Outcome:
        """The usage the stream reported (an estimate if it ended without), and the content when captured."""
        out = self._usage_outcome()
        if self._capture is not None and self._content is not None:
            out.attributes = {**out.attributes, **self._capture.response_attributes(self._call, self._content.messages)}
        return out

    def _usage_outcome(self) -> Outcome:
        if self._usage is not None:
            stops = (self._stop,) if self._stop else ()
            return Outcome(usage=self._usage, finish_reasons=stops, attributes=self._attrs)
        if not self._seen:  # failed before any output (a throttled stream): nothing was billed
            return Outcome(attributes=self._attrs)
        outcome = self._call.estimate(self._text, self._stop)
        outcome.attributes = self._attrs
        return outcome


class _InvokeStreamAccumulator:
    """Reads InvokeModelWithResponseStream chunks: Anthropic events and Bedrock's invocation metrics."""

    __slots__ = (
        "_anthropic",
        "_attrs",
        "_call",
        "_capture",
        "_content",
        "_final",
        "_id",
        "_metrics",
        "_seen",
        "_stop",
        "_text",
    )

    def __init__(self, call: _BedrockCall, attrs: dict[str, Any], capture: ContentCapture | None = None) -> None:
        self._call = call
        self._attrs = attrs
        self._capture = capture
        self._content = MessageStreamContent() if capture is not None else None
        self._text: list[str] = []
        self._anthropic: dict[str, Any] = {}
        self._final = False  # a message_delta reported usage: the output count is no longer a placeholder
        self._metrics: Any = None
        self._stop: str | None = None
        self._id: str | None = None
        self._seen = False

    def feed(self, event: Any) -> None:
        """Take one parsed event (``{"chunk": {"bytes": b"..."}}``)."""
        chunk = event.get("chunk")
        if chunk is None:
            return
        self._seen = True
        data = json.loads(chunk["bytes"])
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text") or anthropic_delta_text(delta)  # thinking and tool input are output too
            if text:
                self._text.append(text)
        elif kind == "message_start":
            message = data.get("message") or {}
            self._id = message.get("id")
            self._anthropic.update(message.get("usage") or {})
        elif kind == "message_delta":
            self._stop = (data.get("delta") or {}).get("stop_reason") or self._stop
            usage = data.get("usage")
            if usage:
                self._anthropic.update(usage)  # cumulative counts: later ones win
                self._final = True
        elif kind is None:  # another family's chunk (Llama, Titan, Mistral, Nova...): its text and stop
            text, stop = model_chunk_text(data)
            if text:
                self._text.append(text)
            self._stop = stop or self._stop
        metrics = data.get(METRICS_KEY)
        if metrics is not None:
            self._metrics = metrics
        if self._content is not None:  # last: the usage above is read even if this fails
            self._content.feed(data)

    def outcome(self) -> Outcome:
        """The usage the stream reported (Anthropic's, else Bedrock's metrics, else an estimate), and its content."""
        out = self._usage_outcome()
        if self._capture is not None and self._content is not None:
            out.attributes = {**out.attributes, **self._capture.response_attributes(self._call, self._content.messages)}
        return out

    def _usage_outcome(self) -> Outcome:
        stops = (self._stop,) if self._stop else ()
        # exact: Anthropic's final counts, else Bedrock's metrics (the last chunk: the stream ended)
        usage = anthropic_usage(self._anthropic) if self._final else None
        usage = usage or usage_of(self._metrics, METRICS_KEYS)
        if usage is not None:
            return Outcome(usage=usage, response_id=self._id, finish_reasons=stops, attributes=self._attrs)
        if not self._seen:
            return Outcome(attributes=self._attrs)
        start = anthropic_usage(self._anthropic) if self._anthropic else None
        if start is not None:  # ended after message_start only: its output count is a placeholder
            usage = counted_output(start, "".join(self._text), self._call.request_model)
            return Outcome(
                usage=usage, estimated=True, response_id=self._id, finish_reasons=stops, attributes=self._attrs
            )
        outcome = self._call.estimate(self._text, self._stop)
        outcome.response_id, outcome.attributes = self._id, self._attrs
        return outcome


class _RaisingStream:
    """A raw stream that fails as the real one did: its first read raises the error, later ones end.

    Inside a ``StreamingBody`` that knows the promised length this replays what botocore does on its
    own: the first read raises the error, a later read raises ``IncompleteReadError``.
    """

    def __init__(self, exc: Exception) -> None:
        self._exc: Exception | None = exc

    def read(self, *args: Any) -> bytes:
        exc, self._exc = self._exc, None
        if exc is not None:
            raise exc
        return b""

    def close(self) -> None:
        pass


def _read_body(call: _BedrockCall, result: dict[str, Any], capture: ContentCapture | None) -> None:
    """Read an InvokeModel response body, give the application an identical one, and end the call.

    Why read it now rather than tee the application's reads: the span then ends with the call (its
    duration is the operation's, and it never waits on, or leaks with, an application that reads
    late or never); the replacement is a genuine botocore ``StreamingBody`` over the same bytes, so
    ``read(n)``, ``iter_lines()``, ``iter_chunks()``, ``close()`` and ``with`` all behave as before;
    and a proxy would miss reads, because ``StreamingBody``'s own helpers call ``self.read``
    internally. The application reads the (JSON) body whole anyway, so no memory is added for long.
    If reading fails, the call fails with that error and the application's first read raises it.
    """
    body = result["body"]
    try:
        data = body.read()
    except Exception as exc:  # noqa: BLE001 - the application's own read raised it; it still will
        result["body"] = StreamingBody(_RaisingStream(exc), getattr(body, "_content_length", None))
        fail(call, exc)
        return
    result["body"] = StreamingBody(io.BytesIO(data), len(data))
    body.close()
    finish(call, lambda: _invoke_outcome(result, data, call, capture))


def _invoke_outcome(
    result: Mapping[str, Any], data: bytes | None, call: LLMCallSpan, capture: ContentCapture | None
) -> Outcome:
    """The outcome of an InvokeModel call: the Anthropic body's usage, else the token-count headers."""
    attrs = request_id(result)
    try:
        payload = json.loads(data) if data else None
    except ValueError:  # not JSON after all: the headers still count the tokens
        payload = None
    if isinstance(payload, Mapping) and isinstance(payload.get("usage"), Mapping):
        usage = anthropic_usage(payload["usage"]) or header_usage(result)
        stop = payload.get("stop_reason")
        response_id = payload.get("id")
        if capture is not None:
            attrs = {**attrs, **capture.response_attributes(call, message_output, payload)}
        return Outcome(
            usage=usage,
            # The body names Anthropic's model ("claude-sonnet-4-5-20250929"), not the Bedrock id the
            # call is billed by, so it is not the response model: pricing keeps the modelId.
            response_id=response_id if isinstance(response_id, str) else None,
            finish_reasons=(stop,) if isinstance(stop, str) else (),
            attributes=attrs,
        )
    return Outcome(usage=header_usage(result), attributes=attrs)


# --- hooks -----------------------------------------------------------------------------------------


class _BedrockHooks:
    """Call hooks for ``BaseClient._make_api_call``: Bedrock Runtime model calls only."""

    def __init__(self, tracer: Tracer, capture: ContentCapture | None = None) -> None:
        self._tracer = tracer
        self._capture = capture

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> LLMCallSpan | None:
        """Start a span for a Bedrock Runtime model call; ``None`` (pass through) for anything else."""
        operation = args[0] if args else kwargs.get("operation_name")
        if operation not in _TRACED:  # every other operation of every service: one set lookup
            return None
        meta = instance.meta
        if meta.service_model.service_name != _SERVICE:
            return None
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        if not isinstance(params, Mapping):
            return None
        model = params.get("modelId")
        model = model if isinstance(model, str) and model else None
        attrs: dict[str, Any] = {sc.CLOUD_REGION: meta.region_name}
        if operation in (_CONVERSE_STREAM, _INVOKE_STREAM):
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if operation in (_CONVERSE, _CONVERSE_STREAM):
            config = params.get("inferenceConfig")
            if isinstance(config, Mapping):
                attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = config.get("maxTokens")
                attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = config.get("temperature")
                attrs[sc.GEN_AI_REQUEST_TOP_P] = config.get("topP")
            gen_ai_operation = _CHAT
            if self._capture is not None:
                attrs.update(self._capture.request_attributes(converse_request, params))
        else:
            gen_ai_operation = _EMBEDDINGS if model and "embed" in model else _CHAT
            if self._capture is not None and gen_ai_operation == _CHAT and _is_anthropic(params.get("body")):
                attrs.update(self._capture.request_attributes(invoke_request, params.get("body")))
        host, port = _endpoint(meta.endpoint_url) if meta.endpoint_url else (None, None)
        call = _BedrockCall(
            self._tracer,
            provider=PROVIDER,
            operation=gen_ai_operation,
            request_model=model,
            server_address=host,
            server_port=port,
            attributes=attrs,
        )
        call.api_operation = operation
        call.params = params
        return call

    def outcome(self, call: LLMCallSpan, result: Any) -> Outcome:
        """The outcome of a Converse call (InvokeModel's is read in :meth:`stream`)."""
        call = cast(_BedrockCall, call)
        if call.api_operation == _INVOKE:  # the body was not read (see stream): the headers still count
            return Outcome(usage=header_usage(result), attributes=request_id(result))
        stop = result.get("stopReason")
        attrs = request_id(result)
        if self._capture is not None:
            attrs.update(self._capture.response_attributes(call, converse_output, result))
        return Outcome(
            usage=converse_usage(result.get("usage")),
            finish_reasons=(stop,) if isinstance(stop, str) else (),
            attributes=attrs,
        )

    def stream(self, call: LLMCallSpan, result: Any) -> Any:
        """Wrap a streamed response, or read an Anthropic InvokeModel body; ``None`` for Converse."""
        call = cast(_BedrockCall, call)
        operation = call.api_operation
        if operation == _CONVERSE or not isinstance(result, dict):
            return None
        if operation == _INVOKE:
            if not (_is_anthropic(call.params.get("body")) and isinstance(result.get("body"), StreamingBody)):
                return None  # other payloads: the headers carry the usage; the body is left alone
            _read_body(call, result, self._capture)
            return result
        key = "stream" if operation == _CONVERSE_STREAM else "body"
        events = result.get(key)
        if events is None:
            return None
        attrs = request_id(result)
        # an InvokeModel stream's content is read only for an Anthropic payload
        capture = self._capture if operation == _CONVERSE_STREAM or _is_anthropic(call.params.get("body")) else None
        acc: Any = (
            _ConverseStreamAccumulator(call, attrs, capture)
            if operation == _CONVERSE_STREAM
            else _InvokeStreamAccumulator(call, attrs, capture)
        )
        result[key] = TracedStream(events, call, acc)  # iterates a fresh iter() of the EventStream
        return result


class BedrockInstrumentor(LLMCostInstrumentor):
    """Instruments boto3 / botocore Bedrock Runtime calls: Converse, ConverseStream, InvokeModel(+stream).

    Usage::

        BedrockInstrumentor().instrument(tracer_provider=provider)
        client = boto3.client("bedrock-runtime")  # clients made before or after are both traced

    ``capture_content=True`` (default from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
    else off) records message content on the spans.
    """

    # Bedrock Runtime (InvokeModel) arrived in botocore 1.31.57; Converse in 1.34.116, and the
    # wrapper simply never sees an operation an older botocore lacks.
    _instruments: ClassVar[Collection[str]] = ("botocore >= 1.31.57",)

    def targets(self, tracer: Tracer, **kwargs: Any) -> Sequence[tuple[Target, CallHooks]]:
        """Wrap ``botocore.client.BaseClient._make_api_call``, the path of every client call.

        Raises:
            ConfigError: ``capture_content`` or its environment variable has a value not accepted.
        """
        hooks = _BedrockHooks(tracer, content_capture(kwargs.get("capture_content")))
        return [(Target("botocore.client", "BaseClient._make_api_call"), hooks)]
