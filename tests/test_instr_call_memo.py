"""The instrumentation's memoised plan per kind of call gives exactly what its general path gives.

:meth:`LLMCallSpan.finish` and :meth:`~LLMCallSpan.fail` price the usual call through the plan of
its kind of call (:class:`otel_llmcost._spans.CallPlans`); the general path (:meth:`Pricer.price`,
:meth:`Recorder.record`, :func:`add_cost_attributes`) is the reference. Every call shape below is
made twice, once each way, and the spans (attributes in order, status), the cost each call settles
with the guard (Decimal, digits included) and the recorder's metrics (Decimal sums digit for digit,
histograms) must be the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import _spans, _state
from otel_llmcost import semconv as sc
from otel_llmcost.context import properties, session, user
from otel_llmcost.instrumentation import _call
from otel_llmcost.instrumentation._call import LLMCallSpan, Outcome
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer, Usage
from otel_llmcost.pricing.overrides import parse_overrides


class ProviderError(Exception):
    """What an SDK raises (a 429, a cut stream)."""


class Permit:
    """A guard's permit that keeps what the call settled with."""

    def __init__(self) -> None:
        self.settled: list[Decimal | None] = []

    def settle(self, amount: Decimal | None) -> None:
        self.settled.append(amount)

    def release(self) -> None:
        pass


# (provider, operation, request model, server address), then the outcomes of successive calls:
# an Outcome (finish), or ("fail", error_type, Outcome | None) (fail).
Shape = tuple[tuple[str, str, str, str | None], list[Any]]

