"""One call, one cost: another instrumentation's span of a call ours traced is marked ``llm.cost.covered_by``.

The real ``anthropic`` SDK has its own tracing, on by default: every ``messages.create`` makes a span
``anthropic.messages.create`` with the call's usage, inside ours. The real clients talk to the
fake servers of :mod:`tests.fakes` (or a mock transport for routes the fake lacks); the spans go
through :class:`CostSpanProcessor` in process, or unpriced through the real OTLP exporter to the
real ``otel-llmcost collector``, or through :func:`~otel_llmcost.collector.enrich.enrich` on the
protobufs the exporter sends. Expected costs come from the usage the server answered with and the
built-in catalog, never hard-coded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from opentelemetry import context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NoOpTracerProvider

from otel_llmcost import semconv as sc
from otel_llmcost._state import IN_LLM_CALL, CoveredSpanStamp, ensure_covered_stamp
from otel_llmcost.calls import extract_call
from otel_llmcost.collector.enrich import enrich
from otel_llmcost.instrumentation._base import SCOPE
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer, Usage, default_pricer
from otel_llmcost.processor import CostSpanProcessor

from .fakes.anthropic_server import FakeAnthropicServer, MessageUsage, response_model, serve
from .fakes.openai_server import FakeOpenAIServer, chat_usage
from .fakes.openai_server import response_model as openai_response_model
from .fakes.openai_server import serve as serve_openai
from .fakes.stack import InstrumentedStack, instrumented_stack, usd
from .test_collector_e2e import CollectorProcess, Downstream, free_port, wait_for

pytestmark = pytest.mark.integration

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Which region fell last quarter?"}]
SDK_SCOPE = "com.anthropic.sdk.python"


@pytest.fixture()
def server() -> Iterator[FakeAnthropicServer]:
    with serve() as s:
        yield s


def client(server: FakeAnthropicServer, provider: TracerProvider) -> anthropic.Anthropic:
    """The real client with its own tracing on, into *provider* (as it would into the global one)."""
    return anthropic.Anthropic(
        base_url=server.base_url, api_key="test-key", max_retries=0, open_telemetry={"tracer_provider": provider}
    )


def as_usage(u: MessageUsage | None) -> Usage:
    assert u is not None
    return Usage(
        u.total_input_tokens,
        u.output_tokens,
        cache_read_tokens=u.cache_read_input_tokens,
        cache_write_tokens=u.cache_creation_input_tokens,
        cache_write_1h_tokens=u.cache_1h_input_tokens,
        reasoning_tokens=u.thinking_tokens,
    )


def expected_cost(pricer: Pricer, server: FakeAnthropicServer) -> Decimal:
    """The catalog price of the server's last answer."""
    cost = pricer.price("anthropic", response_model(MODEL), as_usage(server.requests[-1].usage)).total_usd
    assert cost is not None and cost > 0
    return cost


