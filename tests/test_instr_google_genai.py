"""Our google-genai instrumentation + the real ``genai.Client`` against a fake Gemini / Vertex server.

The client talks to :mod:`tests.fakes.gemini_server` on 127.0.0.1 (``HttpOptions(base_url=...)``;
Vertex AI in express mode with an API key, or with a project, location and stub credentials).
Expected costs come from the usage the server reported, converted by hand from Gemini's semantics
and multiplied by the catalog's per-token prices, never hard-coded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import google.auth.credentials
import pytest
import wrapt
from google import genai
from google.genai import errors, models, types
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost.instrumentation._call import error_type_of
from otel_llmcost.instrumentation._tokens import estimate_usage
from otel_llmcost.instrumentation.google_genai import (
    GoogleGenAIInstrumentor,
    _endpoint,
    provider_name,
    usage_from_metadata,
)
from otel_llmcost.pricing import Usage

from .fakes.gemini_server import (
    ERROR_MODELS,
    REPLY_TEXT,
    TOOL_USE_TOKENS,
    FakeGeminiServer,
    GeminiUsage,
    embed_tokens,
    gemini_usage,
    model_version,
    serve,
)
from .fakes.stack import InstrumentedStack, instrumented_stack, usd

pytestmark = pytest.mark.integration

API_KEY = "test-key-5ecret-AIza"
PROMPT = "Summarise the quarterly report for the board. " * 30  # long enough to report cached tokens
SECRET = "The launch code is PINEAPPLE-42"


@dataclass
class Stack(InstrumentedStack):
    """One instrumented process: the fake server, a tracer provider, our recorder and pricer."""

    server: FakeGeminiServer

    def client(self, **kwargs: Any) -> genai.Client:
        kwargs.setdefault("api_key", API_KEY)
        return genai.Client(http_options=types.HttpOptions(base_url=self.server.base_url), **kwargs)

    def requests(self) -> list[tuple[dict[str, Any], int]]:
        return [(dict(p.attributes), p.value) for p in self.metrics().get("llm.requests", [])]


def instrumented(server: FakeGeminiServer, sampler: Sampler | None = None) -> AbstractContextManager[Stack]:
    """Instrument google-genai into fresh pipelines for the block; uninstrument and restore after."""
    return instrumented_stack(partial(Stack, server=server), GoogleGenAIInstrumentor(), sampler=sampler)


@pytest.fixture()
def server() -> Iterator[FakeGeminiServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeGeminiServer) -> Iterator[Stack]:
    with instrumented(server) as s:
        yield s


# --- expected values: the server's usage, converted by hand, times the catalog's prices -----------


@dataclass(frozen=True)
class Expected:
    provider: str
    model: str
    input_usd: Decimal
    cache_read_usd: Decimal
    output_usd: Decimal

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.cache_read_usd + self.output_usd


def expected_cost(
    stack: Stack, span: ReadableSpan, usage: GeminiUsage, model: str, provider: str = "gcp.gemini", tiers: bool = True
) -> Expected:
    match = stack.pricer.match(provider, model)
    assert match is not None, model
    prices = match.entry.prices_at(span.start_time)
    assert prices.request == 0
    billed_input = usage.prompt_token_count + usage.tool_use_prompt_token_count
    rates: Any = prices
    for tier in prices.tiers if tiers else ():  # a long prompt bills the whole request at the tier's rates
        if billed_input > tier.above_input_tokens:
            rates = tier
    assert rates.reasoning == rates.output  # Gemini bills thinking as output
    assert rates.cache_read < rates.input  # so "billed at the cache rate" is a real difference
    return Expected(
        match.provider,
        match.entry.model_id,
        input_usd=(billed_input - usage.cached_content_token_count) * rates.input,
        cache_read_usd=usage.cached_content_token_count * rates.cache_read,
        output_usd=(usage.candidates_token_count + usage.thoughts_token_count) * rates.output,
    )


def assert_priced(span: ReadableSpan, expected: Expected, status: str = "priced") -> None:
    a = span.attributes or {}
    assert a["llm.cost.status"] == status
    assert (a["llm.cost.pricing.provider"], a["llm.cost.pricing.model"]) == (expected.provider, expected.model)
    assert usd(a["llm.cost.total_usd"]) == expected.total_usd
    assert usd(a["llm.cost.input_usd"]) == expected.input_usd
    assert usd(a["llm.cost.cache_read_usd"]) == expected.cache_read_usd
    assert usd(a["llm.cost.output_usd"]) == expected.output_usd


def assert_usage(span: ReadableSpan, usage: GeminiUsage) -> None:
    a = span.attributes or {}
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_token_count + usage.tool_use_prompt_token_count
    assert a["gen_ai.usage.output_tokens"] == usage.candidates_token_count + usage.thoughts_token_count
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cached_content_token_count
    assert a.get("gen_ai.usage.reasoning.output_tokens", 0) == usage.thoughts_token_count


def served_usage(stack: Stack, index: int = 0) -> tuple[str, GeminiUsage]:
    request = stack.server.requests[index]
    model = request.path.rsplit("/", 1)[-1].split(":", 1)[0]
    return model, gemini_usage(model, request.body)


# --- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "thinks"),
    [
        ("gemini-2.5-pro", True),
        ("gemini-2.5-flash-lite", False),
        ("models/gemini-2.5-flash", True),  # the resource-name form the SDK also accepts
        ("gemini-flash-latest", True),  # an alias the catalog lacks: the response model prices it
    ],
)
def test_generate_content_is_priced_with_thoughts_and_cached_tokens(stack: Stack, model: str, thinks: bool) -> None:
    with stack.client() as client:
        response = client.models.generate_content(model=model, contents=PROMPT)
    served, usage = served_usage(stack)
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == usage.prompt_token_count
    assert usage.cached_content_token_count > 0 and (usage.thoughts_token_count > 0) is thinks

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"generate_content {model}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "generate_content" and a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.request.model"] == model
    assert a["gen_ai.response.model"] == model_version(served) == response.model_version
    assert a["gen_ai.response.id"] == response.response_id
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == stack.server.port
    assert "gen_ai.request.stream" not in a
    assert_usage(span, usage)
    expected = expected_cost(stack, span, usage, model_version(served))
    assert_priced(span, expected)
    labels = {"provider": "google", "model": expected.model, "operation": "generate_content"}
    assert stack.requests() == [({**labels, "status": "ok", "cost_status": "priced"}, 1)]
    (cost,) = stack.metrics()["llm.cost.usd"]
    assert Decimal(repr(cost.value)) == expected.total_usd
    tokens = {p.attributes["token_type"]: p.value for p in stack.metrics()["llm.tokens"]}
    assert tokens.get("reasoning", 0) == usage.thoughts_token_count
    assert tokens["cache_read"] == usage.cached_content_token_count
    assert tokens["input"] == usage.prompt_token_count - usage.cached_content_token_count  # uncached, in metrics


def test_long_prompt_bills_the_whole_request_at_the_long_context_tier(stack: Stack) -> None:
    with stack.client() as client:
        client.models.generate_content(model="gemini-2.5-pro", contents="x" * 200_500)
    _, usage = served_usage(stack)
    assert usage.prompt_token_count > 200_000
    span = stack.only_span()
    expected = expected_cost(stack, span, usage, "gemini-2.5-pro")
    assert_priced(span, expected)
    base = expected_cost(stack, span, usage, "gemini-2.5-pro", tiers=False)
    assert expected.total_usd > base.total_usd  # the tier really changed the bill


def test_automatic_function_calling_prices_every_request_with_its_tool_use_tokens(stack: Stack) -> None:
    def get_weather(city: str) -> str:
        """Return the weather in a city."""
        return f"Sunny in {city}"

    with stack.client() as client:
        response = client.models.generate_content(
            model="gemini-2.5-flash", contents=PROMPT, config=types.GenerateContentConfig(tools=[get_weather])
        )
    assert response.text == REPLY_TEXT
    assert len(stack.server.requests) == 2  # the SDK answered the function call itself
    spans = stack.spans()
    assert len(spans) == 2
    total = Decimal(0)
    for index, span in enumerate(spans):
        _, usage = served_usage(stack, index)
        assert usage.tool_use_prompt_token_count == TOOL_USE_TOKENS
        assert_usage(span, usage)
        expected = expected_cost(stack, span, usage, "gemini-2.5-flash")
        assert_priced(span, expected)
        total += expected.total_usd
    # the SDK's response carries only the last request's usage: the bill is the sum of both
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == served_usage(stack, 1)[1].prompt_token_count
    (cost,) = stack.metrics()["llm.cost.usd"]
    assert Decimal(repr(cost.value)) == total


def test_stream_is_priced_from_its_last_usage_and_ends_with_the_stream(stack: Stack) -> None:
    texts = []
    with stack.client() as client:
        for chunk in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents=PROMPT, config={"temperature": 0.2, "max_output_tokens": 64}
        ):
            texts.append(chunk.text)
            assert stack.spans() == []  # still open while the stream is read
    assert "".join(texts) == REPLY_TEXT
    _, usage = served_usage(stack)
    span = stack.only_span()
    a = span.attributes or {}
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.model"] == "gemini-2.5-flash" and a["gen_ai.response.id"]
    assert_usage(span, usage)  # the running totals' last value, not their sum
    assert_priced(span, expected_cost(stack, span, usage, "gemini-2.5-flash"))


def test_stream_without_usage_is_estimated(stack: Stack) -> None:
    with stack.client() as client:
        chunks = list(client.models.generate_content_stream(model="stream-no-usage", contents=PROMPT))
    assert all(c.usage_metadata is None for c in chunks)
    span = stack.only_span()
    a = span.attributes or {}
    estimate = estimate_usage("gemini-2.5-flash", [PROMPT], REPLY_TEXT)
    assert a["gen_ai.usage.input_tokens"] == estimate.input_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == estimate.output_tokens > 0
    assert a["llm.cost.status"] == "estimated"
    cost = stack.pricer.price("google", "gemini-2.5-flash", estimate, at_ns=span.start_time)
    assert cost.total_usd is not None and usd(a["llm.cost.total_usd"]) == cost.total_usd
    assert [(lbl["cost_status"], n) for lbl, n in stack.requests()] == [("estimated", 1)]


def test_stream_cut_off_midway_raises_unchanged_and_fails_the_span(stack: Stack) -> None:
    seen = []
    # the transport's own error: httpx's, or httpx2's when that fork is installed
    with stack.client() as client, pytest.raises(Exception) as raised:
        for chunk in client.models.generate_content_stream(model="stream-cut-off", contents="hello"):
            seen.append(chunk.text)
    assert type(raised.value).__name__ == "RemoteProtocolError"
    assert type(raised.value).__module__.split(".")[0] in ("httpx", "httpx2")
    first, second = REPLY_TEXT.split()[:2]
    assert seen == [first, " " + second]
    span = stack.only_span()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == error_type_of(raised.value)
    assert [(lbl["status"], n) for lbl, n in stack.requests()] == [("error", 1)]


def test_stream_abandoned_early_ends_its_span_with_what_was_seen(stack: Stack) -> None:
    with stack.client() as client:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello")
        first = next(stream)
        stream.close()
    assert first.text == REPLY_TEXT.split()[0]
    span = stack.only_span()
    assert span.status.status_code is StatusCode.UNSET
    thoughts = gemini_usage("gemini-2.5-flash", {}).thoughts_token_count
    assert (span.attributes or {})["gen_ai.usage.output_tokens"] == 1 + thoughts  # one word was seen


def test_async_generate_and_stream_are_priced(stack: Stack) -> None:
    async def call() -> list[str]:
        texts = []
        async with stack.client().aio as client:
            await client.models.generate_content(model="gemini-2.5-pro", contents=PROMPT)
            async for chunk in await client.models.generate_content_stream(model="gemini-2.5-pro", contents=PROMPT):
                texts.append(chunk.text or "")
        return texts

    assert "".join(asyncio.run(call())) == REPLY_TEXT
    spans = stack.spans()
    assert [(s.attributes or {}).get("gen_ai.request.stream") for s in spans] == [None, True]
    for index, span in enumerate(spans):
        _, usage = served_usage(stack, index)
        assert_usage(span, usage)
        assert_priced(span, expected_cost(stack, span, usage, "gemini-2.5-pro"))
    assert [(lbl["status"], lbl["cost_status"], n) for lbl, n in stack.requests()] == [("ok", "priced", 2)]


def _call(client: genai.Client, model: str, how: str) -> None:
    if how == "sync":
        client.models.generate_content(model=model, contents="hello")
    elif how == "stream":
        list(client.models.generate_content_stream(model=model, contents="hello"))
    else:

        async def run() -> None:
            async with client.aio as aio:
                await aio.models.generate_content(model=model, contents="hello")

        asyncio.run(run())


@pytest.mark.parametrize("how", ["sync", "stream", "async"])
@pytest.mark.parametrize(
    ("model", "exc_type"),
    [("rate-limited", errors.ClientError), ("server-error", errors.ServerError), ("malformed-body", ValueError)],
)
def test_api_errors_propagate_unchanged_and_fail_the_span(
    stack: Stack, model: str, exc_type: type[Exception], how: str
) -> None:
    with stack.client() as client, pytest.raises(exc_type) as raised:
        _call(client, model, how)
    if model in ERROR_MODELS:
        code, status, message = ERROR_MODELS[model]
        assert isinstance(raised.value, errors.APIError)
        assert (raised.value.code, raised.value.status, raised.value.message) == (code, status, message)
    else:  # the SDK's own parse error in a stream, the JSON decoder's otherwise
        parse_error = errors.UnknownApiResponseError if how == "stream" else json.JSONDecodeError
        assert type(raised.value) is parse_error
    assert len(stack.server.requests) == 1  # no retries: one request, one span
    span = stack.only_span()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == error_type_of(raised.value)
    assert a["error.type"].endswith(type(raised.value).__name__)
    assert a["llm.cost.status"] == "no_usage"
    assert not any(k.startswith("gen_ai.usage.") or k.endswith("_usd") for k in a)
    assert [(lbl["status"], lbl["cost_status"], n) for lbl, n in stack.requests()] == [("error", "no_usage", 1)]


class _StubCredentials(google.auth.credentials.Credentials):
    """Google credentials that never refresh over the network."""

    def __init__(self) -> None:
        super().__init__()
        self.token = "vertex-access-token"

    def refresh(self, request: Any) -> None:
        self.token = "vertex-access-token"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": API_KEY},  # express mode
        {"api_key": None, "project": "proj", "location": "us-central1", "credentials": _StubCredentials()},
    ],
    ids=["express", "project"],
)
def test_vertex_ai_calls_are_priced_as_vertex(stack: Stack, kwargs: dict[str, Any]) -> None:
    with stack.client(vertexai=True, **kwargs) as client:
        client.models.generate_content(model="gemini-2.5-pro", contents=PROMPT)
        for _ in client.models.generate_content_stream(model="gemini-2.5-pro", contents=PROMPT):
            pass
    assert all("/publishers/google/models/gemini-2.5-pro:" in r.path for r in stack.server.requests)
    for index, span in enumerate(stack.spans()):
        a = span.attributes or {}
        assert a["gen_ai.provider.name"] == "gcp.vertex_ai"
        _, usage = served_usage(stack, index)
        expected = expected_cost(stack, span, usage, "gemini-2.5-pro", provider="gcp.vertex_ai")
        assert expected.provider == "vertex"
        assert_priced(span, expected)
    assert [(lbl["provider"], n) for lbl, n in stack.requests()] == [("vertex", 2)]


def test_embed_content_is_priced(stack: Stack) -> None:
    with stack.client() as client:
        result = client.models.embed_content(model="gemini-embedding-001", contents=["first", "the second one"])
    assert result.embeddings is not None and len(result.embeddings) == 2
    tokens = embed_tokens(stack.server.requests[0].body)
    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == "embeddings gemini-embedding-001"
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.usage.input_tokens"] == tokens
    match = stack.pricer.match("google", "gemini-embedding-001")
    assert match is not None
    price = match.entry.prices_at(span.start_time).input
    assert_priced(span, Expected("google", "gemini-embedding-001", tokens * price, Decimal(0), Decimal(0)))


def _exercise_everything(stack: Stack, text: str) -> None:
    with stack.client() as client:
        client.models.generate_content(model="gemini-2.5-flash", contents=text)
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=text))
        list(client.models.generate_content_stream(model="stream-no-usage", contents=text))
        client.models.embed_content(model="gemini-embedding-001", contents=text)
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model="rate-limited", contents=text)


def _everything_seen(stack: Stack) -> str:
    """Every span's name, status, attributes and events, and every metric point's labels, as one text."""
    spans = [
        [s.name, s.status.description, dict(s.attributes or {}), [(e.name, dict(e.attributes or {})) for e in s.events]]
        for s in stack.spans()
    ]
    points = {name: [dict(p.attributes or {}) for p in pts] for name, pts in stack.metrics().items()}
    return json.dumps([spans, points], default=str)


def test_api_key_is_in_no_span_metric_or_log(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_llmcost")
    _exercise_everything(stack, PROMPT)
    assert {r.headers.get("x-goog-api-key") for r in stack.server.requests} == {API_KEY}
    assert len(stack.spans()) == 5
    seen = _everything_seen(stack)
    assert '"server.address": "127.0.0.1"' in seen  # the host alone
    assert API_KEY not in seen and API_KEY not in caplog.text


def test_no_message_content_on_spans_by_default(stack: Stack) -> None:
    _exercise_everything(stack, SECRET)
    seen = _everything_seen(stack)
    assert "gen_ai.input" not in seen and "gen_ai.output" not in seen
    assert "PINEAPPLE" not in seen and "fake Gemini server" not in seen


def test_sampled_out_calls_are_still_counted(server: FakeGeminiServer) -> None:
    with instrumented(server, sampler=ALWAYS_OFF) as stack, stack.client() as client:
        for _ in range(3):
            client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
        assert stack.spans() == []
        assert [n for _, n in stack.requests()] == [3]


def test_uninstrument_restores_the_sdk(server: FakeGeminiServer) -> None:
    with instrumented(server) as stack, stack.client() as client:
        assert isinstance(vars(models.Models)["_generate_content"], wrapt.FunctionWrapper)
        client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        GoogleGenAIInstrumentor().uninstrument()
        for cls in (models.Models, models.AsyncModels):
            for name in ("_generate_content", "_generate_content_stream", "embed_content"):
                assert not isinstance(vars(cls)[name], wrapt.ObjectProxy), (cls, name)
        client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"))
        assert len(server.requests) == 3
        assert len(stack.spans()) == 1
        assert [n for _, n in stack.requests()] == [1]


# --- units: the provider decision and the usage conversion -----------------------------------------


def test_provider_follows_the_clients_vertex_flag() -> None:
    with genai.Client(api_key=API_KEY) as gemini, genai.Client(vertexai=True, api_key=API_KEY) as vertex:
        assert provider_name(gemini._api_client) == "gcp.gemini"
        assert provider_name(vertex._api_client) == "gcp.vertex_ai"
    assert provider_name(object()) == "gcp.gemini"
    # a key-bearing base URL (per request, as HttpOptions allows) gives the host alone
    config = {"http_options": {"base_url": f"https://user:{API_KEY}@proxy.example:8443/v1?key={API_KEY}"}}
    assert _endpoint(None, config) == ("proxy.example", 8443)


def test_usage_conversion_follows_otel_semantics() -> None:
    counts = {"prompt": 1000, "cached_content": 400, "candidates": 70, "thoughts": 30, "tool_use_prompt": 5}
    meta = types.GenerateContentResponseUsageMetadata(**{f"{k}_token_count": v for k, v in counts.items()})
    expected = Usage(input_tokens=1005, output_tokens=100, cache_read_tokens=400, reasoning_tokens=30)
    assert usage_from_metadata(meta) == expected
    assert usage_from_metadata(types.GenerateContentResponseUsageMetadata()) is None
    assert usage_from_metadata(None) is None


def test_a_failure_in_our_code_leaves_the_call_unchanged(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_llmcost.instrumentation import google_genai

    def broken(meta: Any) -> Usage:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(google_genai, "usage_from_metadata", broken)
    with stack.client() as client:
        response = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
    assert response.text == REPLY_TEXT
    span = stack.only_span()  # ended all the same, without usage
    assert (span.attributes or {})["llm.cost.status"] == "no_usage"
    skipped = stack.metrics()["llm.cost.spans_skipped"]
    assert [(p.attributes["reason"], p.value) for p in skipped] == [("instrumentation_error", 1)]


def test_public_methods_are_wrapped_when_the_sdk_lacks_the_per_request_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(models.Models, "_generate_content")
    monkeypatch.delattr(models.AsyncModels, "_generate_content_stream")
    tracer = TracerProvider().get_tracer("test")
    names = {target.name for target, _ in GoogleGenAIInstrumentor().targets(tracer)}
    sync = {"Models.generate_content", "Models._generate_content_stream", "Models.embed_content"}
    assert names == sync | {
        "AsyncModels._generate_content",
        "AsyncModels.generate_content_stream",
        "AsyncModels.embed_content",
    }
