"""The instrumentation core, with a small fake SDK: spans, prices, metrics, streams, failures, guards."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from otel_llmcost import _state
from otel_llmcost.export import InMemoryCostMetricReader, cost_meter_provider
from otel_llmcost.instrumentation._base import LLMCostInstrumentor, Target
from otel_llmcost.instrumentation._call import LLMCallSpan, Outcome
from otel_llmcost.instrumentation._stream import AsyncTracedStream, TracedStream
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer, Usage
from otel_llmcost.processor import CostSpanProcessor

MODULE = __name__


class FakeError(Exception):
    """What the fake SDK raises, like a provider's 429."""


class FakeStream:
    """A stream of text chunks; the last one carries usage unless told otherwise."""

    def __init__(self, n: int, usage: bool = True, fail_at: int | None = None) -> None:
        self.items = [{"text": f"w{i} "} for i in range(n)]
        if usage:
            self.items.append({"usage": (100, n)})
        self.fail_at = fail_at
        self.closed = False
        self._i = 0

    def __iter__(self) -> FakeStream:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._i == self.fail_at:
            raise FakeError("connection reset")
        if self._i >= len(self.items):
            raise StopIteration
        self._i += 1
        return self.items[self._i - 1]

    def close(self) -> None:
        self.closed = True


class FakeAsyncStream(FakeStream):
    def __aiter__(self) -> FakeAsyncStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return self.__next__()
        except StopIteration:
            raise StopAsyncIteration from None


class FakeClient:
    """Stands in for a provider SDK client."""

    def chat(
        self, model: str, usage: tuple[int, int] | None = (1000, 100), error: bool = False, bad: bool = False
    ) -> dict[str, Any]:
        if error:
            raise FakeError("rate limited")
        return {"model": model + "-2024-08-06", "usage": usage, "bad": bad}

    async def achat(self, model: str, usage: tuple[int, int] | None = (1000, 100)) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"model": model, "usage": usage, "bad": False}

    def stream(self, model: str, n: int = 5, usage: bool = True, fail_at: int | None = None) -> FakeStream:
        return FakeStream(n, usage, fail_at)

    async def astream(self, model: str, n: int = 5) -> FakeAsyncStream:
        return FakeAsyncStream(n)


