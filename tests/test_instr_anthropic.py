"""Our ``anthropic`` instrumentation with the real SDK clients against a fake Anthropic API on 127.0.0.1.

The clients (``anthropic.Anthropic`` / ``AsyncAnthropic``, ``AnthropicVertex``, ``AnthropicBedrock``)
talk to :mod:`tests.fakes.anthropic_server`; spans go through :class:`CostSpanProcessor` into memory
and the call-site metrics into a :class:`Recorder`. Expected costs come from the usage the server
answered with (Anthropic's exclusive input tokens) and the built-in catalog's per-token prices.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx2
import pytest
import wrapt
from anthropic._base_client import AsyncAPIClient, SyncAPIClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost.instrumentation._tokens import count_tokens
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.pricing import Pricer, Usage, default_pricer

from .fakes.anthropic_server import COMPACTION, REPLY_TEXT, THINKING_TOKENS, FakeAnthropicServer, MessageUsage, serve
from .fakes.stack import InstrumentedStack, instrumented_stack, usd

pytestmark = pytest.mark.integration

API_KEY = "test-key"
MODEL = "claude-haiku-4-5"
SNAPSHOT = "claude-haiku-4-5-20251001"
SECRET = "The launch code is PINEAPPLE-42."
SYSTEM = "You are a careful analyst who answers in one sentence. " * 20
TABLES = "Reference table: region, quarter, revenue, margin. " * 20
DOCUMENT = "Quarterly revenue rose in every region except the north. " * 30
ORIGINAL_REQUEST = (SyncAPIClient.__dict__["request"], AsyncAPIClient.__dict__["request"])


def user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def text(value: str, ttl: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": value}
    if ttl is not None:
        block["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return block


def cached_prompt(question: str = "Which region fell?") -> dict[str, Any]:
    """A prompt with 1 h breakpoints on the system blocks and a 5 min one on the document."""
    return {"system": [text(SYSTEM, "1h"), text(TABLES, "1h")], "messages": user(text(DOCUMENT, "5m"), text(question))}


@dataclass
class Stack(InstrumentedStack):
    server: FakeAnthropicServer

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        options: dict[str, Any] = {"base_url": self.server.base_url, "api_key": API_KEY, "max_retries": 0, **kwargs}
        return anthropic.Anthropic(**options)

    def async_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def requests(self) -> list[tuple[str, str, int]]:
        return sorted((labels["status"], labels["cost_status"], n) for labels, n in self.recorder.snapshot().requests)

    def usage(self, index: int = -1) -> MessageUsage:
        usage = self.server.requests[index].usage
        assert usage is not None
        return usage


@pytest.fixture()
def server() -> Iterator[FakeAnthropicServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeAnthropicServer, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Our instrumentation into fresh pipelines (a sampler as the parameter, if any), undone after.

    Spans go through CostSpanProcessor, call-site metrics into its recorder; the built-in catalog prices.
    """
    sampler = getattr(request, "param", None)
    make = partial(Stack, server=server)
    with instrumented_stack(make, AnthropicInstrumentor(), sampler=sampler, price_spans=True) as s:
        yield s


# --- expected values, from the server's usage and the catalog ---------------------------------


def expected_cost(
    usage: MessageUsage, span: ReadableSpan, provider: str = "anthropic", model: str = SNAPSHOT
) -> Decimal:
    """The bill of *usage* by hand: Anthropic's exclusive counts times the catalog's per-token prices."""
    pricer: Pricer = default_pricer()
    match = pricer.match(provider, model)
    assert match is not None, model
    prices: Any = match.entry.prices_at(span.start_time)
    assert prices.request == 0 and prices.reasoning == prices.output  # Claude bills thinking as output
    extra_in, extra_out = usage.compaction or (0, 0)
    inclusive = usage.total_input_tokens + extra_in
    for tier in prices.tiers:  # past a threshold the whole request is billed at the tier's prices
        if inclusive > tier.above_input_tokens:
            prices = tier
    total = (
        (usage.input_tokens + extra_in) * prices.input
        + usage.cache_read_input_tokens * prices.cache_read
        + usage.cache_5m_input_tokens * prices.cache_write
        + usage.cache_1h_input_tokens * prices.cache_write_1h
        + (usage.output_tokens + extra_out) * prices.output
    )
    # the same bill through the public pricing API, from OpenTelemetry-semantics (inclusive) usage
    otel = Usage(
        input_tokens=inclusive,
        output_tokens=usage.output_tokens + extra_out,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_write_1h_tokens=usage.cache_1h_input_tokens,
        reasoning_tokens=usage.thinking_tokens,
    )
    assert pricer.price(provider, model, otel, at_ns=span.start_time).total_usd == total
    return total


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_priced(
    span: ReadableSpan, usage: MessageUsage, provider: str = "anthropic", model: str = SNAPSHOT
) -> Decimal:
    a = attrs(span)
    assert a["gen_ai.usage.input_tokens"] == usage.total_input_tokens + (usage.compaction or (0, 0))[0]
    assert a["gen_ai.usage.output_tokens"] == usage.output_tokens + (usage.compaction or (0, 0))[1]
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cache_read_input_tokens
    assert a.get("gen_ai.usage.cache_creation.input_tokens", 0) == usage.cache_creation_input_tokens
    assert a.get("llm.usage.cache_creation_1h.input_tokens", 0) == usage.cache_1h_input_tokens
    assert a.get("gen_ai.usage.reasoning.output_tokens", 0) == usage.thinking_tokens
    assert a["llm.cost.status"] == "priced"
    total = expected_cost(usage, span, provider, model)
    assert usd(a["llm.cost.total_usd"]) == total
    return total


