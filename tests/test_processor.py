"""CostSpanProcessor: prices spans from any instrumentation, stamps context, never double counts."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_llmcost
from otel_llmcost.processor import CostSpanProcessor

from .conftest import Pipeline

CHAT = {
    "gen_ai.provider.name": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 500,
}


def emit(p: Pipeline, attrs: dict, name: str = "chat gpt-4o", error: bool = False) -> ReadableSpan:  # type: ignore[type-arg]
    span = p.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
    if error:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    return p.spans()[-1]


def test_priced_span_carries_cost_attributes(pipeline: Pipeline) -> None:
    out = emit(pipeline, CHAT)
    a = out.attributes or {}
    assert a["llm.cost.status"] == "priced"
    assert a["llm.cost.total_usd"] == pytest.approx(0.0075, abs=0)
    assert a["llm.cost.input_usd"] == 0.0025 and a["llm.cost.output_usd"] == 0.005
    assert a["llm.cost.cache_read_usd"] == 0.0 and a["llm.cost.request_usd"] == 0.0
    assert a["llm.cost.pricing.model"] == "gpt-4o" and a["llm.cost.pricing.provider"] == "openai"
    assert a["llm.cost.pricing.version"].startswith("2026.")
    # the original attributes, span identity and timing are kept
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert out.name == "chat gpt-4o" and out.kind is SpanKind.CLIENT
    assert out.end_time is not None and out.start_time is not None


def test_unknown_model_gets_status_and_no_amounts(pipeline: Pipeline) -> None:
    out = emit(pipeline, {**CHAT, "gen_ai.request.model": "gpt-nope"})
    a = out.attributes or {}
    assert a["llm.cost.status"] == "unpriced"
    assert "gpt-nope" in a["llm.cost.reason"]
    assert not any(k.endswith("_usd") for k in a)
    points = pipeline.metrics()["llm.requests"]
    assert [p.attributes["cost_status"] for p in points] == ["unpriced"]
    assert "llm.cost.usd" not in pipeline.metrics()


def test_non_genai_span_passes_through_untouched(pipeline: Pipeline) -> None:
    out = emit(pipeline, {"http.request.method": "GET"}, name="GET /")
    assert dict(out.attributes or {}) == {"http.request.method": "GET"}
    assert pipeline.metrics() == {}


def test_already_priced_span_is_not_priced_or_counted_again(pipeline: Pipeline) -> None:
    out = emit(pipeline, {**CHAT, "llm.cost.status": "priced", "llm.cost.total_usd": 1.0})
    assert (out.attributes or {})["llm.cost.total_usd"] == 1.0
    assert pipeline.metrics() == {}


@pytest.mark.parametrize(
    ("tokens", "reason"),
    [(-5, "negative_tokens"), (2 * 10**9, "absurd_tokens"), ("many", "non_numeric_tokens")],
)
def test_bad_token_counts_not_priced_reason_counted(pipeline: Pipeline, tokens: object, reason: str) -> None:
    out = emit(pipeline, {**CHAT, "gen_ai.usage.input_tokens": tokens})
    a = out.attributes or {}
    assert a["llm.cost.status"] == "invalid_usage"
    assert "llm.cost.total_usd" not in a
    skipped = pipeline.metrics()["llm.cost.spans_skipped"]
    assert [(p.attributes["reason"], p.value) for p in skipped] == [(reason, 1)]


def test_missing_usage_and_errors(pipeline: Pipeline) -> None:
    out = emit(pipeline, {k: v for k, v in CHAT.items() if "usage" not in k} | {"error.type": "429"}, error=True)
    assert (out.attributes or {})["llm.cost.status"] == "no_usage"
    (point,) = pipeline.metrics()["llm.requests"]
    assert point.attributes["status"] == "error" and point.attributes["cost_status"] == "no_usage"
    assert point.attributes["model"] == "gpt-4o"  # the catalog id, the same series as priced calls
    (duration,) = pipeline.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "429"


def test_context_is_stamped_and_becomes_dimensions(pipeline: Pipeline) -> None:
    with (
        otel_llmcost.session("s-1", name="support-chat", path="/triage"),
        otel_llmcost.user("u-7"),
        otel_llmcost.properties(feature="search", environment="prod"),
    ):
        out = emit(pipeline, CHAT)
    a = out.attributes or {}
    assert a["session.id"] == "s-1" and a["llm.session.name"] == "support-chat" and a["llm.session.path"] == "/triage"
    assert a["user.id"] == "u-7"
    assert a["llm.property.feature"] == "search" and a["llm.property.environment"] == "prod"
    (point,) = pipeline.metrics()["llm.cost.usd"]
    assert point.attributes == {
        "provider": "openai",
        "model": "gpt-4o",
        "operation": "chat",
        "feature": "search",
        "environment": "prod",
    }
    assert "u-7" not in str(pipeline.metrics()) and "s-1" not in str(pipeline.metrics())


def test_span_attributes_set_by_instrumentation_win_over_baggage(pipeline: Pipeline) -> None:
    with otel_llmcost.session("from-baggage"):
        out = emit(pipeline, {**CHAT, "session.id": "from-span"})
    assert (out.attributes or {})["session.id"] == "from-span"


def test_context_reaches_spans_across_asyncio_tasks_and_stays_per_thread(pipeline: Pipeline) -> None:
    async def call(n: int) -> None:
        with otel_llmcost.session(f"task-{n}"):
            await asyncio.sleep(0)
            emit(pipeline, CHAT)

    async def main() -> None:
        await asyncio.gather(*(call(n) for n in range(5)))

    asyncio.run(main())
    seen = sorted((s.attributes or {})["session.id"] for s in pipeline.spans())
    assert seen == [f"task-{n}" for n in range(5)]

    results: dict[int, str | None] = {}

    def worker(n: int) -> None:
        with otel_llmcost.user(f"user-{n}"):
            results[n] = (emit(pipeline, CHAT).attributes or {}).get("user.id")  # type: ignore[assignment]

    with otel_llmcost.user("main-thread"):
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {n: f"user-{n}" for n in range(4)}


def test_baggage_from_an_upstream_service_is_stamped(pipeline: Pipeline) -> None:
    # What a W3C baggage header becomes after extraction in the downstream service.
    ctx = baggage.set_baggage("session.id", "remote-session")
    ctx = baggage.set_baggage("llm.property.feature", "checkout", ctx)
    ctx = baggage.set_baggage("unrelated", "x", ctx)
    token = context.attach(ctx)
    try:
        out = emit(pipeline, CHAT)
    finally:
        context.detach(token)
    a = out.attributes or {}
    assert a["session.id"] == "remote-session" and a["llm.property.feature"] == "checkout"
    assert "unrelated" not in a


def test_processor_never_raises_into_the_application(pricer) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        def price(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("boom")

        catalog = pricer.catalog

    p = Pipeline(pricer)
    p.processor._pricer = Broken()  # type: ignore[assignment]
    out = emit(p, CHAT)
    # the span still reaches the inner processor, unpriced, and the failure is counted
    assert "llm.cost.status" not in (out.attributes or {})
    skipped = p.metrics()["llm.cost.spans_skipped"]
    assert [(s.attributes["reason"], s.value) for s in skipped] == [("internal_error", 1)]
    p.close()


def test_inner_processor_lifecycle_is_forwarded() -> None:
    calls: list[str] = []

    class Inner(SpanProcessor):
        def on_start(self, span, parent_context=None):  # type: ignore[no-untyped-def]
            calls.append("start")

        def on_end(self, span):  # type: ignore[no-untyped-def]
            calls.append("end")

        def shutdown(self) -> None:
            calls.append("shutdown")

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            calls.append("flush")
            return True

    proc = CostSpanProcessor(Inner())
    assert proc.force_flush()
    proc.shutdown()
    assert calls == ["flush", "shutdown"]


def test_sums_over_many_spans_match_exact_decimal(pipeline: Pipeline) -> None:
    expected = Decimal(0)
    for i in range(2000):
        out = emit(pipeline, {**CHAT, "gen_ai.usage.input_tokens": 1000 + i, "gen_ai.usage.output_tokens": 7 * i})
        expected += Decimal(repr((out.attributes or {})["llm.cost.total_usd"]))
    assert pipeline.recorder.total_cost() == expected
    assert expected == (sum(range(1000, 3000)) * Decimal("2.5") + 7 * sum(range(2000)) * Decimal(10)) / 10**6


def test_session_survives_a_hop_through_w3c_headers(pipeline: Pipeline) -> None:
    # Service A injects its context into outgoing HTTP headers; service B extracts it and makes
    # the LLM call. The default propagators (tracecontext + baggage) carry the session across.
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    with otel_llmcost.session("s-hop", name="checkout"), otel_llmcost.user("u-hop"):
        propagate.inject(headers)
    assert "baggage" in headers and "u-hop" in headers["baggage"]
    token = context.attach(propagate.extract(headers))
    try:
        out = emit(pipeline, CHAT)
    finally:
        context.detach(token)
    a = out.attributes or {}
    assert (a["session.id"], a["llm.session.name"], a["user.id"]) == ("s-hop", "checkout", "u-hop")


def test_billing_options_on_the_span_change_the_price(pipeline: Pipeline) -> None:
    base = {**CHAT, "gen_ai.request.model": "tiered-x", "gen_ai.usage.output_tokens": 1000}
    plain = emit(pipeline, base)
    flex = emit(pipeline, {**base, "openai.request.service_tier": "flex"})
    regional = emit(pipeline, {**base, "cloud.region": "eu-west-1"})
    total = (plain.attributes or {})["llm.cost.total_usd"]
    assert (flex.attributes or {})["llm.cost.total_usd"] == pytest.approx(total * 0.5, rel=1e-12)
    assert (regional.attributes or {})["llm.cost.total_usd"] == pytest.approx(total * 1.1, rel=1e-12)


def _variants() -> list[tuple[dict, bool]]:  # type: ignore[type-arg]
    """Span attributes of many shapes, each with whether the span status is an error."""
    base = dict(CHAT)
    cases: list[dict] = [  # type: ignore[type-arg]
        base,
        {**base, "gen_ai.response.model": "gpt-4o-2024-08-06"},
        {**base, "gen_ai.request.model": "o3"},  # two price periods
        {**base, "gen_ai.request.model": "gpt-5.4", "gen_ai.usage.input_tokens": 300_000},  # long-context tier
        {**base, "gen_ai.request.model": "reasoner-x", "gen_ai.usage.reasoning.output_tokens": 200},
        {**base, "gen_ai.request.model": "tiered-x"},  # options in the catalog, none on the span
        {**base, "gen_ai.request.model": "gpt-audio-x"},  # modality prices, token counts only
        {**base, "gen_ai.request.model": "image-x"},
        {
            "gen_ai.provider.name": "perplexity",
            "gen_ai.request.model": "sonar-x",
            "gen_ai.usage.input_tokens": 9,
            "gen_ai.usage.output_tokens": 1,
        },
        {**base, "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.cache_creation.input_tokens": 50},
        {**base, "gen_ai.usage.cache_read.input_tokens": 4000},  # exclusive input, as Anthropic's
        {**base, "gen_ai.usage.reasoning.output_tokens": 900},  # exclusive output, as Gemini's
        {**base, "llm.usage.cache_creation_1h.input_tokens": 0},
        {**base, "gen_ai.usage.output_tokens": 0},
        {k: v for k, v in base.items() if k != "gen_ai.usage.output_tokens"},
        {**base, "gen_ai.usage.input_tokens": "1000"},  # a count as a string: the general path
        {**base, "gen_ai.usage.input_tokens": -5},
        {**base, "gen_ai.usage.input_tokens": 2 * 10**9},
        {**base, "gen_ai.usage.input_tokens": True},
        {**base, "gen_ai.request.model": "gpt-nope"},
        {**base, "gen_ai.provider.name": "nope", "gen_ai.request.model": "gpt-4o"},
        {**base, "gen_ai.provider.name": ""},
        {**base, "gen_ai.system": "openai"},  # another convention's name too
        {k: v for k, v in base.items() if k != "gen_ai.provider.name"} | {"gen_ai.system": "openai"},
        {**base, "gen_ai.conversation.id": "c-1", "session.id": "s-1", "user.id": "u-1"},
        # sessions (llm_sessions_total): any path, ids of any type, the conversation id as a fallback
        {**base, "session.id": "s-2", "llm.property.feature": "search"},
        {**base, "session.id": "s-2", "llm.property.feature": "other"},  # counted once, by its first call
        {**base, "session.id": 42, "gen_ai.request.model": "gpt-nope"},
        {**base, "session.id": "", "gen_ai.conversation.id": "c-2"},
        {**base, "gen_ai.system": "openai", "gen_ai.conversation.id": "c-3"},
        {**base, "gen_ai.usage.input_tokens": "10", "session.id": "s-4"},
        # cache savings and write premium (llm_cost_cache_*): reads, 5-minute and 1-hour writes, a tier
        {
            **base,
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.cache_read.input_tokens": 300,
            "gen_ai.usage.cache_creation.input_tokens": 200,
            "llm.usage.cache_creation_1h.input_tokens": 50,
        },
        {
            **base,
            "gen_ai.request.model": "gpt-5.4",
            "gen_ai.usage.input_tokens": 300_000,
            "gen_ai.usage.cache_read.input_tokens": 250_000,
        },
        {
            **base,
            "openai.request.service_tier": "priority",
            "gen_ai.request.model": "tiered-x",
            "gen_ai.usage.cache_read.input_tokens": 100,
        },
        {**base, "gen_ai.conversation.id": "c-1", "error.type": ""},
        {**base, "error.type": ""},
        {**base, "error.type": "timeout"},
        {**base, "gen_ai.usage.prompt_tokens": 7},  # another name for a count
        {**base, "openai.request.service_tier": "flex", "gen_ai.request.model": "tiered-x"},
        {**base, "server.address": "api.openai.com"},
        {**base, "server.address": ""},
        {
            **base,
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.request.model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "server.address": "bedrock-runtime.eu-west-1.amazonaws.com",
        },
        {**base, "llm.property.feature": "search", "llm.property.environment": "prod"},
        {**base, "llm.property.feature": 7, "llm.session.name": "chat"},
        {**base, "gen_ai.operation.name": 3},
        {**base, "gen_ai.request.model": ("a", "b")},
        {**base, "llm.cost.status": "priced"},
        {"http.request.method": "GET"},
    ]
    return [(attrs, error) for attrs in cases for error in (False, True)]


def _snapshot(p: Pipeline) -> dict:  # type: ignore[type-arg]
    snap = p.recorder.snapshot()
    out = {}
    for name in snap.__dataclass_fields__:
        rows = []
        for labels, value in getattr(snap, name):
            if hasattr(value, "counts"):
                value = (value.counts, value.total, value.count, value.minimum, value.maximum)
            rows.append((sorted(labels.items()), repr(value)))
        out[name] = sorted(rows)
    return out


def test_fast_path_gives_what_the_general_path_gives(pricer) -> None:  # type: ignore[no-untyped-def]
    # CostSpanProcessor prices the usual span through FastPath (work memoised per kind of call);
    # every span, of any shape, must come out with the same attributes (values and order) and
    # leave the same metrics as through the general path, twice over (plans are then reused).
    fast, general = Pipeline(pricer), Pipeline(pricer)
    general.processor.fast_path = False

    def end(p: Pipeline, attrs: dict, error: bool, n: int) -> ReadableSpan:  # type: ignore[type-arg]
        start = 1_767_225_600_000_000_000 + n * 10**9  # fixed times: the durations are compared too
        span = p.tracer.start_span("chat", kind=SpanKind.CLIENT, attributes=attrs, start_time=start)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + 1_000_000 * (n % 50_000))
        return p.spans()[-1]

    try:
        for round_ in range(2):
            for n, (attrs, error) in enumerate(_variants()):
                a = end(fast, attrs, error, n + round_)
                b = end(general, attrs, error, n + round_)
                assert list((a.attributes or {}).items()) == list((b.attributes or {}).items()), attrs
        assert fast.processor._fast is not None and fast.processor._fast._plans  # the fast path was used
        assert _snapshot(fast) == _snapshot(general)
        assert fast.recorder.total_cost() == general.recorder.total_cost() > 0
        snap = fast.recorder.snapshot()
        assert snap.cache_savings and snap.cache_write_premium  # compared above, and not empty
        # s-1, c-1, s-2, 42, c-2, c-3, s-4: each once, in both rounds together
        assert sum(n for _, n in snap.sessions) == 7
    finally:
        fast.close()
        general.close()
