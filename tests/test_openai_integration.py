"""The official OpenTelemetry OpenAI instrumentation + the real ``openai`` client + CostSpanProcessor.

The client talks to :mod:`tests.fakes.openai_server` on 127.0.0.1; the instrumentation
(``opentelemetry-instrumentation-genai-openai``) emits its spans into a tracer provider whose
processor is :class:`CostSpanProcessor` with the built-in catalog. Expected costs are derived from
the usage the server reported times the catalog's per-token prices, never hard-coded.

What the instrumentation (1.3b0) emits, as these tests pin it down:

* span ``chat {request model}`` (CLIENT, scope ``opentelemetry.instrumentation.genai.openai``) with
  ``gen_ai.operation.name=chat``, ``gen_ai.provider.name=openai``, ``gen_ai.request.model``,
  ``gen_ai.response.model`` (the dated snapshot), ``gen_ai.response.id``,
  ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens`` (cached included),
  ``gen_ai.usage.output_tokens`` (reasoning included), ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.reasoning.output_tokens`` (each only when non-zero), ``server.address``,
  ``server.port``, ``openai.response.service_tier``, ``openai.response.system_fingerprint``;
  streamed calls add ``gen_ai.request.stream=True`` and ``gen_ai.response.time_to_first_chunk``
  and carry usage only when ``stream_options.include_usage`` is set;
* span ``embeddings {request model}`` with ``gen_ai.operation.name=embeddings``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.embeddings.dimension.count`` (no output tokens);
* on an API error the span has ERROR status and ``error.type`` set to the exception's qualified
  name (``openai.RateLimitError``), no usage, and the exception propagates unchanged;
* no prompt or completion text unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` opts in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost import Usage

from .fakes.openai_server import (
    ERROR_MODELS,
    REPLY_TEXT,
    ChatUsage,
    FakeOpenAIServer,
    chat_usage,
    embedding_usage,
    response_model,
    serve,
)
from .fakes.stack import InstrumentedStack, instrumented_stack, metric_points, strings, usd

pytestmark = pytest.mark.integration

API_KEY = "test-key"
SCOPE = "opentelemetry.instrumentation.genai.openai"
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
GENAI_ENV = (
    CONTENT_ENV,
    "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT",
    "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK",
    "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH",
)
# Long enough that the fake server reports cached tokens (half the prompt, in 64-token steps).
PROMPT = "Summarise the quarterly report for the board. " * 7
SECRET = "The launch code is PINEAPPLE-42"


def messages(text: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


@dataclass
class Stack(InstrumentedStack):
    """One instrumented process: the fake server, the SDK pipelines and our processor."""

    server: FakeOpenAIServer
    genai_reader: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0, **kwargs)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def spans(self) -> list[ReadableSpan]:
        spans = super().spans()
        assert all(s.instrumentation_scope is not None and s.instrumentation_scope.name == SCOPE for s in spans)
        return spans

    def cost_metrics(self) -> dict[str, list[Any]]:
        """{metric name: data points} of our metrics (the catalog info gauge left out)."""
        return self.metrics()

    def genai_metrics(self) -> dict[str, list[Any]]:
        """{metric name: data points} the instrumentation itself records."""
        return metric_points(self.genai_reader)


@contextmanager
def instrumented(server: FakeOpenAIServer) -> Iterator[Stack]:
    """Instrument openai into fresh pipelines for the block, then uninstrument and shut down.

    Spans go through CostSpanProcessor (the built-in catalog); the official instrumentation's own
    metrics and logs go to memory too. It does not read our process-wide recorder: none is installed.
    """
    genai_reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[genai_reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    make = partial(Stack, server=server, genai_reader=genai_reader, logs=logs)
    try:
        with instrumented_stack(
            make,
            OpenAIInstrumentor(),
            price_spans=True,
            install=False,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        ) as stack:
            yield stack
    finally:
        meter_provider.shutdown()
        logger_provider.shutdown()


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name in GENAI_ENV:  # the instrumentation's defaults, whatever the developer's shell exports
        monkeypatch.delenv(name, raising=False)
    with instrumented(server) as s:
        yield s


# --- expected values, from the server's usage and the catalog's per-token prices ------------------


@dataclass(frozen=True)
class Expected:
    model: str
    input_usd: Decimal
    cache_read_usd: Decimal
    output_usd: Decimal

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.cache_read_usd + self.output_usd


def expected_chat(stack: Stack, span: ReadableSpan, model: str, usage: ChatUsage) -> Expected:
    pricer = stack.processor.pricer
    match = pricer.match("openai", model)
    assert match is not None, model
    p = match.entry.prices_at(span.start_time)
    assert not p.tiers and p.request == 0  # the arithmetic below is the whole bill
    assert p.cache_read < p.input  # so "billed at the cache rate" is a real difference
    out = (usage.completion_tokens - usage.reasoning_tokens) * p.output + usage.reasoning_tokens * p.reasoning
    expected = Expected(
        match.entry.model_id,
        input_usd=(usage.prompt_tokens - usage.cached_tokens) * p.input,
        cache_read_usd=usage.cached_tokens * p.cache_read,
        output_usd=out,
    )
    # the same bill through the public pricing API, from OpenTelemetry-semantics usage
    cost = pricer.price(
        "openai",
        model,
        Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        ),
        at_ns=span.start_time,
    )
    assert cost.total_usd == expected.total_usd
    return expected


def assert_priced(span: ReadableSpan, expected: Expected) -> None:
    a = span.attributes or {}
    assert a["llm.cost.status"] == "priced"
    assert a["llm.cost.pricing.model"] == expected.model
    assert a["llm.cost.pricing.provider"] == "openai"
    assert a["llm.cost.pricing.version"] == otel_llmcost.default_pricer().catalog.version
    assert usd(a["llm.cost.total_usd"]) == expected.total_usd
    assert usd(a["llm.cost.input_usd"]) == expected.input_usd
    assert usd(a["llm.cost.cache_read_usd"]) == expected.cache_read_usd
    assert usd(a["llm.cost.output_usd"]) == expected.output_usd
    assert a["llm.cost.cache_write_usd"] == 0.0 and a["llm.cost.request_usd"] == 0.0


def assert_chat_usage(span: ReadableSpan, usage: ChatUsage) -> None:
    a = span.attributes or {}
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cached_tokens
    assert a.get("gen_ai.usage.reasoning.output_tokens", 0) == usage.reasoning_tokens


def request_points(stack: Stack) -> list[tuple[dict[str, Any], int]]:
    return [(dict(p.attributes), p.value) for p in stack.cost_metrics().get("llm.requests", [])]


# --- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "catalog_model"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("o4-mini", "o4-mini"),  # the server reports reasoning tokens
        ("acme-router", "gpt-4o-mini"),  # unknown request model: only the response model prices it
    ],
)
def test_chat_completion_is_priced_from_the_returned_usage(stack: Stack, model: str, catalog_model: str) -> None:
    with stack.client() as client:
        result = client.chat.completions.create(model=model, messages=messages())
    (request,) = stack.server.requests
    usage = chat_usage(request.body)
    assert result.usage is not None and result.usage.prompt_tokens == usage.prompt_tokens
    assert usage.cached_tokens > 0 and (usage.reasoning_tokens > 0) is (model == "o4-mini")
    assert result.model == response_model(model) != model

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"chat {model}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == model
    assert a["gen_ai.response.model"] == response_model(model)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == stack.server.port
    assert_chat_usage(span, usage)
    expected = expected_chat(stack, span, response_model(model), usage)
    assert expected.model == catalog_model
    assert_priced(span, expected)

    # the cached tokens are billed at the (lower) cache rate, only the rest at the input rate
    match = stack.processor.pricer.match("openai", response_model(model))
    assert match is not None
    prices = match.entry.prices_at(span.start_time)
    assert prices.cache_read < prices.input
    assert usd(a["llm.cost.cache_read_usd"]) == usage.cached_tokens * prices.cache_read
    assert usd(a["llm.cost.input_usd"]) == (usage.prompt_tokens - usage.cached_tokens) * prices.input

    assert request_points(stack) == [
        (
            {
                "provider": "openai",
                "model": catalog_model,
                "operation": "chat",
                "status": "ok",
                "cost_status": "priced",
            },
            1,
        )
    ]
    (cost_point,) = stack.cost_metrics()["llm.cost.usd"]
    assert Decimal(repr(cost_point.value)) == expected.total_usd
    assert stack.recorder.total_cost() == expected.total_usd


def test_streaming_chat_with_include_usage_is_priced(stack: Stack) -> None:
    with (
        stack.client() as client,
        client.chat.completions.create(
            model="gpt-4o-mini", messages=messages(), stream=True, stream_options={"include_usage": True}
        ) as stream,
    ):
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY_TEXT
    assert chunks[-1].usage is not None and not chunks[-1].choices
    usage = chat_usage(stack.server.requests[0].body)

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == "chat gpt-4o-mini"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert_chat_usage(span, usage)
    assert_priced(span, expected_chat(stack, span, "gpt-4o-mini-2024-07-18", usage))
    assert [(p["status"], p["cost_status"]) for p, _ in request_points(stack)] == [("ok", "priced")]


def test_streaming_chat_without_include_usage_has_no_usage_to_price(stack: Stack) -> None:
    # OpenAI sends no usage on a stream unless asked; the instrumentation then reports none, and
    # the call is counted as a successful request whose cost is unknown (never a made-up 0).
    with stack.client() as client:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages(), stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REPLY_TEXT
    a = stack.only_span().attributes or {}
    assert not any(k.startswith("gen_ai.usage.") for k in a)
    assert a["llm.cost.status"] == "no_usage"
    assert not any(k.endswith("_usd") for k in a)
    # the series is labelled with the catalog model, as a priced call of the same model is
    assert request_points(stack) == [
        (
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "operation": "chat",
                "status": "ok",
                "cost_status": "no_usage",
            },
            1,
        )
    ]
    assert "llm.cost.usd" not in stack.cost_metrics()


@pytest.mark.parametrize("encoding_format", [None, "float"])
def test_embeddings_are_priced(stack: Stack, encoding_format: str | None) -> None:
    inputs = ["first document", "the second, longer document"]
    kwargs: dict[str, Any] = {} if encoding_format is None else {"encoding_format": encoding_format}
    with stack.client() as client:
        result = client.embeddings.create(model="text-embedding-3-small", input=inputs, **kwargs)
    assert len(result.data) == 2
    tokens = embedding_usage(stack.server.requests[0].body)
    assert result.usage.prompt_tokens == tokens

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == "embeddings text-embedding-3-small" and span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == tokens
    assert "gen_ai.usage.output_tokens" not in a
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)

    match = stack.processor.pricer.match("openai", "text-embedding-3-small")
    assert match is not None
    price = match.entry.prices_at(span.start_time).input
    assert_priced(span, Expected("text-embedding-3-small", tokens * price, Decimal(0), Decimal(0)))
    assert request_points(stack) == [
        (
            {
                "provider": "openai",
                "model": "text-embedding-3-small",
                "operation": "embeddings",
                "status": "ok",
                "cost_status": "priced",
            },
            1,
        )
    ]


@pytest.mark.parametrize(
    ("model", "exc_type"),
    [("rate-limited", openai.RateLimitError), ("server-error", openai.InternalServerError)],
)
def test_api_error_propagates_unchanged_and_is_counted_as_error(
    stack: Stack, model: str, exc_type: type[openai.APIStatusError]
) -> None:
    status, err_type, code, message = ERROR_MODELS[model]
    with stack.client() as client, pytest.raises(exc_type) as raised:
        client.chat.completions.create(model=model, messages=messages())
    assert type(raised.value) is exc_type
    assert raised.value.status_code == status
    assert raised.value.body == {"message": message, "type": err_type, "param": None, "code": code}
    assert len(stack.server.requests) == 1  # max_retries=0: one request, one span

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"chat {model}"
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == f"openai.{exc_type.__name__}"
    assert a["llm.cost.status"] == "no_usage"
    assert not any(k.startswith("gen_ai.usage.") or k.endswith("_usd") for k in a)

    assert request_points(stack) == [
        ({"provider": "openai", "model": model, "operation": "chat", "status": "error", "cost_status": "no_usage"}, 1)
    ]
    (duration,) = stack.cost_metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == f"openai.{exc_type.__name__}"
    assert "llm.cost.usd" not in stack.cost_metrics()


def _span_strings(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    yield from strings(dict(span.attributes or {}))
    yield span.status.description or ""
    for event in span.events:
        yield event.name
        yield from strings(dict(event.attributes or {}))
    for link in span.links:
        yield from strings(dict(link.attributes or {}))
    yield from strings(dict(span.resource.attributes))


def _metric_strings(points: dict[str, list[Any]]) -> Iterator[str]:
    for name, pts in points.items():
        yield name
        for p in pts:
            yield from strings(dict(p.attributes or {}))


def _exercise_everything(stack: Stack, text: str) -> None:
    with stack.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages(text))
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=messages(text), stream=True, stream_options={"include_usage": True}
        ):
            pass
        client.embeddings.create(model="text-embedding-3-small", input=text)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="rate-limited", messages=messages(text))


def test_api_key_is_in_no_span_attribute_or_metric_label(stack: Stack) -> None:
    _exercise_everything(stack, PROMPT)
    assert {r.headers.get("authorization") for r in stack.server.requests} == {f"Bearer {API_KEY}"}
    assert len(stack.spans()) == 4
    seen = [s for span in stack.spans() for s in _span_strings(span)]
    seen += list(_metric_strings(stack.cost_metrics()))
    seen += list(_metric_strings(stack.genai_metrics()))
    assert seen and not [s for s in seen if API_KEY in s]


def test_no_message_content_on_spans_or_logs_by_default(stack: Stack) -> None:
    _exercise_everything(stack, SECRET)
    spans = stack.spans()
    assert len(spans) == 4 and all((s.attributes or {})["llm.cost.status"] for s in spans)
    content_keys = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
    assert not [k for s in spans for k in (s.attributes or {}) if k in content_keys]
    seen = [s for span in spans for s in _span_strings(span)]
    assert not [s for s in seen if "PINEAPPLE" in s or "You are terse" in s or "fake OpenAI server" in s]
    assert stack.logs.get_finished_logs() == ()


def test_content_capture_opt_in_puts_the_prompt_on_the_span(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the control for the test above: the same call with the documented opt-in does record content
    for name in GENAI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CONTENT_ENV, "span_only")
    with instrumented(server) as stack, stack.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages(SECRET))
        a = stack.only_span().attributes or {}
    assert SECRET in str(a["gen_ai.input.messages"])
    assert REPLY_TEXT in str(a["gen_ai.output.messages"])
    assert a["llm.cost.status"] == "priced"  # pricing keeps the content attributes it was given


def test_async_client_chat_is_priced(stack: Stack) -> None:
    async def call() -> None:
        async with stack.async_client() as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=messages())
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=messages(), stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass

    asyncio.run(call())
    spans = stack.spans()
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert [(s.attributes or {}).get("gen_ai.request.stream") for s in spans] == [None, True]
    for span, request in zip(spans, stack.server.requests, strict=True):
        usage = chat_usage(request.body)
        assert_chat_usage(span, usage)
        assert_priced(span, expected_chat(stack, span, "gpt-4o-mini-2024-07-18", usage))
    assert request_points(stack) == [
        (
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "operation": "chat",
                "status": "ok",
                "cost_status": "priced",
            },
            2,
        )
    ]


def test_uninstrument_stops_spans(server: FakeOpenAIServer) -> None:
    with instrumented(server) as stack, stack.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages())
        assert len(stack.spans()) == 1
        OpenAIInstrumentor().uninstrument()
        client.chat.completions.create(model="gpt-4o-mini", messages=messages())

        async def call() -> None:
            async with stack.async_client() as async_client:
                await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages())

        asyncio.run(call())
        assert len(server.requests) == 3
        assert len(stack.spans()) == 1  # the providers are still up: nothing more was emitted
        assert [n for _, n in request_points(stack)] == [1]