OPENAI = ("openai", "chat", "gpt-4o-mini", "api.openai.com")
SHAPES: list[Shape] = [
    (
        OPENAI,
        [
            Outcome(
                Usage(1200, 80), response_model="gpt-4o-mini-2024-07-18", response_id="r1", finish_reasons=["stop"]
            ),
            Outcome(Usage(7, 3), response_model="gpt-4o-mini-2024-07-18", finish_reasons=("stop", "length")),
            Outcome(Usage(0, 0), response_model="gpt-4o-mini-2024-07-18"),
            Outcome(Usage(2048, 10, cache_read_tokens=1024), response_model="gpt-4o-mini-2024-07-18"),
        ],
    ),
    # reasoning and cache reads; the request model only
    (("openai", "chat", "o3", None), [Outcome(Usage(3000, 900, cache_read_tokens=1024, reasoning_tokens=600))] * 2),
    # Azure, found by its host
    (
        ("azure.ai.openai", "chat", "gpt-4o", "myres.openai.azure.com"),
        [Outcome(Usage(5000, 200, cache_read_tokens=4096), response_model="gpt-4o-2024-11-20"), Outcome(Usage(9, 1))],
    ),
    # an unknown model: unpriced, every time
    (("openai", "chat", "no-such-model-x", None), [Outcome(Usage(100, 10)), Outcome(Usage(50, 5))]),
    # no usage reported
    (OPENAI, [Outcome(response_model="gpt-4o-mini"), Outcome()]),
    # a stream without usage, counted locally
    (OPENAI, [Outcome(Usage(321, 45), response_model="gpt-4o-mini", estimated=True)] * 2),
    # failures: a stream cut off (usage priced), a 429 (no usage), an explicit error type
    (
        OPENAI,
        [
            ("fail", None, Outcome(Usage(400, 20), response_model="gpt-4o-mini", estimated=True)),
            ("fail", None, None),
            ("fail", "timeout", Outcome(Usage(400, 20))),
            ("fail", "timeout", Outcome(Usage(800, 40))),
            ("fail", None, Outcome(Usage(401, 21))),
        ],
    ),
    # Anthropic prompt caching: 5-minute and one-hour writes, and reads
    (
        ("anthropic", "chat", "claude-sonnet-4-5", None),
        [
            Outcome(Usage(5000, 300, cache_read_tokens=1000, cache_write_tokens=2000, cache_write_1h_tokens=500)),
            Outcome(Usage(3000, 100, cache_write_tokens=2000, cache_write_1h_tokens=2000)),
            Outcome(Usage(3000, 100, cache_read_tokens=2999)),
        ],
    ),
    # Gemini's long-context tier: above 200k input tokens the whole call is billed at its prices
    (
        ("gcp.gemini", "generate_content", "gemini-2.5-pro", None),
        [
            Outcome(Usage(250_000, 400, reasoning_tokens=100)),
            Outcome(Usage(1000, 400, reasoning_tokens=100)),
            Outcome(Usage(200_001, 1, cache_read_tokens=100_000)),
            Outcome(Usage(200_000, 1)),
        ],
    ),
    # a provider that reports the cost itself (OpenRouter's usage.cost)
    (
        ("openrouter", "chat", "openai/gpt-4o", "openrouter.ai"),
        [Outcome(Usage(100, 10), provider_cost=Decimal("0.00123")), Outcome(Usage(100, 10))],
    ),
    # Bedrock with a region in its endpoint
    (
        ("aws.bedrock", "chat", "anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock-runtime.us-east-1.amazonaws.com"),
        [Outcome(Usage(1500, 250, cache_read_tokens=500)), Outcome(Usage(10, 2))],
    ),
    # DeepSeek's cache, embeddings
    (("deepseek", "chat", "deepseek-chat", "api.deepseek.com"), [Outcome(Usage(900, 50, cache_read_tokens=640))] * 2),
    (("openai", "embeddings", "text-embedding-3-small", None), [Outcome(Usage(input_tokens=512))] * 2),
    # per-request fees: Perplexity's search context (schema-v2 prices), Cohere's rerank
    (
        ("perplexity", "chat", "sonar-reasoning-pro", "api.perplexity.ai"),
        [Outcome(Usage(300, 900, reasoning_tokens=700)), Outcome(Usage(300, 90))],
    ),
    (("cohere", "rerank", "rerank-v3.5", None), [Outcome(Usage(40, 0)), Outcome(Usage(0, 0))]),
    # counts the general path refuses or prices its own way: invalid, not whole ints, modality usage
    (
        OPENAI,
        [
            Outcome(Usage(-5, 10)),
            Outcome(Usage(10, 5, cache_read_tokens=20)),
            Outcome(Usage(10, 5, reasoning_tokens=6)),
            Outcome(Usage(True, 5)),  # type: ignore[arg-type]  # what a careless reader might pass
            Outcome(Usage(10.0, 5)),  # type: ignore[arg-type]
            Outcome(Usage(2_000_000_000, 5)),
            Outcome(Usage(1000, 100, audio_input_tokens=200)),
            Outcome(Usage(1000, 100, web_search_calls=1)),
            Outcome(Usage(1000, 100)),
        ],
    ),
    # deployment names (an overrides pricer), an override model
    (("azure.ai.openai", "chat", "prod-chat", "myres.openai.azure.com"), [Outcome(Usage(700, 70))] * 2),
    (("openai", "chat", "ft:gpt-4o-mini:acme::abc", None), [Outcome(Usage(700, 70))] * 2),
]

OVERRIDES = """
models:
  - provider: openai
    id: ft:gpt-4o-mini:acme::abc
    prices: {input: 0.33, output: 1.27, cache_read: 0.1}
deployments:
  azure:
    prod-chat: gpt-4o
"""
DISCOUNTS = (
    OVERRIDES
    + """
discounts:
  - provider: openai
    model: gpt-4o-mini
    multiplier: 0.9
"""
)


def _pricers() -> dict[str, Callable[[], Pricer]]:
    return {
        "built-in": Pricer,
        "overrides": lambda: Pricer(overrides=parse_overrides(OVERRIDES, "overrides.yaml")),
        "discounts": lambda: Pricer(overrides=parse_overrides(DISCOUNTS, "discounts.yaml")),
    }