def split(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """Our one span, and the others."""
    (ours,) = [s for s in spans if s.instrumentation_scope is not None and s.instrumentation_scope.name == SCOPE]
    return ours, [s for s in spans if s is not ours]


def cost_keys(span: ReadableSpan) -> list[str]:
    return sorted(k for k in (span.attributes or {}) if k.startswith("llm.cost."))


def hex_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def stamps(provider: TracerProvider) -> list[Any]:
    return [p for p in provider._active_span_processor._span_processors if isinstance(p, CoveredSpanStamp)]


def test_in_process_the_sdk_span_is_marked_and_the_call_priced_once(server: FakeAnthropicServer) -> None:
    with instrumented_stack(InstrumentedStack, AnthropicInstrumentor(), price_spans=True) as stack:
        client(server, stack.provider).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        assert not stamps(stack.provider)  # the CostSpanProcessor marks covered spans itself
        points = stack.metrics()
    expected = expected_cost(stack.pricer, server)
    ours, others = split(stack.spans())
    (sdk,) = others
    assert sdk.name == "anthropic.messages.create" and sdk.instrumentation_scope.name == SDK_SCOPE  # type: ignore[union-attr]
    assert sdk.parent is not None and sdk.parent.span_id == ours.context.span_id  # inside our call
    sdk_attrs = sdk.attributes or {}
    # it reports the call's usage: without the mark the processor would have priced it too
    assert sdk_attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == server.requests[-1].usage.output_tokens  # type: ignore[union-attr]
    assert sdk_attrs[sc.LLM_COST_COVERED_BY] == hex_id(ours)
    assert cost_keys(sdk) == [sc.LLM_COST_COVERED_BY]  # passed on unpriced
    assert usd((ours.attributes or {})[sc.LLM_COST_TOTAL_USD]) == expected
    assert stack.recorder.total_cost() == expected
    assert [n for _, n in stack.recorder.snapshot().requests] == [1]
    assert [p.value for p in points[sc.METRIC_LLM_REQUESTS]] == [1]
    assert sum(usd(p.value) for p in points[sc.METRIC_LLM_COST_USD]) == expected


def test_without_the_processor_the_collector_skips_the_marked_span(server: FakeAnthropicServer) -> None:
    # Our instrumentation alone (e.g. opentelemetry-instrument exporting to a collector): the
    # provider gets a span processor that only marks covered spans.
    with instrumented_stack(InstrumentedStack, AnthropicInstrumentor(), price_spans=False) as stack:
        assert len(stamps(stack.provider)) == 1
        client(server, stack.provider).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        spans = stack.spans()
    expected = expected_cost(stack.pricer, server)
    ours, (sdk,) = split(spans)
    assert (sdk.attributes or {})[sc.LLM_COST_COVERED_BY] == hex_id(ours) and cost_keys(sdk) == [sc.LLM_COST_COVERED_BY]
    collector = Recorder()
    request = encode_spans(spans)
    stats = enrich(request, stack.pricer, collector)
    assert (stats.llm, stats.already_priced, stats.covered) == (0, 1, 1)
    assert collector.total_cost() == 0 and not collector.snapshot().requests
    assert stack.recorder.total_cost() == expected  # the one cost: our call's, counted where it ran
    forwarded = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sum(1 for s in forwarded for kv in s.attributes if kv.key == sc.LLM_COST_TOTAL_USD) == 1

    # the control: the same SDK span without the mark is priced by the collector (the double count)
    unmarked = encode_spans(spans)
    for rs in unmarked.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                kept = [kv for kv in s.attributes if kv.key != sc.LLM_COST_COVERED_BY]
                del s.attributes[:]
                s.attributes.extend(kept)
    again = Recorder()
    assert enrich(unmarked, stack.pricer, again).llm == 1
    assert again.total_cost() == expected


def test_the_real_collector_counts_one_call_and_one_cost(server: FakeAnthropicServer, tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    down, down_port = Downstream(), free_port()
    down.start(down_port)
    collector = CollectorProcess(tmp_path, down_port, None)
    try:
        with instrumented_stack(InstrumentedStack, AnthropicInstrumentor(), price_spans=False) as stack:
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, timeout=30)
            stack.provider.add_span_processor(SimpleSpanProcessor(exporter))
            client(server, stack.provider).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        expected = expected_cost(stack.pricer, server)
        wait_for(lambda: len(down.spans) == 2, 30)
        assert sum(down.costs().values()) == expected  # one span carries the cost: ours
        (sdk,) = [s for s in down.spans if s.name == "anthropic.messages.create"]
        assert not any(kv.key == sc.LLM_COST_TOTAL_USD for kv in sdk.attributes)
        text = collector.metrics()

        def outcome(name: str) -> float:
            found = re.search(rf'^llm_collector_spans_total\{{[^}}]*outcome="{name}"[^}}]*\}} (\S+)$', text, re.M)
            assert found, name
            return float(found.group(1))

        assert (outcome("covered"), outcome("already_priced"), outcome("llm"), outcome("priced")) == (1, 1, 0, 0)
        assert not re.search(r"^llm_requests_total\{", text, re.M)  # no call counted at the collector
        assert stack.recorder.total_cost() == expected  # the call, counted once, in the process
    finally:
        collector.stop()
        down.stop()


def test_an_official_openai_span_outside_ours_is_marked() -> None:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OfficialInstrumentor

    official = OfficialInstrumentor()
    with (
        serve_openai() as fake,
        instrumented_stack(InstrumentedStack, OpenAIInstrumentor(), price_spans=False) as stack,
    ):
        official.instrument(tracer_provider=stack.provider)  # instrumented after ours: it wraps ours
        try:
            with openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as oai:
                oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
        finally:
            official.uninstrument()
        spans = stack.spans()
    expected = openai_expected(stack.pricer, fake)
    ours, (theirs,) = split(spans)
    assert ours.parent is not None and ours.parent.span_id == theirs.context.span_id  # theirs is outside
    assert (theirs.attributes or {})[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert (theirs.attributes or {})[sc.LLM_COST_COVERED_BY] == hex_id(ours)
    stats = enrich(encode_spans(spans), stack.pricer, collector := Recorder())
    assert (stats.llm, stats.already_priced, stats.covered) == (0, 1, 1) and collector.total_cost() == 0
    assert stack.recorder.total_cost() == expected and [n for _, n in stack.recorder.snapshot().requests] == [1]

    # in process, with the processor: theirs is passed on unpriced and uncounted
    recorder = Recorder()
    processor = CostSpanProcessor(pricer=stack.pricer, recorder=recorder)
    for span in spans:
        processor.on_end(span)
    assert not recorder.snapshot().requests


def openai_expected(pricer: Pricer, fake: FakeOpenAIServer) -> Decimal:
    u = chat_usage(fake.requests[-1].body)
    usage = Usage(
        u.prompt_tokens, u.completion_tokens, cache_read_tokens=u.cached_tokens, reasoning_tokens=u.reasoning_tokens
    )
    cost = pricer.price("openai", openai_response_model("gpt-4o-mini"), usage).total_usd
    assert cost is not None and cost > 0
    return cost


def _token_counting_transport(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/messages/count_tokens"):
        return httpx2.Response(200, json={"input_tokens": 1234})
    if request.url.path.endswith("/models"):
        model = {"type": "model", "id": response_model(MODEL), "display_name": "Claude Haiku 4.5"}
        return httpx2.Response(
            200,
            json={"data": [{**model, "created_at": "2025-10-01T00:00:00Z"}], "has_more": False,
                  "first_id": model["id"], "last_id": model["id"]},
        )  # fmt: skip
    return httpx2.Response(404, json={"type": "error", "error": {"type": "not_found_error", "message": "no"}})


def test_sdk_spans_of_counting_tokens_and_listing_models_are_not_calls() -> None:
    with instrumented_stack(InstrumentedStack, AnthropicInstrumentor(), price_spans=True) as stack:
        sdk = anthropic.Anthropic(
            base_url="http://anthropic.invalid",
            api_key="test-key",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(_token_counting_transport)),
            open_telemetry={"tracer_provider": stack.provider},
        )
        assert sdk.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens == 1234  # type: ignore[arg-type]
        assert [m.id for m in sdk.models.list()] == [response_model(MODEL)]
        spans = stack.spans()
    assert sorted(s.name for s in spans) == ["anthropic.messages.count_tokens", "anthropic.models.list"]
    for span in spans:
        attrs = span.attributes or {}
        assert attrs[sc.GEN_AI_PROVIDER_NAME] == "anthropic"  # what used to make them calls
        assert extract_call(attrs) is None and not cost_keys(span)
    assert not stack.recorder.snapshot().requests
    stats = enrich(encode_spans(spans), stack.pricer, collector := Recorder())
    assert stats.llm == 0 and not collector.snapshot().requests


def test_what_counts_as_a_call_without_usage() -> None:
    base = {sc.GEN_AI_PROVIDER_NAME: "anthropic", sc.GEN_AI_REQUEST_MODEL: MODEL}
    assert extract_call(base) is None  # names a provider and a model, but did nothing we can tell
    failed = extract_call({**base, sc.ERROR_TYPE: "anthropic.RateLimitError"})
    assert failed is not None and failed.usage is None and failed.error_type == "anthropic.RateLimitError"
    stream = extract_call({**base, sc.GEN_AI_OPERATION_NAME: "chat", "gen_ai.request.stream": True})
    assert stream is not None and stream.usage is None and stream.operation == "chat"
    legacy = extract_call({sc.VARIANT_LLM_SYSTEM: "openai", sc.VARIANT_LLM_REQUEST_TYPE: "chat"})
    assert legacy is not None and legacy.operation == "chat"
    assert extract_call({sc.GEN_AI_OPERATION_NAME: "chat", sc.ERROR_TYPE: "timeout"}) is None  # no provider, no model
    with_usage = extract_call({**base, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5})
    assert with_usage is not None and with_usage.usage == Usage(0, 5)


def test_the_mark_is_added_once_and_only_where_it_is_needed() -> None:
    plain, priced = TracerProvider(), TracerProvider()
    priced.add_span_processor(CostSpanProcessor())
    for _ in range(2):
        ensure_covered_stamp(plain)
        ensure_covered_stamp(priced)
        ensure_covered_stamp(NoOpTracerProvider())  # not an SDK provider: left alone
    assert len(stamps(plain)) == 1 and not stamps(priced)
    plain.shutdown()
    priced.shutdown()


def test_spans_inside_our_call_are_marked_but_only_genai_ones_are_covered_at_the_collector() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ensure_covered_stamp(provider)
    tracer = provider.get_tracer("test")
    outer = tracer.start_span("chat m", attributes={sc.GEN_AI_OPERATION_NAME: "chat"})
    outside = tracer.start_span("unrelated")  # no call of ours in its context: unmarked
    token = context.attach(context.set_value(IN_LLM_CALL, outer))
    try:
        http = tracer.start_span("POST", attributes={"http.request.method": "POST"})
        genai = tracer.start_span(
            "chat other",
            attributes={
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 3,
            },
        )
    finally:
        context.detach(token)
    for span in (genai, http, outside, outer):
        span.end()
    finished = {s.name: s for s in exporter.get_finished_spans()}
    marks = {name: (s.attributes or {}).get(sc.LLM_COST_COVERED_BY) for name, s in finished.items()}
    assert marks == {
        "chat other": hex_id(finished["chat m"]),
        "POST": hex_id(finished["chat m"]),
        "unrelated": None,
        "chat m": None,
    }
    stats = enrich(encode_spans(list(finished.values())), default_pricer(), Recorder())
    assert stats.covered == 1  # the HTTP span's mark alone does not make it an LLM span
    provider.shutdown()
