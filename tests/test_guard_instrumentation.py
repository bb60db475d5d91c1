"""Spend guards inside our instrumentation: real ``openai``/``anthropic`` clients against the fakes.

A call is admitted before the SDK sends anything, refused with :class:`BudgetExceededError` (the
fake server then receives nothing), and settled with its priced cost when it ends -- a stream
when it is exhausted, a failed call by releasing its reservation. Expected spends are the costs
on the calls' own spans, never hard-coded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import otel_llmcost
from otel_llmcost.budgets import runtime
from otel_llmcost.budgets.guard import BudgetExceededError, Guard, GuardBudget, GuardRateLimit
from otel_llmcost.budgets.state import units_to_usd, usd_to_units
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

from .fakes import anthropic_server
from .fakes.openai_server import FakeOpenAIServer, serve
from .fakes.stack import InstrumentedStack, instrumented_stack, usd

pytestmark = pytest.mark.integration

D = Decimal
API_KEY = "sk-test-DO-NOT-LEAK-1234"
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Summarise the quarterly report for the board."}]
REFUSED = "otel_llmcost.BudgetExceededError"


@dataclass
class Stack(InstrumentedStack):
    server: Any

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def chat(self, model: str = MODEL, **kwargs: Any) -> Any:
        with self.client() as client:
            return client.chat.completions.create(model=model, messages=MESSAGES, **kwargs)  # type: ignore[arg-type]

    def guard_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        return [(dict(p.attributes), p.value) for p in self.metrics().get(name, [])]


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeOpenAIServer) -> Iterator[Stack]:
    with instrumented_stack(partial(Stack, server=server), OpenAIInstrumentor()) as s:
        yield s


def install(*budgets: GuardBudget, rate_limits: tuple[GuardRateLimit, ...] = (), **kwargs: Any) -> Guard:
    g = Guard(budgets, rate_limits, expose_above=0.0, **kwargs)
    runtime.install_guard(g)
    return g


@pytest.fixture(autouse=True)
def _no_guard_after() -> Iterator[None]:
    yield
    runtime.install_guard(None)


def cost_of(span: ReadableSpan) -> Decimal:
    return usd((span.attributes or {})["llm.cost.total_usd"])


def as_guard_counts(cost: Decimal) -> Decimal:
    """What the guard keeps of a cost: whole nano-dollars, rounded up."""
    return units_to_usd(usd_to_units(cost))


def assert_refused(span: ReadableSpan, budget: str) -> None:
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and budget in (span.status.description or "")
    assert a["error.type"] == REFUSED
    assert "llm.cost.total_usd" not in a and a["llm.cost.status"] == "no_usage"


def only_ok_requests(stack: Stack) -> list[dict[str, Any]]:
    points = stack.guard_points("llm.requests")
    assert all(labels["status"] == "ok" for labels, _ in points), points  # a refusal is not an error
    return [labels for labels, _ in points]


# --- sync, async, stream ------------------------------------------------------------------------------


def test_sync_call_is_settled_then_refused_before_it_is_sent(stack: Stack) -> None:
    install(GuardBudget("tiny", "1d", D("0.000001")))
    stack.chat()  # admitted: nothing spent yet, and it is the only call in flight
    (first,) = stack.spans()
    with pytest.raises(BudgetExceededError) as info:
        stack.chat()
    assert len(stack.server.requests) == 1  # the refused call never reached the provider
    err = info.value
    assert err.budget == "tiny" and err.reason == "budget" and err.limit_usd == D("0.000001")
    assert err.spend_usd == as_guard_counts(cost_of(first))  # settled with the call's priced cost
    assert err.reset_at.hour == 0 and err.reset_at.minute == 0  # a 1d window resets at midnight UTC
    refused = stack.spans()[1]
    assert_refused(refused, "tiny")
    assert only_ok_requests(stack)
    assert sum(v for _, v in stack.guard_points("llm.requests")) == 1
    assert stack.guard_points("llm.budget.guard.breaches") == [({"budget": "tiny", "action": "raise"}, 1)]


def test_async_call_is_admitted_settled_and_refused(stack: Stack) -> None:
    install(GuardBudget("per-user", "1d", D("0.000001"), per_user=True))

    async def run() -> None:
        async with stack.async_client() as client:
            with otel_llmcost.user("alice"):
                await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
                with pytest.raises(BudgetExceededError) as info:
                    await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
                assert info.value.user == "alice"
            with otel_llmcost.user("bob"):  # another user's budget is untouched
                await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(run())
    assert len(stack.server.requests) == 2
    alice, refused, bob = stack.spans()
    assert_refused(refused, "per-user")
    limit = D("0.000001")
    ratios = dict((labels["user"], value) for labels, value in stack.guard_points("llm.budget.user_utilization_ratio"))
    assert ratios == {
        "alice": pytest.approx(float(as_guard_counts(cost_of(alice)) / limit)),
        "bob": pytest.approx(float(as_guard_counts(cost_of(bob)) / limit)),
    }


def test_stream_is_settled_when_it_ends_and_refused_before_it_starts(stack: Stack) -> None:
    limit = D("1")
    install(GuardBudget("pu", "1d", limit, per_user=True))
    usage = {"include_usage": True}
    with stack.client() as client, otel_llmcost.user("carol"):
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, stream_options=usage)  # type: ignore[arg-type]
        assert stack.guard_points("llm.budget.user_utilization_ratio") == []  # in flight: nothing settled
        list(stream)
        (span,) = stack.spans()
        ((labels, ratio),) = stack.guard_points("llm.budget.user_utilization_ratio")
        assert labels == {"budget": "pu", "user": "carol"}
        assert ratio == pytest.approx(float(as_guard_counts(cost_of(span)) / limit))

        install(GuardBudget("spent", "1d", D("0.000001")))
        list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, stream_options=usage))  # type: ignore[arg-type]
        sent = len(stack.server.requests)
        with pytest.raises(BudgetExceededError) as info:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert len(stack.server.requests) == sent
    assert info.value.spend_usd == as_guard_counts(cost_of(stack.spans()[1]))  # the stream settled its cost
    assert_refused(stack.spans()[-1], "spent")


def test_a_failed_call_releases_its_reservation(stack: Stack) -> None:
    g = install(GuardBudget("b", "1d", D("1")))
    estimate = D("0.6")  # fits once, not twice
    held = g.admit(estimated_cost_usd=estimate)
    with pytest.raises(BudgetExceededError):  # the check below can fail: a held reservation blocks
        g.admit(estimated_cost_usd=estimate)
    held.release()
    otel_llmcost.guard(estimated_cost_usd=estimate)  # pending: the next instrumented call adopts it
    with pytest.raises(openai.InternalServerError):
        stack.chat(model="server-error")  # fails without cost
    (failed,) = stack.spans()
    assert failed.attributes is not None and failed.attributes["error.type"] != REFUSED
    g.admit(estimated_cost_usd=estimate).release()  # fits: the failed call's 0.6 was released


def test_log_action_lets_the_call_through_and_counts_the_breach(stack: Stack) -> None:
    install(GuardBudget("soft", "1d", D("0.000001"), action="log"))
    stack.chat()
    stack.chat()
    assert len(stack.server.requests) == 2
    assert stack.guard_points("llm.budget.guard.breaches") == [({"budget": "soft", "action": "log"}, 1)]
    assert all((s.attributes or {}).get("error.type") is None for s in stack.spans())


def test_request_quota_per_user_and_model_filters(stack: Stack) -> None:
    # filters on the model match the catalog's id too when the guard can resolve it
    install(
        GuardBudget("other-model", "1d", D("0.000001"), filter={"model": "gpt-4o"}),
        rate_limits=(GuardRateLimit(2, 60, "request", "user"),),
    )
    with otel_llmcost.user("dave"):
        stack.chat()
        stack.chat()  # gpt-4o-mini: not covered by the gpt-4o budget
        with pytest.raises(BudgetExceededError) as info:
            stack.chat()
    assert info.value.reason == "rate_limit" and len(stack.server.requests) == 2


def test_without_a_guard_calls_are_untouched(stack: Stack) -> None:
    assert runtime.current_guard() is None
    stack.chat()
    (span,) = stack.spans()
    assert "error.type" not in (span.attributes or {})
    assert not any(name.startswith("llm.budget") for name in stack.metrics())


# --- another SDK --------------------------------------------------------------------------------------


@dataclass
class AnthropicStack(InstrumentedStack):
    server: Any

    def create(self, **kwargs: Any) -> Any:
        with anthropic.Anthropic(base_url=self.server.base_url, api_key=API_KEY, max_retries=0) as client:
            return client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=50,
                messages=[{"role": "user", "content": "Hi"}],
                **kwargs,
            )


def test_anthropic_calls_are_guarded_too() -> None:
    with (
        anthropic_server.serve() as srv,
        instrumented_stack(partial(AnthropicStack, server=srv), AnthropicInstrumentor()) as stack,
    ):
        install(GuardBudget("claude", "1h", D("0.000001"), filter={"provider": "anthropic"}))
        stack.create()
        with pytest.raises(BudgetExceededError) as info:
            stack.create(stream=True)
        assert len(srv.requests) == 1
        first, refused = stack.spans()
        assert info.value.spend_usd == as_guard_counts(cost_of(first))
        assert_refused(refused, "claude")