def _baggage(kind: str) -> ExitStack:
    stack = ExitStack()
    if kind == "baggage":
        stack.enter_context(session("sess-1", name="checkout", path="/cart/pay"))
        stack.enter_context(user("user-7"))
        stack.enter_context(properties(feature="search", environment="prod", team="core"))
    elif kind == "other-baggage":
        stack.enter_context(session("sess-2", name="support"))
        stack.enter_context(properties(feature="chat"))
    return stack


class Run:
    """One arm: a tracer provider into memory, a recorder, a pricer, the calls made and what they settled."""

    def __init__(self, pricer: Pricer, dimensions: tuple[str, ...]) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")
        self.recorder = Recorder(dimensions)
        self.pricer = pricer
        self.settled: list[Decimal | None] = []
        self.made = 0
        _state.install(self.recorder, pricer)

    def call(self, facts: tuple[str, str, str, str | None], step: Any, own_session: bool = False) -> None:
        self.made += 1
        if own_session:  # a session of its own: counted in llm_sessions_total by this very call
            with session(f"own-{self.made}"):
                self.call(facts, step)
            return
        provider, operation, model, address = facts
        span = LLMCallSpan(
            self.tracer,
            provider=provider,
            operation=operation,
            request_model=model,
            server_address=address,
            server_port=443 if address else None,
            attributes={sc.GEN_AI_REQUEST_TEMPERATURE: 0.2, sc.GEN_AI_REQUEST_TOP_P: None},
        )
        permit = Permit()
        span.permit = permit  # type: ignore[assignment]  # settles as a guard's permit does
        if isinstance(step, Outcome):
            span.finish(step)
        else:
            _, error_type, outcome = step
            span.fail(ProviderError("429"), outcome=outcome, error_type=error_type)
        assert span.done and len(permit.settled) == 1
        self.settled += permit.settled

    def result(self) -> dict[str, Any]:
        spans = [
            (
                s.name,
                s.kind,
                s.status.status_code,
                s.status.description,
                [(k, repr(v)) for k, v in s.attributes.items()],
            )
            for s in self.exporter.get_finished_spans()
        ]
        return {"spans": spans, "settled": [repr(x) for x in self.settled], "metrics": _metrics(self.recorder)}


def _metrics(recorder: Recorder) -> dict[str, Any]:
    """The recorder's metrics, Decimals by their digits; durations by their count (they are timings)."""
    snap = recorder.snapshot()
    out: dict[str, Any] = {}
    for name in ("cost_usd", "requests", "tokens", "skipped", "overflow", "cache_savings", "cache_write_premium"):
        out[name] = sorted((sorted(labels.items()), repr(value)) for labels, value in getattr(snap, name))
    out["sessions"] = sorted((sorted(labels.items()), n) for labels, n in snap.sessions)
    for name in ("request_cost", "token_usage"):
        out[name] = sorted(
            (sorted(labels.items()), h.counts, repr(h.total), h.count, repr(h.minimum), repr(h.maximum))
            for labels, h in getattr(snap, name)
        )
    out["duration"] = sorted((sorted(labels.items()), h.count) for labels, h in snap.duration)
    out["series"] = recorder.series_count()
    return out


@pytest.fixture(autouse=True)
def _restore_state() -> Iterator[None]:
    before = (_state._recorder, _state._pricer)
    yield
    _state.install(*before)  # type: ignore[arg-type]
    _spans._plans = None


def _arm(
    monkeypatch: pytest.MonkeyPatch,
    make_pricer: Callable[[], Pricer],
    dimensions: tuple[str, ...],
    memo: bool,
    shapes: list[Shape],
) -> tuple[dict[str, Any], int]:
    """Make every call of *shapes* (in each baggage) through one path; return the result and plans used."""
    planned = 0
    real = _call.record_priced

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal planned
        planned += 1
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(_spans, "_plans", None)
        m.setattr(_call, "record_priced", counting)
        if not memo:
            m.setattr(LLMCallSpan, "_end_planned", lambda self, *args: False)
        run = Run(make_pricer(), dimensions)
        for kind in ("none", "baggage", "other-baggage", "baggage", "own-session"):
            with _baggage(kind):
                for facts, steps in shapes:
                    for step in steps:
                        run.call(facts, step, own_session=kind == "own-session")
        return run.result(), planned