def span_text(spans: list[ReadableSpan]) -> str:
    return json.dumps([{k: str(v) for k, v in attrs(s).items()} for s in spans] + [s.name for s in spans])


# --- tests -------------------------------------------------------------------------------------


def test_create_is_priced_with_cache_read_and_5m_and_1h_cache_writes(stack: Stack) -> None:
    with stack.client() as client:
        client.messages.create(model=MODEL, max_tokens=256, system=[text(SYSTEM, "1h")], messages=user(text("Hi")))
        result = client.messages.create(model=MODEL, max_tokens=256, **cached_prompt())
    usage = stack.usage()
    assert usage.cache_read_input_tokens and usage.cache_5m_input_tokens and usage.cache_1h_input_tokens
    assert result.usage.input_tokens == usage.input_tokens  # the app sees Anthropic's own numbers
    assert result.content[0].type == "text" and result.content[0].text == REPLY_TEXT

    warm, span = stack.spans()
    a = attrs(span)
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == MODEL and a["gen_ai.response.model"] == SNAPSHOT
    assert a["gen_ai.response.id"] == result.id and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["gen_ai.request.max_tokens"] == 256 and "gen_ai.request.stream" not in a
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == stack.server.port
    total = assert_priced(span, usage)
    assert a["llm.cost.pricing.provider"] == "anthropic" and a["llm.cost.pricing.model"] == SNAPSHOT
    # each component at its own rate: 5 min and 1 h writes differ, reads are cheaper than input
    p = default_pricer().match("anthropic", SNAPSHOT).entry.prices_at(span.start_time)
    assert p.cache_read < p.input < p.cache_write < p.cache_write_1h
    assert usd(a["llm.cost.input_usd"]) == usage.input_tokens * p.input
    assert usd(a["llm.cost.cache_read_usd"]) == usage.cache_read_input_tokens * p.cache_read
    writes = usage.cache_5m_input_tokens * p.cache_write + usage.cache_1h_input_tokens * p.cache_write_1h
    assert usd(a["llm.cost.cache_write_usd"]) == writes

    # counted once each at the call site; the processor saw the cost and did not count again
    warm_total = assert_priced(warm, stack.usage(0))
    assert stack.requests() == [("ok", "priced", 2)]
    assert stack.recorder.total_cost() == warm_total + total
    tokens: dict[str, int] = {}
    for labels, n in stack.recorder.snapshot().tokens:
        tokens[labels["token_type"]] = tokens.get(labels["token_type"], 0) + n
    both = [stack.usage(0), usage]
    assert tokens["input"] == sum(u.input_tokens for u in both)  # the metric's "input" is the uncached part
    assert tokens["cache_write"] == sum(u.cache_creation_input_tokens for u in both)
    assert tokens["cache_read"] == usage.cache_read_input_tokens
    data = stack.reader.get_metrics_data()
    metrics = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    points = [p for m in metrics if m.name == "llm.cost.usd" for p in m.data.data_points]
    assert sum(Decimal(repr(p.value)) for p in points) == warm_total + total


