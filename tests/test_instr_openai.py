"""otel-llmcost's own ``openai`` instrumentation, with real ``openai`` clients against the fake server.

Expected costs come from the usage the server reported (or the tokens counted locally) priced by
the same :class:`Pricer`, never hard-coded; metrics are read from the recorder our calls count into.
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import CostSpanProcessor, Recorder, Usage, _state, default_pricer
from otel_llmcost.config import OTEL_LLMCOST_STREAM_INCLUDE_USAGE, ConfigError, env_bool
from otel_llmcost.instrumentation import _tokens
from otel_llmcost.instrumentation.openai import (
    OpenAIInstrumentor,
    endpoint_of,
    provider_for_host,
)

from .fakes.openai_server import (
    CUT_AFTER_CHUNKS,
    CUT_STREAM_MODEL,
    ERROR_MODELS,
    MALFORMED_MODEL,
    REPLY_TEXT,
    ChatUsage,
    FakeOpenAIServer,
    chat_usage,
    embedding_usage,
    response_model,
    responses_usage,
    serve,
)
from .fakes.stack import InstrumentedStack, installed, instrumented_stack, strings, usd

integration = pytest.mark.integration
API_KEY = "sk-test-DO-NOT-LEAK-1234"
SCOPE = "otel_llmcost.instrumentation"
PROMPT = "Summarise the quarterly report for the board. " * 7  # long enough for cached tokens
SECRET = "The launch code is PINEAPPLE-42"
GENAI_ENV = ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT")


def messages(text: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


@dataclass
class Stack(InstrumentedStack):
    """Our instrumentation on a fresh tracer provider, recording into a fresh recorder."""

    server: FakeOpenAIServer

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def only_span(self) -> ReadableSpan:
        span = super().only_span()
        assert span.instrumentation_scope is not None and span.instrumentation_scope.name == SCOPE
        return span

    def requests(self) -> list[tuple[dict[str, Any], int]]:
        return [(dict(p.attributes), p.value) for p in self.metrics().get("llm.requests", [])]


def instrumented(
    server: FakeOpenAIServer, sampler: Sampler | None = None, **kwargs: Any
) -> AbstractContextManager[Stack]:
    return instrumented_stack(partial(Stack, server=server), OpenAIInstrumentor(), sampler=sampler, **kwargs)


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (OTEL_LLMCOST_STREAM_INCLUDE_USAGE.name, *GENAI_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def stack(server: FakeOpenAIServer) -> Iterator[Stack]:
    with instrumented(server) as s:
        yield s


# --- expectations -----------------------------------------------------------------------------------


def as_usage(u: ChatUsage) -> Usage:
    return Usage(
        u.prompt_tokens, u.completion_tokens, cache_read_tokens=u.cached_tokens, reasoning_tokens=u.reasoning_tokens
    )


def assert_cost(stack: Stack, span: ReadableSpan, model: str, usage: Usage, *, status: str = "priced") -> Decimal:
    """The span's cost is exactly the pricer's for *usage*; return it."""
    a = span.attributes or {}
    cost = stack.pricer.price(
        str(a["gen_ai.provider.name"]), model, usage, at_ns=span.start_time, server_address=a.get("server.address")
    )
    assert cost.status == "priced" and cost.total_usd, cost
    assert a["llm.cost.status"] == status
    assert usd(a["llm.cost.total_usd"]) == cost.total_usd
    assert usd(a["llm.cost.input_usd"]) == cost.input_usd
    assert usd(a["llm.cost.cache_read_usd"]) == cost.cache_read_usd
    assert usd(a["llm.cost.output_usd"]) == cost.output_usd
    assert a["llm.cost.pricing.model"] == cost.model
    return cost.total_usd


def assert_usage(span: ReadableSpan, usage: Usage) -> None:
    a = span.attributes or {}
    assert a["gen_ai.usage.input_tokens"] == usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cache_read_tokens
    assert a.get("gen_ai.usage.reasoning.output_tokens", 0) == usage.reasoning_tokens


def local_count(model: str, msgs: list[dict[str, str]], completion: str) -> Usage:
    """The chat estimate, counted here with the o200k encoding: role + content per message, plus framing."""
    enc = _tokens.encoding_for(model)
    assert enc is not None and enc.name == "o200k_base"
    prompt = sum(len(enc.encode(m["role"])) + len(enc.encode(m["content"])) + 3 for m in msgs) + 3
    return Usage(input_tokens=prompt, output_tokens=len(enc.encode(completion)))


# --- chat, responses, embeddings ---------------------------------------------------------------------


@integration
@pytest.mark.parametrize("model", ["gpt-4o-mini", "o4-mini"])
def test_chat_is_priced_exactly_from_the_reported_usage(stack: Stack, model: str) -> None:
    with stack.client() as client:
        result = client.chat.completions.create(model=model, messages=messages(), max_tokens=50, temperature=0.2)
    served = chat_usage(stack.server.requests[0].body)
    assert served.cached_tokens > 0 and (served.reasoning_tokens > 0) is (model == "o4-mini")
    assert result.choices[0].message.content == REPLY_TEXT

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"chat {model}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == model and a["gen_ai.response.model"] == response_model(model)
    assert a["gen_ai.response.id"] == result.id and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.2
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == stack.server.port
    assert_usage(span, as_usage(served))
    total = assert_cost(stack, span, response_model(model), as_usage(served))
    assert stack.recorder.total_cost() == total
    assert stack.requests() == [
        ({"provider": "openai", "model": model, "operation": "chat", "status": "ok", "cost_status": "priced"}, 1)
    ]


@integration
@pytest.mark.parametrize("stream", [False, True])
def test_responses_api_is_priced_exactly(stack: Stack, stream: bool) -> None:
    with stack.client() as client:
        if stream:
            events = list(client.responses.create(model="o4-mini", input=PROMPT, instructions="Be terse.", stream=True))
            assert events[-1].type == "response.completed"
        else:
            assert client.responses.create(model="o4-mini", input=PROMPT, instructions="Be terse.").output_text
    served = responses_usage(stack.server.requests[0].body)
    assert served.cached_tokens > 0 and served.reasoning_tokens > 0
    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == "chat o4-mini" and a["gen_ai.response.model"] == "o4-mini-2025-04-16"
    assert a.get("gen_ai.request.stream", False) is stream
    assert_usage(span, as_usage(served))
    assert stack.recorder.total_cost() == assert_cost(stack, span, "o4-mini-2025-04-16", as_usage(served))


@integration
def test_sdk_helpers_are_priced_once(stack: Stack) -> None:
    # parse() posts directly; the stream() helpers call create(); with_raw_response hands back a wrapper
    with stack.client() as client:
        client.chat.completions.parse(model="gpt-4o-mini", messages=messages())
        with client.chat.completions.stream(
            model="gpt-4o-mini", messages=messages(), stream_options={"include_usage": True}
        ) as chat_stream:
            assert chat_stream.get_final_completion().usage is not None
        with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as responses_stream:
            assert responses_stream.get_final_response().usage is not None
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages())
        assert raw.parse().usage is not None and raw.parse() is raw.parse()
    assert len(stack.server.requests) == 4
    assert [(s.attributes or {})["llm.cost.status"] for s in stack.spans()] == ["priced"] * 4
    assert sum(n for _, n in stack.requests()) == 4


@integration
def test_bodies_the_application_streams_itself_are_left_unread(stack: Stack) -> None:
    with stack.client() as client:
        with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=messages()) as r:
            assert r.parse().usage is not None  # the application reads its own body
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages(), stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == REPLY_TEXT
    statuses = [(s.attributes or {})["llm.cost.status"] for s in stack.spans()]
    assert statuses == ["no_usage", "no_usage"]  # counted, never a made-up price


@integration
def test_a_call_made_inside_one_of_our_calls_is_not_counted_again(stack: Stack) -> None:
    from opentelemetry import context

    token = context.attach(context.set_value(_state.IN_LLM_CALL, True))  # as inside a wrapped SDK method
    try:
        with stack.client() as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages())
    finally:
        context.detach(token)
    assert len(stack.server.requests) == 1 and not stack.spans() and not stack.requests()


def test_stream_estimates_read_every_text_of_the_request() -> None:
    from otel_llmcost.instrumentation._openai_read import chat_prompt as _chat_prompt
    from otel_llmcost.instrumentation._openai_read import responses_prompt as _responses_prompt

    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    chat = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    assert _chat_prompt({"messages": chat, "tools": tools}) == (
        [
            "system",
            "Be terse.",
            "user",
            "ann",
            "Hi",
            "assistant",
            "lookup",
            '{"q": 1}',
            "tool",
            "42",
            json.dumps(tools),
        ],
        4,
    )
    assert _chat_prompt({"messages": iter(chat)}) == ([], 0)  # consumed by the SDK: nothing to count
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    assert _responses_prompt({"instructions": "Be terse.", "input": items}) == (
        ["Be terse.", "Hi", "{}", "lookup", "42"],
        2,
    )
    assert _responses_prompt({"input": "Hi"}) == (["Hi"], 1)


@integration
def test_embeddings_are_priced(stack: Stack) -> None:
    with stack.client() as client:
        client.embeddings.create(model="text-embedding-3-small", input=["first document", "the second"])
    tokens = embedding_usage(stack.server.requests[0].body)
    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == "embeddings text-embedding-3-small" and a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == tokens and a["gen_ai.usage.output_tokens"] == 0
    assert_cost(stack, span, "text-embedding-3-small", Usage(input_tokens=tokens))


# --- streams ------------------------------------------------------------------------------------------


@integration
def test_stream_with_include_usage_is_priced_from_the_final_chunk(stack: Stack) -> None:
    with stack.client() as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages(), stream=True, stream_options={"include_usage": True}
        )
        assert not stack.spans()  # the span ends with the stream, not when create() returns
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY_TEXT
    served = as_usage(chat_usage(stack.server.requests[0].body))
    span = stack.only_span()
    a = span.attributes or {}
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18" and a["gen_ai.response.id"] == chunks[0].id
    assert_usage(span, served)
    assert_cost(stack, span, "gpt-4o-mini-2024-07-18", served)


@integration
def test_stream_without_usage_is_counted_locally_and_marked_estimated(stack: Stack) -> None:
    with (
        stack.client() as client,
        client.chat.completions.create(model="gpt-4o-mini", messages=messages(), stream=True) as stream,
    ):
        for _ in stream:
            pass
    assert "stream_options" not in stack.server.requests[0].body  # nothing asked for by default
    expected = local_count("gpt-4o-mini-2024-07-18", messages(), REPLY_TEXT)
    span = stack.only_span()
    assert_usage(span, expected)
    total = assert_cost(stack, span, "gpt-4o-mini-2024-07-18", expected, status="estimated")
    assert stack.recorder.total_cost() == total
    assert [(p["status"], p["cost_status"]) for p, _ in stack.requests()] == [("ok", "estimated")]


@integration
def test_stream_closed_early_ends_the_span(stack: Stack) -> None:
    with stack.client() as client:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages(), stream=True)
        first = next(iter(stream))
        stream.close()
    assert first.choices and (stack.only_span().attributes or {})["llm.cost.status"] == "estimated"


@integration
@pytest.mark.parametrize("how", ["env", "argument"])
def test_opt_in_asks_the_server_for_stream_usage(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "env":
        monkeypatch.setenv(OTEL_LLMCOST_STREAM_INCLUDE_USAGE.name, "true")
    kwargs = {"include_stream_usage": True} if how == "argument" else {}
    with instrumented(server, **kwargs) as stack, stack.client() as client:
        list(client.chat.completions.create(model="gpt-4o-mini", messages=messages(), stream=True))
        # a request that sets stream_options itself is left alone
        opts = {"include_usage": False}
        list(client.chat.completions.create(model="gpt-4o-mini", messages=messages(), stream=True, stream_options=opts))
        client.chat.completions.create(model="gpt-4o-mini", messages=messages())  # not streamed: untouched
        bodies = [r.body for r in server.requests]
        assert bodies[0]["stream_options"] == {"include_usage": True}
        assert bodies[1]["stream_options"] == {"include_usage": False} and "stream_options" not in bodies[2]
        statuses = [(s.attributes or {})["llm.cost.status"] for s in stack.spans()]
    assert statuses == ["priced", "estimated", "priced"]


def test_include_stream_usage_setting_is_validated() -> None:
    var = OTEL_LLMCOST_STREAM_INCLUDE_USAGE
    assert env_bool(var, {}) is False
    assert env_bool(var, {var.name: " TRUE "}) is True
    assert env_bool(var, {var.name: "0"}) is False
    with pytest.raises(ConfigError, match="OTEL_LLMCOST_STREAM_INCLUDE_USAGE='maybe'"):
        env_bool(var, {var.name: "maybe"})
    with pytest.raises(ConfigError, match="include_stream_usage"):
        OpenAIInstrumentor().instrument(tracer_provider=TracerProvider(), include_stream_usage="yes")
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry


@integration
def test_async_chat_and_async_streams(stack: Stack) -> None:
    async def calls() -> None:
        async with stack.async_client() as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=messages())
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=messages(), stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass
            async with await client.chat.completions.create(
                model="gpt-4o-mini", messages=messages(), stream=True
            ) as bare:
                async for _ in bare:
                    pass
            async for _ in await client.responses.create(model="gpt-4o-mini", input=PROMPT, stream=True):
                pass

    asyncio.run(calls())
    spans = stack.spans()
    assert [(s.attributes or {})["llm.cost.status"] for s in spans] == ["priced", "priced", "estimated", "priced"]
    reqs = stack.server.requests
    for span, req in zip(spans[:2], reqs[:2], strict=True):
        assert_cost(stack, span, "gpt-4o-mini-2024-07-18", as_usage(chat_usage(req.body)))
    assert_cost(
        stack,
        spans[2],
        "gpt-4o-mini-2024-07-18",
        local_count("gpt-4o-mini", messages(), REPLY_TEXT),
        status="estimated",
    )
    assert_cost(stack, spans[3], "gpt-4o-mini-2024-07-18", as_usage(responses_usage(reqs[3].body)))


# --- errors --------------------------------------------------------------------------------------------


def _raised(call: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


@integration
@pytest.mark.parametrize("model", ["rate-limited", "server-error", MALFORMED_MODEL])
def test_errors_propagate_unchanged_and_are_counted(server: FakeOpenAIServer, model: str) -> None:
    def call(client: openai.OpenAI) -> Callable[[], object]:
        return lambda: client.chat.completions.create(model=model, messages=messages())

    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as plain:
        baseline = _raised(call(plain))  # what the application sees without us
    with instrumented(server) as stack, stack.client() as client:
        exc = _raised(call(client))
        span = stack.only_span()
        points = stack.requests()
    assert type(exc) is type(baseline) and str(exc) == str(baseline)
    if model in ERROR_MODELS:
        assert isinstance(exc, openai.APIStatusError) and exc.status_code == ERROR_MODELS[model][0]
    a = span.attributes or {}
    error_type = f"{type(exc).__module__.split('.')[0]}.{type(exc).__qualname__}"
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == error_type
    assert a["llm.cost.status"] == "no_usage" and not any(k.endswith("_usd") for k in a)
    assert [(p["status"], p["cost_status"], n) for p, n in points] == [("error", "no_usage", 1)]


@integration
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_stream_cut_midway_fails_the_span_with_an_estimate_of_what_was_streamed(stack: Stack, api: str) -> None:
    seen: list[str] = []
    with stack.client() as client, pytest.raises(openai.APIConnectionError):
        if api == "chat":
            for chunk in client.chat.completions.create(model=CUT_STREAM_MODEL, messages=messages(), stream=True):
                seen += [c.delta.content or "" for c in chunk.choices]
        else:
            for event in client.responses.create(model=CUT_STREAM_MODEL, input=PROMPT, stream=True):
                seen += [event.delta] if event.type == "response.output_text.delta" else []
    streamed = "".join(seen)
    assert streamed and len(seen) >= CUT_AFTER_CHUNKS - 1 and streamed != REPLY_TEXT
    span = stack.only_span()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "openai.APIConnectionError"
    if api == "chat":
        expected = local_count("gpt-4o-mini-2024-07-18", messages(), streamed)
    else:  # Responses input: the text alone, one message of framing
        enc = _tokens.encoding_for("gpt-4o-mini")
        expected = Usage(len(enc.encode(PROMPT)) + 6, len(enc.encode(streamed)))
    total = assert_cost(stack, span, "gpt-4o-mini-2024-07-18", expected, status="estimated")
    assert stack.recorder.total_cost() == total
    assert [(p["status"], p["cost_status"]) for p, _ in stack.requests()] == [("error", "estimated")]


# --- endpoints and providers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "provider", "host", "port"),
    [
        ("https://api.openai.com/v1", "openai", "api.openai.com", None),
        ("https://api.groq.com/openai/v1", "groq", "api.groq.com", None),
        ("https://openrouter.ai/api/v1", "openrouter", "openrouter.ai", None),
        ("https://api.together.xyz/v1", "together", "api.together.xyz", None),
        ("https://api.deepseek.com", "deepseek", "api.deepseek.com", None),
        ("https://api.x.ai/v1", "x_ai", "api.x.ai", None),
        ("https://api.mistral.ai/v1", "mistral_ai", "api.mistral.ai", None),
        ("http://localhost:8000/v1", "openai", "localhost", 8000),  # vLLM, Ollama, a gateway...
        (
            "https://myres.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21",
            "azure.ai.openai",
            "myres.openai.azure.com",
            None,
        ),
    ],
)
def test_provider_is_inferred_from_the_base_url_host(base_url: str, provider: str, host: str, port: int | None) -> None:
    client = openai.OpenAI(base_url=base_url, api_key=API_KEY)
    assert endpoint_of(client) == (provider, host, port)
    assert provider_for_host(host) == provider


def test_azure_clients_and_urls_yield_the_host_alone() -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint="https://myres.openai.azure.com", api_key=API_KEY, api_version="2024-10-21"
    )
    assert endpoint_of(azure) == ("azure.ai.openai", "myres.openai.azure.com", None)
    # an AzureOpenAI client behind a host no catalog knows (a private endpoint, a proxy) is Azure all the same
    proxied = openai.AzureOpenAI(azure_endpoint="http://10.0.0.7:8080", api_key=API_KEY, api_version="2024-10-21")
    assert endpoint_of(proxied) == ("azure.ai.openai", "10.0.0.7", 8080)
    # a URL given as text, with credentials and a key in the query string: the host and port only
    url = f"https://user:{API_KEY}@MyRes.openai.azure.com:8443/openai?api-key={API_KEY}"
    assert endpoint_of(types.SimpleNamespace(base_url=url)) == ("azure.ai.openai", "myres.openai.azure.com", 8443)
    assert endpoint_of(None) == ("openai", None, None)
    assert endpoint_of(types.SimpleNamespace(base_url="http://gateway:port/v1")) == ("openai", "gateway", None)
    # and the pricer bills an Azure host as Azure
    usage = Usage(1000, 100)
    azure_cost = default_pricer().price("openai", "gpt-4o", usage, server_address="myres.openai.azure.com")
    assert azure_cost.provider == "azure"


def everything_on(stack: Stack) -> list[str]:
    """Every string on the spans (names, attributes, events, status) and on the metric points."""
    seen: list[str] = []
    for span in stack.spans():
        seen += [span.name, span.status.description or ""]
        seen += strings(dict(span.attributes or {}))
        for event in span.events:
            seen += [event.name, *strings(dict(event.attributes or {}))]
    for name, points in stack.metrics().items():
        seen.append(name)
        for p in points:
            seen += strings(dict(p.attributes or {}))
    return seen


@integration
def test_azure_client_is_priced_as_azure_and_its_key_never_leaks(stack: Stack) -> None:
    query_key = "query-key-DO-NOT-LEAK-5678"
    with openai.AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{stack.server.port}",
        api_key=API_KEY,
        api_version="2024-10-21",
        default_query={"api-key": query_key},
        max_retries=0,
    ) as client:
        client.chat.completions.create(model="gpt-4o", messages=messages())
        list(client.chat.completions.create(model="gpt-4o", messages=messages(), stream=True))
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="rate-limited", messages=messages())
    first = stack.server.requests[0]
    assert first.path == "/openai/deployments/gpt-4o/chat/completions" and first.headers["api-key"] == API_KEY
    assert f"api-key={query_key}" in first.target
    spans = stack.spans()
    a = spans[0].attributes or {}
    assert a["gen_ai.provider.name"] == "azure.ai.openai" and a["server.address"] == "127.0.0.1"
    assert a["llm.cost.pricing.provider"] == "azure"
    assert_cost(stack, spans[0], "gpt-4o-2024-08-06", as_usage(chat_usage(first.body)))
    assert [p["provider"] for p, _ in stack.requests()] == ["azure"] * 3
    leaked = [s for s in everything_on(stack) if API_KEY in s or query_key in s or "api-version" in s]
    assert len(spans) == 3 and not leaked


# --- sampling, content, secrets -------------------------------------------------------------------------


@integration
@pytest.mark.parametrize("sampler", [ParentBased(TraceIdRatioBased(0.1)), ALWAYS_OFF], ids=["ratio-0.1", "always-off"])
def test_every_call_is_counted_whatever_the_sampler(server: FakeOpenAIServer, sampler: Sampler) -> None:
    calls = 50
    with instrumented(server, sampler=sampler) as stack, stack.client() as client:
        for i in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages(f"{PROMPT} #{i}" * (1 + i % 3)))
        expected = sum(
            (
                stack.pricer.price("openai", "gpt-4o-mini-2024-07-18", as_usage(chat_usage(r.body))).total_usd
                or Decimal(0)
            )
            for r in server.requests
        )
        assert len(stack.spans()) < calls  # sampled out: only metrics can add these calls up
        assert stack.requests() == [
            (
                {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "operation": "chat",
                    "status": "ok",
                    "cost_status": "priced",
                },
                calls,
            )
        ]
        (cost,) = stack.metrics()["llm.cost.usd"]
        assert stack.recorder.total_cost() == expected
        assert Decimal(repr(cost.value)) == expected


@integration
def test_no_content_and_no_api_key_on_spans_or_metrics(stack: Stack) -> None:
    with stack.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages(SECRET))
        list(client.chat.completions.create(model="gpt-4o-mini", messages=messages(SECRET), stream=True))
        client.responses.create(model="gpt-4o-mini", input=SECRET, instructions="You are terse.")
        client.embeddings.create(model="text-embedding-3-small", input=SECRET)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="rate-limited", messages=messages(SECRET))
    assert {r.headers["authorization"] for r in stack.server.requests} == {f"Bearer {API_KEY}"}
    seen = everything_on(stack)
    assert len(stack.spans()) == 5 and seen
    assert not [s for s in seen if "PINEAPPLE" in s or "You are terse" in s or "fake OpenAI" in s or API_KEY in s]
    assert not [
        k for s in stack.spans() for k in (s.attributes or {}) if k.startswith(("gen_ai.input", "gen_ai.output"))
    ]


@integration
def test_uninstrument_restores_the_sdk(server: FakeOpenAIServer) -> None:
    create = openai.resources.chat.completions.Completions.create
    with instrumented(server) as stack:
        assert openai.resources.chat.completions.Completions.create is not create
    assert openai.resources.chat.completions.Completions.create is create
    with stack.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages())
    assert not stack.spans()


# --- beside the official OpenTelemetry OpenAI instrumentation ------------------------------------------


@integration
@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-inner", "ours-outer"])
def test_with_the_official_instrumentation_each_call_is_counted_once(
    server: FakeOpenAIServer, ours_first: bool
) -> None:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OfficialInstrumentor

    exporter = InMemorySpanExporter()
    recorder, pricer = Recorder(), default_pricer()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(exporter), pricer=pricer, recorder=recorder))
    instrumentors = [OpenAIInstrumentor(), OfficialInstrumentor()]
    if not ours_first:
        instrumentors.reverse()
    with installed(recorder, pricer):
        for instrumentor in instrumentors:
            instrumentor.instrument(tracer_provider=provider)
        try:
            with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages())
                list(
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=messages(), stream=True, stream_options={"include_usage": True}
                    )
                )
                client.embeddings.create(model="text-embedding-3-small", input=PROMPT)
                client.responses.create(model="gpt-4o-mini", input=PROMPT)
        finally:
            for instrumentor in reversed(instrumentors):  # unwrap outermost first
                instrumentor.uninstrument()
            provider.shutdown()
    reqs = server.requests
    expected = [as_usage(chat_usage(reqs[0].body)), as_usage(chat_usage(reqs[1].body))]
    expected += [Usage(embedding_usage(reqs[2].body)), as_usage(responses_usage(reqs[3].body))]
    models = ["gpt-4o-mini-2024-07-18"] * 2 + ["text-embedding-3-small", "gpt-4o-mini-2024-07-18"]
    total = sum((pricer.price("openai", m, u).total_usd or Decimal(0)) for m, u in zip(models, expected, strict=True))

    spans = exporter.get_finished_spans()
    ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == SCOPE]
    theirs = [s for s in spans if s not in ours]
    assert len(ours) == 4 and len(theirs) == 4
    assert all((s.attributes or {})["llm.cost.status"] == "priced" for s in ours)
    # passed on unpriced, each marked as covered by our span of the same call (its parent or child)
    assert [[k for k in (s.attributes or {}) if k.startswith("llm.cost.")] for s in theirs] == [
        ["llm.cost.covered_by"]
    ] * 4
    pairs = {(s.parent.span_id if s.parent else None, s.context.span_id) for s in spans}
    for s in theirs:
        covering = int(str((s.attributes or {})["llm.cost.covered_by"]), 16)
        assert covering in {o.context.span_id for o in ours}
        assert (covering, s.context.span_id) in pairs or (s.context.span_id, covering) in pairs
    assert sum(n for _, n in recorder.snapshot().requests) == 4
    assert recorder.total_cost() == total


def test_openrouter_reported_cost_is_the_price() -> None:
    from otel_llmcost.instrumentation._openai_read import chat_usage as _chat_usage

    usage = types.SimpleNamespace(
        prompt_tokens=120, completion_tokens=30, cost=0.000123,
        prompt_tokens_details=types.SimpleNamespace(cached_tokens=64), completion_tokens_details=None,
    )  # fmt: skip
    assert _chat_usage(usage, "openrouter") == (Usage(120, 30, cache_read_tokens=64), Decimal("0.000123"))
    assert _chat_usage(usage, "openai") == (Usage(120, 30, cache_read_tokens=64), None)
    deepseek = types.SimpleNamespace(prompt_tokens=100, completion_tokens=5, prompt_cache_hit_tokens=40)
    assert _chat_usage(deepseek, "deepseek") == (Usage(100, 5, cache_read_tokens=40), None)