@pytest.mark.parametrize("pricer_kind", list(_pricers()))
@pytest.mark.parametrize("dimensions", [(), ("feature", "session_name", "environment")], ids=["no-dims", "dims"])
def test_memoised_path_gives_what_the_general_path_gives(
    monkeypatch: pytest.MonkeyPatch, pricer_kind: str, dimensions: tuple[str, ...]
) -> None:
    make_pricer = _pricers()[pricer_kind]
    general, none_planned = _arm(monkeypatch, make_pricer, dimensions, False, SHAPES)
    memoised, planned = _arm(monkeypatch, make_pricer, dimensions, True, SHAPES)
    assert none_planned == 0
    # the memoised arm did take its path for the usual calls (a discount leaves every call to price())
    assert planned == 0 if pricer_kind == "discounts" else planned > 100
    assert len(memoised["spans"]) == len(general["spans"]) == 5 * sum(len(steps) for _, steps in SHAPES)
    for got, expected in zip(memoised["spans"], general["spans"], strict=True):
        assert got == expected
    assert memoised["settled"] == general["settled"]
    assert memoised["metrics"] == general["metrics"]
    statuses = {dict(attrs).get(sc.LLM_COST_STATUS) for *_, attrs in general["spans"]}
    expected_statuses = {"priced", "unpriced", "no_usage", "estimated", "invalid_usage", "provider_reported"}
    assert {repr(s) for s in expected_statuses} <= statuses  # every kind of outcome was compared


def test_usual_calls_are_priced_and_counted_from_their_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    # price() and record() are the general path: the usual call, and its first call, go without them
    seen: list[str] = []
    monkeypatch.setattr(Pricer, "price", lambda *a, **k: seen.append("price"))
    monkeypatch.setattr(Recorder, "record", lambda *a, **k: seen.append("record"))
    run = Run(Pricer(), ("feature",))
    for n in range(5):
        run.call(OPENAI, Outcome(Usage(100 + n, 10), response_model="gpt-4o-mini"))
    assert seen == []
    plans = _spans.call_plans(run.pricer, run.recorder)
    assert len(plans.plans) == 1 and run.recorder.total_cost() > 0


def test_another_pricer_installed_invalidates_the_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    # the override model redefines a built-in one: what the first pricer planned must not price for the second
    redefined = """
models:
  - provider: openai
    id: gpt-4o-mini
    prices: {input: 7, output: 11}
"""
    first, second = Pricer(), Pricer(overrides=parse_overrides(redefined, "redefined.yaml"))
    step = Outcome(Usage(1000, 100), response_model="gpt-4o-mini")
    run = Run(first, ())
    run.call(OPENAI, step)
    plans = _spans.call_plans(first, run.recorder)
    _state.install(run.recorder, second)
    run.call(OPENAI, step)
    assert _spans.call_plans(second, run.recorder) is not plans
    totals = [dict(s.attributes)[sc.LLM_COST_TOTAL_USD] for s in run.exporter.get_finished_spans()]
    expected = [p.price("openai", "gpt-4o-mini", step.usage).total_usd for p in (first, second)]
    assert totals == [float(x) for x in expected] and totals[0] != totals[1]  # type: ignore[arg-type]
    # and the general path with the second pricer agrees, metrics included
    general, _ = _arm(monkeypatch, lambda: second, (), False, [(OPENAI, [step])])
    memoised, _ = _arm(monkeypatch, lambda: second, (), True, [(OPENAI, [step])])
    assert memoised == general