def test_create_stream_is_priced_from_message_start_and_message_delta(stack: Stack) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with stack.client() as client:
        stream = client.messages.create(model=MODEL, max_tokens=2048, stream=True, thinking=thinking, **cached_prompt())
        assert stack.spans() == []  # the span lasts as long as the stream
        events = list(stream)
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-1].type == "message_stop"
    usage = stack.usage()
    assert usage.thinking_tokens == THINKING_TOKENS and usage.cache_creation_input_tokens
    span = stack.only_span()
    a = attrs(span)
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["gen_ai.response.id"] == events[0].message.id
    assert_priced(span, usage)
    assert stack.requests() == [("ok", "priced", 1)]


@pytest.mark.parametrize("read", ["text_stream", "get_final_message", "iterate", "close_early"])
def test_messages_stream_helper_is_one_priced_call(stack: Stack, read: str) -> None:
    with stack.client() as client, client.messages.stream(model=MODEL, max_tokens=5, **cached_prompt()) as stream:
        if read == "text_stream":
            assert "".join(stream.text_stream) == " ".join(REPLY_TEXT.split()[:5])
        elif read == "get_final_message":
            final = stream.get_final_message()
            assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 5
        elif read == "iterate":
            assert sum(1 for _ in stream) > 5
        else:
            assert next(iter(stream.text_stream)) == "Hello"  # then leave the block: the SDK closes the stream
    assert len(stack.server.requests) == 1  # one request, one span, one cost
    usage = stack.usage()
    span = stack.only_span()
    a = attrs(span)
    if read != "close_early":
        assert a["gen_ai.response.finish_reasons"] == ("max_tokens",)
        assert_priced(span, usage)
        assert stack.requests() == [("ok", "priced", 1)]
        return
    # closed before message_delta: exact input from message_start, output estimated from the text read
    assert span.status.status_code is StatusCode.UNSET and a["llm.cost.status"] == "estimated"
    assert a["gen_ai.usage.input_tokens"] == usage.total_input_tokens
    estimated_output = count_tokens("Hello", MODEL)
    assert a["gen_ai.usage.output_tokens"] == estimated_output
    estimate = MessageUsage(**{**usage.__dict__, "output_tokens": estimated_output})
    assert usd(a["llm.cost.total_usd"]) == expected_cost(estimate, span)
    assert stack.requests() == [("ok", "estimated", 1)]


@pytest.mark.parametrize("mode", ["create", "create_stream", "stream_helper", "beta_create"])
def test_async_calls_are_priced(stack: Stack, mode: str) -> None:
    async def call() -> str | None:
        async with stack.async_client() as client:
            if mode == "create":
                return (await client.messages.create(model=MODEL, max_tokens=64, **cached_prompt())).id
            if mode == "beta_create":
                return (await client.beta.messages.create(model=MODEL, max_tokens=64, **cached_prompt())).id
            if mode == "create_stream":
                stream = await client.messages.create(model=MODEL, max_tokens=64, stream=True, **cached_prompt())
                events = [e async for e in stream]
                return events[0].message.id
            async with client.messages.stream(model=MODEL, max_tokens=64, **cached_prompt()) as helper:
                return (await helper.get_final_message()).id

    response_id = asyncio.run(call())
    span = stack.only_span()
    assert attrs(span)["gen_ai.response.id"] == response_id
    assert_priced(span, stack.usage())
    assert stack.requests() == [("ok", "priced", 1)]


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")
def test_long_context_tier_counts_cached_tokens_toward_the_threshold(stack: Stack) -> None:
    # ~191k tokens of document, cached by the first call (below 200k in all) and read by the second,
    # whose new question brings it past 200k: Anthropic reports as input_tokens only the question,
    # but the tier is decided by the inclusive count, so the whole second request is at the tier.
    book = "The ledger lists every shipment, its weight and its port of call. " * 8_700
    prompt = {"model": "claude-sonnet-4-5", "max_tokens": 64}
    with stack.client() as client:
        client.messages.create(**prompt, messages=user(text(book, "5m"), text("Summarise it.")))
        client.messages.create(**prompt, messages=user(text(book, "5m"), text("Who shipped most? " * 2_000)))
    first, second = stack.usage(0), stack.usage(1)
    assert first.total_input_tokens < 200_000 < second.total_input_tokens
    assert second.input_tokens < 200_000 and second.cache_read_input_tokens == first.cache_5m_input_tokens
    below, above = stack.spans()
    prices = default_pricer().match("anthropic", "claude-sonnet-4-5").entry.prices_at(below.start_time)
    (tier,) = prices.tiers
    assert tier.above_input_tokens == 200_000 and tier.input > prices.input and tier.output > prices.output
    assert_priced(below, first, model="claude-sonnet-4-5-20250929")
    assert usd(attrs(below)["llm.cost.cache_write_usd"]) == first.cache_5m_input_tokens * prices.cache_write
    assert_priced(above, second, model="claude-sonnet-4-5-20250929")
    a = attrs(above)
    assert usd(a["llm.cost.input_usd"]) == second.input_tokens * tier.input
    assert usd(a["llm.cost.cache_read_usd"]) == second.cache_read_input_tokens * tier.cache_read
    assert usd(a["llm.cost.output_usd"]) == second.output_tokens * tier.output