class Acc:
    def __init__(self) -> None:
        self.text = ""
        self.usage: Usage | None = None

    def feed(self, item: dict[str, Any]) -> None:
        if "usage" in item:
            self.usage = Usage(*item["usage"])
        else:
            self.text += item["text"]

    def outcome(self) -> Outcome:
        if self.usage is None:  # no usage report: estimate from the text seen
            return Outcome(usage=Usage(10, max(1, len(self.text) // 4)), estimated=True)
        return Outcome(usage=self.usage)


class Hooks:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCallSpan | None:
        model = kwargs["model"]
        if model == "explode-on-start":
            raise RuntimeError("bug in our start hook")
        return LLMCallSpan(
            self.tracer, provider="openai", operation="chat", request_model=model, server_address="api.openai.com"
        )

    def outcome(self, call: LLMCallSpan, result: dict[str, Any]) -> Outcome:
        if result["bad"]:
            raise KeyError("unexpected response shape")
        usage = result["usage"]
        return Outcome(usage=Usage(*usage) if usage else None, response_model=result["model"], finish_reasons=["stop"])

    def stream(self, call: LLMCallSpan, result: Any) -> Any:
        if isinstance(result, FakeAsyncStream):
            return AsyncTracedStream(result, call, Acc())
        if isinstance(result, FakeStream):
            return TracedStream(result, call, Acc())
        return None


class FakeInstrumentor(LLMCostInstrumentor):
    def targets(self, tracer: Tracer, **kwargs: Any) -> list[tuple[Target, Any]]:
        hooks = Hooks(tracer)
        return [
            (Target(MODULE, "FakeClient.chat"), hooks),
            (Target(MODULE, "FakeClient.stream"), hooks),
            (Target(MODULE, "FakeClient.achat", is_async=True), hooks),
            (Target(MODULE, "FakeClient.astream", is_async=True), hooks),
        ]


class Stack:
    def __init__(self, pricer: Pricer, sampler: Any = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.recorder = Recorder(())
        self.provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        self.processor = CostSpanProcessor(SimpleSpanProcessor(self.exporter), pricer=pricer, recorder=self.recorder)
        self.provider.add_span_processor(self.processor)
        self.reader = InMemoryCostMetricReader(self.recorder)
        self.meters = cost_meter_provider([self.reader], catalog_version=lambda: pricer.catalog.version)
        _state.install(self.recorder, pricer)
        self.instrumentor = FakeInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def requests(self) -> list[tuple[str, str, int]]:
        snap = self.recorder.snapshot()
        return sorted((labels["status"], labels["cost_status"], n) for labels, n in snap.requests)


@pytest.fixture()
def stack(pricer: Pricer) -> Iterator[Stack]:
    s = Stack(pricer)
    yield s
    s.instrumentor.uninstrument()
    s.meters.shutdown()
    _state.install(Recorder())


def test_call_is_priced_on_its_span_and_counted_once(stack: Stack, pricer: Pricer) -> None:
    result = FakeClient().chat(model="gpt-4o")
    assert result["model"] == "gpt-4o-2024-08-06"  # the app's result is untouched
    (span,) = stack.spans()
    a = span.attributes or {}
    assert span.name == "chat gpt-4o" and span.kind is SpanKind.CLIENT
    expected = pricer.price("openai", "gpt-4o-2024-08-06", Usage(1000, 100)).total_usd
    assert Decimal(repr(a["llm.cost.total_usd"])) == expected
    assert a["gen_ai.usage.input_tokens"] == 1000 and a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    # counted at the call site; the processor saw the cost and did not count it again
    assert stack.requests() == [("ok", "priced", 1)]
    assert stack.recorder.total_cost() == expected


def test_provider_error_propagates_unchanged_and_is_recorded(stack: Stack) -> None:
    with pytest.raises(FakeError, match="rate limited"):
        FakeClient().chat(model="gpt-4o", error=True)
    (span,) = stack.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == f"{MODULE.split('.')[0]}.FakeError"
    assert (span.attributes or {})["llm.cost.status"] == "no_usage"
    assert stack.requests() == [("error", "no_usage", 1)]


def test_a_bug_in_our_code_never_breaks_the_call(stack: Stack) -> None:
    result = FakeClient().chat(model="gpt-4o", bad=True)
    assert result["bad"] is True
    (span,) = stack.spans()
    assert (span.attributes or {})["llm.cost.status"] == "no_usage"
    # a failing start hook: the call goes through untraced
    assert FakeClient().chat(model="explode-on-start")["model"] == "explode-on-start-2024-08-06"
    assert len(stack.spans()) == 1
    skipped = dict((labels["reason"], n) for labels, n in stack.recorder.snapshot().skipped)
    assert skipped == {"instrumentation_error": 2}


def test_unknown_model_is_unpriced_and_counted(stack: Stack) -> None:
    FakeClient().chat(model="brand-new-model")
    (span,) = stack.spans()
    assert (span.attributes or {})["llm.cost.status"] == "unpriced"
    assert "llm.cost.total_usd" not in (span.attributes or {})
    assert stack.requests() == [("ok", "unpriced", 1)]


def test_async_call(stack: Stack, pricer: Pricer) -> None:
    asyncio.run(FakeClient().achat(model="gpt-4o"))
    (span,) = stack.spans()
    assert (
        Decimal(repr((span.attributes or {})["llm.cost.total_usd"]))
        == pricer.price("openai", "gpt-4o", Usage(1000, 100)).total_usd
    )


def test_stream_span_ends_when_exhausted_with_usage(stack: Stack) -> None:
    stream = FakeClient().stream(model="gpt-4o", n=3)
    assert stack.spans() == []  # still streaming
    chunks = list(stream)
    assert len(chunks) == 4 and chunks[0] == {"text": "w0 "}
    (span,) = stack.spans()
    a = span.attributes or {}
    assert a["llm.cost.status"] == "priced" and a["gen_ai.usage.output_tokens"] == 3


def test_stream_without_usage_is_estimated(stack: Stack) -> None:
    list(FakeClient().stream(model="gpt-4o", n=8, usage=False))
    (span,) = stack.spans()
    assert (span.attributes or {})["llm.cost.status"] == "estimated"
    assert (span.attributes or {})["llm.cost.total_usd"] > 0
    assert stack.requests() == [("ok", "estimated", 1)]


def test_stream_closed_early_or_dropped_still_ends(stack: Stack) -> None:
    stream = FakeClient().stream(model="gpt-4o", n=10)
    next(stream)
    stream.close()
    assert stream.__wrapped__.closed
    dropped = FakeClient().stream(model="gpt-4o", n=10)
    next(dropped)
    del dropped
    gc.collect()
    assert len(stack.spans()) == 2
    assert all((s.attributes or {})["llm.cost.status"] == "estimated" for s in stack.spans())


def test_stream_cut_midway_fails_with_estimate(stack: Stack) -> None:
    stream = FakeClient().stream(model="gpt-4o", n=10, fail_at=4)
    with pytest.raises(FakeError, match="connection reset"):
        for _ in stream:
            pass
    (span,) = stack.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["llm.cost.status"] == "estimated"
    assert stack.requests() == [("error", "estimated", 1)]


def test_async_stream(stack: Stack) -> None:
    async def consume() -> int:
        stream = await FakeClient().astream(model="gpt-4o", n=4)
        return len([c async for c in stream])

    assert asyncio.run(consume()) == 5
    (span,) = stack.spans()
    assert (span.attributes or {})["llm.cost.status"] == "priced"


def test_money_is_counted_when_traces_are_sampled_out(pricer: Pricer) -> None:
    s = Stack(pricer, sampler=ALWAYS_OFF)
    try:
        for n in range(50):
            FakeClient().chat(model="gpt-4o", usage=(1000 + n, 10))
        assert s.spans() == []
        expected = sum((pricer.price("openai", "gpt-4o", Usage(1000 + n, 10)).total_usd for n in range(50)), Decimal(0))
        assert s.recorder.total_cost() == expected
        assert s.requests() == [("ok", "priced", 50)]
    finally:
        s.instrumentor.uninstrument()
        s.meters.shutdown()
        _state.install(Recorder())


def _third_party_span(tracer: Tracer) -> Any:
    return tracer.start_span(
        "chat gpt-4o",
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100},
    )  # fmt: skip


def test_other_instrumentation_inside_our_call_is_not_counted_twice(stack: Stack) -> None:
    # Another instrumentation wraps the SDK method first, so ours ends up outside it.
    other = stack.provider.get_tracer("other.instrumentation")

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = _third_party_span(other)
        try:
            return wrapped(*args, **kwargs)
        finally:
            span.end()

    stack.instrumentor.uninstrument()
    wrapt.wrap_function_wrapper(MODULE, "FakeClient.chat", theirs)
    stack.instrumentor.instrument(tracer_provider=stack.provider)
    try:
        FakeClient().chat(model="gpt-4o")
    finally:
        stack.instrumentor.uninstrument()
        unwrap(FakeClient, "chat")
        stack.instrumentor.instrument(tracer_provider=stack.provider)
    assert len(stack.spans()) == 2
    assert stack.requests() == [("ok", "priced", 1)]


def test_other_instrumentation_outside_our_call_is_not_counted_twice(stack: Stack) -> None:
    other = stack.provider.get_tracer("other.instrumentation")
    span = _third_party_span(other)
    with trace.use_span(span, end_on_exit=True):
        FakeClient().chat(model="gpt-4o")
    assert len(stack.spans()) == 2
    assert stack.requests() == [("ok", "priced", 1)]
    # the other instrumentation's span is handed on as it was, without a cost
    theirs = next(s for s in stack.spans() if s.instrumentation_scope.name == "other.instrumentation")
    assert "llm.cost.status" not in (theirs.attributes or {})


def test_uninstrument_restores_the_sdk(stack: Stack) -> None:
    stack.instrumentor.uninstrument()
    FakeClient().chat(model="gpt-4o")
    assert stack.spans() == []
    stack.instrumentor.instrument(tracer_provider=stack.provider)