@pytest.mark.parametrize(
    ("scenario", "exc_type", "status"),
    [
        ("rate-limited", anthropic.RateLimitError, 429),
        ("server-error", anthropic.InternalServerError, 500),
        ("overloaded", anthropic.OverloadedError, 529),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_api_errors_propagate_unchanged_and_are_counted(
    stack: Stack, scenario: str, exc_type: type[anthropic.APIStatusError], status: int, stream: bool
) -> None:
    headers = {"x-fake-scenario": scenario}
    with stack.client() as client, pytest.raises(exc_type) as raised:
        client.messages.create(model=MODEL, max_tokens=64, stream=stream, extra_headers=headers, **cached_prompt())
    assert type(raised.value) is exc_type and raised.value.status_code == status
    assert raised.value.body["error"]["type"] in ("rate_limit_error", "api_error", "overloaded_error")
    span = stack.only_span()
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == f"anthropic.{exc_type.__name__}"
    assert a["llm.cost.status"] == "no_usage" and not any(k.endswith("_usd") for k in a)
    assert stack.requests() == [("error", "no_usage", 1)]


def test_malformed_body_and_missing_usage(stack: Stack) -> None:
    with stack.client() as client:
        with pytest.raises(json.JSONDecodeError):
            client.messages.create(
                model=MODEL, max_tokens=64, messages=user(text("Hi")), extra_headers={"x-fake-scenario": "malformed"}
            )
        result = client.messages.create(
            model=MODEL, max_tokens=64, messages=user(text("Hi")), extra_headers={"x-fake-scenario": "no-usage"}
        )
    assert result.content[0].text == REPLY_TEXT
    broken, bare = stack.spans()
    assert broken.status.status_code is StatusCode.ERROR and attrs(broken)["error.type"] == "json.JSONDecodeError"
    assert bare.status.status_code is StatusCode.UNSET and attrs(bare)["llm.cost.status"] == "no_usage"
    assert attrs(bare)["gen_ai.response.model"] == SNAPSHOT
    assert stack.requests() == [("error", "no_usage", 1), ("ok", "no_usage", 1)]


def test_retried_call_is_one_span_and_one_cost(stack: Stack) -> None:
    with stack.client(max_retries=2) as client:
        client.messages.create(
            model=MODEL, max_tokens=64, extra_headers={"x-fake-scenario": "overloaded-once"}, **cached_prompt()
        )
    assert len(stack.server.requests) == 2  # a 529, then the answer
    assert_priced(stack.only_span(), stack.usage())
    assert stack.requests() == [("ok", "priced", 1)]


def _read_cut_stream(stack: Stack, how: str, scenario: str) -> BaseException:
    headers = {"x-fake-scenario": scenario}
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "extra_headers": headers, **cached_prompt()}
    try:
        if how == "async":

            async def read() -> None:
                async with stack.async_client() as client:
                    async for _ in await client.messages.create(stream=True, **kwargs):
                        pass

            asyncio.run(read())
        elif how == "create":
            with stack.client() as client:
                for _ in client.messages.create(stream=True, **kwargs):
                    pass
        else:
            with stack.client() as client, client.messages.stream(**kwargs) as stream:
                stream.get_final_message()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    raise AssertionError("the cut-off stream did not raise")


@pytest.mark.parametrize("how", ["create", "stream_helper", "async"])
def test_stream_cut_off_midway_ends_with_error_and_estimated_cost(stack: Stack, how: str) -> None:
    exc = _read_cut_stream(stack, how, "cut-after-5")  # message_start, block start, ping, two words
    stack.instrumentor.uninstrument()
    assert type(exc) is type(_read_cut_stream(stack, how, "cut-after-5"))  # what the bare SDK raises
    assert isinstance(exc, httpx2.RemoteProtocolError)
    span = stack.only_span()
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "httpx2.RemoteProtocolError"
    assert a["llm.cost.status"] == "estimated"
    usage = stack.server.requests[0].usage
    assert usage is not None
    estimate = MessageUsage(**{**usage.__dict__, "output_tokens": count_tokens("Hello from", MODEL)})
    assert a["gen_ai.usage.input_tokens"] == usage.total_input_tokens  # exact, from message_start
    assert a["gen_ai.usage.output_tokens"] == estimate.output_tokens
    assert usd(a["llm.cost.total_usd"]) == expected_cost(estimate, span)
    assert stack.requests() == [("error", "estimated", 1)]


def test_stream_cut_before_any_event_has_no_usage(stack: Stack) -> None:
    assert isinstance(_read_cut_stream(stack, "create", "cut-after-0"), httpx2.RemoteProtocolError)
    a = attrs(stack.only_span())
    assert a["llm.cost.status"] == "no_usage" and a["error.type"] == "httpx2.RemoteProtocolError"
    assert stack.requests() == [("error", "no_usage", 1)]


def test_no_content_and_no_api_key_reach_spans_metrics_or_logs(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_llmcost")
    prompt = {"system": SECRET, "messages": user(text(SECRET))}
    with stack.client() as client:
        client.messages.create(model=MODEL, max_tokens=64, **prompt)
        list(client.messages.create(model=MODEL, max_tokens=64, stream=True, **prompt))
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(
                model=MODEL, max_tokens=64, extra_headers={"x-fake-scenario": "rate-limited"}, **prompt
            )
    for request in stack.server.requests:  # the key was really sent (this SDK version as a bearer token)
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert API_KEY in (headers.get("x-api-key") or headers.get("authorization") or "")
    spans = stack.spans()
    assert len(spans) == 3
    dumped = span_text(spans)
    assert "gen_ai.input.messages" not in dumped and "gen_ai.output.messages" not in dumped
    for secret in (API_KEY, "PINEAPPLE", "fake Anthropic server", "x-api-key", "Bearer"):
        assert secret not in dumped
        assert secret not in repr(stack.recorder.snapshot())
        assert not any(secret in r.getMessage() for r in caplog.records if r.name.startswith("otel_llmcost"))


def test_uninstrument_restores_and_existing_clients_follow(stack: Stack) -> None:
    with stack.client() as client:
        client.messages.create(model=MODEL, max_tokens=64, messages=user(text("one")))  # resources built now
        stack.instrumentor.uninstrument()
        assert (SyncAPIClient.__dict__["request"], AsyncAPIClient.__dict__["request"]) == ORIGINAL_REQUEST
        assert not isinstance(SyncAPIClient.__dict__["request"], wrapt.ObjectProxy)
        client.messages.create(model=MODEL, max_tokens=64, messages=user(text("two")))
        assert len(stack.spans()) == 1
        stack.instrumentor.instrument(tracer_provider=stack.provider)  # the same client is traced again
        client.messages.create(model=MODEL, max_tokens=64, messages=user(text("three")))
    assert len(stack.spans()) == 2 and stack.requests() == [("ok", "priced", 2)]


def test_sdk_own_spans_in_the_same_provider_are_not_counted_twice(stack: Stack) -> None:
    with stack.client(open_telemetry={"tracer_provider": stack.provider}) as client:
        client.messages.create(model=MODEL, max_tokens=64, **cached_prompt())
        list(client.messages.create(model=MODEL, max_tokens=64, stream=True, **cached_prompt()))
    spans = stack.spans()
    ours = [s for s in spans if "llm.cost.status" in attrs(s)]
    theirs = [
        s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "com.anthropic.sdk.python"
    ]
    assert len(ours) == 2 and len(theirs) == 2 and len(spans) == 4
    for sdk_span in theirs:  # a GenAI span with usage, inside ours: passed on unpriced and uncounted
        assert attrs(sdk_span)["gen_ai.operation.name"] == "chat" and "gen_ai.usage.output_tokens" in attrs(sdk_span)
        assert sdk_span.parent is not None and sdk_span.parent.span_id in {s.context.span_id for s in ours}
    totals = [
        assert_priced(span, request.usage)
        for span, request in zip(ours, stack.server.requests, strict=True)
        if request.usage
    ]
    assert stack.requests() == [("ok", "priced", 2)] and stack.recorder.total_cost() == sum(totals)


def test_vertex_and_bedrock_clients_are_priced_as_their_platforms(stack: Stack) -> None:
    base = stack.server.base_url
    with anthropic.AnthropicVertex(
        region="us-east5", project_id="proj", access_token="vertex-token", base_url=base + "/v1", max_retries=0
    ) as vertex:
        list(vertex.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=64, stream=True, **cached_prompt()))
    with anthropic.AnthropicBedrock(
        aws_access_key="AKIAFAKE", aws_secret_key="bedrock-secret", aws_region="us-east-1", base_url=base, max_retries=0
    ) as bedrock:
        bedrock.messages.create(model="anthropic.claude-sonnet-4-5-20250929-v1:0", max_tokens=64, **cached_prompt())
    assert stack.server.requests[1].headers["Authorization"].startswith("AWS4-HMAC-SHA256")
    on_vertex, on_bedrock = stack.spans()
    a = attrs(on_vertex)
    assert a["gen_ai.provider.name"] == "gcp.vertex_ai" and a["llm.cost.pricing.provider"] == "vertex"
    assert_priced(on_vertex, stack.usage(0), "gcp.vertex_ai", "claude-sonnet-4-5@20250929")
    b = attrs(on_bedrock)
    assert b["gen_ai.provider.name"] == "aws.bedrock" and b["llm.cost.pricing.provider"] == "bedrock"
    assert b["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"  # Anthropic's name, kept on the span
    assert b["llm.cost.pricing.model"] == "anthropic.claude-sonnet-4-5-20250929-v1:0"  # Bedrock's, priced
    assert_priced(on_bedrock, stack.usage(1), "aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert "vertex-token" not in span_text([on_vertex]) and "bedrock-secret" not in span_text([on_bedrock])


@pytest.mark.parametrize("stream", [False, True])
def test_beta_compaction_iterations_are_added_to_the_bill(stack: Stack, stream: bool) -> None:
    headers = {"x-fake-scenario": "compaction"}
    with stack.client() as client:
        if stream:
            with client.beta.messages.stream(model=MODEL, max_tokens=64, extra_headers=headers, **cached_prompt()) as s:
                s.until_done()
        else:
            client.beta.messages.create(model=MODEL, max_tokens=64, extra_headers=headers, **cached_prompt())
    usage = stack.usage()
    assert usage.compaction == COMPACTION
    assert_priced(stack.only_span(), usage)


@pytest.mark.parametrize("stack", [ALWAYS_OFF], indirect=True)
def test_sampled_out_calls_are_still_counted(stack: Stack) -> None:
    with stack.client() as client:
        client.messages.create(model=MODEL, max_tokens=64, **cached_prompt())
    assert stack.spans() == [] and stack.requests() == [("ok", "priced", 1)]
    assert stack.recorder.total_cost() > 0


def test_raw_responses(stack: Stack) -> None:
    with stack.client() as client:
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, **cached_prompt())
        assert raw.parse().usage.output_tokens == stack.usage().output_tokens
        with client.messages.with_streaming_response.create(
            model=MODEL, max_tokens=64, stream=True, **cached_prompt()
        ) as r:
            assert b"message_delta" in b"".join(r.iter_bytes())
    priced, streamed = stack.spans()
    assert_priced(priced, stack.usage(0))
    # the events of a raw streamed body are read by the application, not by us: no usage, never a guess
    assert attrs(streamed)["llm.cost.status"] == "no_usage" and attrs(streamed)["gen_ai.request.stream"] is True
    assert stack.requests() == [("ok", "no_usage", 1), ("ok", "priced", 1)]


def test_stream_without_message_start_is_estimated_from_prompt_and_text(stack: Stack) -> None:
    # Not something the API sends; a stream whose first events were lost still gets an estimate.
    from opentelemetry.trace import get_tracer

    from otel_llmcost.instrumentation.anthropic import _MessagesCall, _StreamAccumulator

    call = _MessagesCall(
        get_tracer("t", tracer_provider=stack.provider), provider="anthropic", operation="chat", request_model=MODEL
    )
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": [text("forty-two")]}
    call.body = {"system": "Be brief.", "messages": [{"role": "user", "content": [text("What is it?"), tool_result]}]}
    accumulator = _StreamAccumulator(call)
    delta = SimpleNamespace(
        type="content_block_delta", index=0, delta=SimpleNamespace(type="text_delta", text="It is 42.")
    )
    accumulator.feed(delta)
    outcome = accumulator.outcome()
    assert outcome.estimated and outcome.usage is not None
    assert outcome.usage.input_tokens == sum(count_tokens(t, MODEL) for t in ("Be brief.", "What is it?", "forty-two"))
    assert outcome.usage.output_tokens == count_tokens("It is 42.", MODEL)
    call.finish(outcome)
    assert attrs(stack.only_span())["llm.cost.status"] == "estimated"
