"""The ``openai`` SDK's helpers: ``parse()`` raising after a billed answer, and stream helpers left early.

Real ``openai`` clients against the fake server. Expected costs come from the usage the server
reported (or the tokens counted locally for an estimate) priced by the catalog's :class:`Pricer`.
Stream spans are checked with the garbage collector off: they must end when the helper is closed
or its ``with`` block exits, not when a cycle collection finds the stream.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pydantic
import pytest
from opentelemetry.trace import StatusCode

from otel_llmcost import Usage
from otel_llmcost.instrumentation import _tokens

from .fakes.openai_server import (
    FINISH_REASON_MODELS,
    REPLY_TEXT,
    FakeOpenAIServer,
    chat_usage,
    response_model,
    responses_usage,
    serve,
)
from .test_instr_openai import (
    API_KEY,
    GENAI_ENV,
    PROMPT,
    Stack,
    as_usage,
    assert_cost,
    assert_usage,
    instrumented,
    local_count,
    messages,
)

integration = pytest.mark.integration
MODEL = "gpt-4o-mini"
SNAPSHOT = response_model(MODEL)


class Answer(pydantic.BaseModel):
    """The structured output asked for; the fake's plain-text reply does not validate as it."""

    text: str


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_LLMCOST_STREAM_INCLUDE_USAGE", *GENAI_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeOpenAIServer) -> Iterator[Stack]:
    with instrumented(server) as s:
        yield s


@contextmanager
def no_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector off: a span ending in the block did not wait for it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run(
    is_async: bool,
    sync: Callable[[openai.OpenAI], Any],
    aio: Callable[[openai.AsyncOpenAI], Awaitable[Any]],
    server: FakeOpenAIServer,
) -> Any:
    """Call *sync* with a sync client or *aio* with an async one (on *server*); return what it returns."""
    if not is_async:
        with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            return sync(client)

    async def main() -> Any:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            return await aio(client)

    return asyncio.run(main())


def raised(fn: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def error_type(exc: BaseException) -> str:
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__qualname__}"


# --- gap 1: parse() raising after a billed answer ------------------------------------------------------

# (api, request model, the exception the SDK raises); the fake's reply is plain text, not an Answer
PARSE_CASES = [
    ("chat", "length-limited", openai.LengthFinishReasonError),
    ("chat", "content-filtered", openai.ContentFilterFinishReasonError),
    ("chat", MODEL, pydantic.ValidationError),
    ("beta.chat", "length-limited", openai.LengthFinishReasonError),
    ("responses", MODEL, pydantic.ValidationError),
]


def parse_call(api: str, model: str, is_async: bool, server: FakeOpenAIServer) -> Callable[[], Any]:
    """A ``parse()`` call of *api* on a fresh client (sync or async), as a thunk."""

    def sync(client: openai.OpenAI) -> Any:
        if api == "responses":
            return client.responses.parse(model=model, input=PROMPT, text_format=Answer)
        owner = client.beta.chat if api == "beta.chat" else client.chat
        return owner.completions.parse(model=model, messages=messages(), response_format=Answer)

    async def aio(client: openai.AsyncOpenAI) -> Any:
        if api == "responses":
            return await client.responses.parse(model=model, input=PROMPT, text_format=Answer)
        owner = client.beta.chat if api == "beta.chat" else client.chat
        return await owner.completions.parse(model=model, messages=messages(), response_format=Answer)

    return lambda: run(is_async, sync, aio, server)


@integration
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("api", "model", "error"), PARSE_CASES)
def test_parse_raising_after_a_billed_answer_is_priced_and_failed(
    server: FakeOpenAIServer, api: str, model: str, error: type[BaseException], is_async: bool
) -> None:
    baseline = raised(parse_call(api, model, is_async, server))  # what the application sees without us
    with instrumented(server) as stack:
        exc = raised(parse_call(api, model, is_async, server))
        span = stack.only_span()
        points = stack.requests()
        body = server.requests[-1].body
        total = stack.recorder.total_cost()

    # the application gets the SDK's own exception, unchanged
    assert type(exc) is type(baseline) and isinstance(exc, error) and str(exc) == str(baseline)
    if isinstance(exc, (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)):
        assert exc.completion is not None and baseline.completion is not None  # type: ignore[attr-defined]
        assert exc.completion.usage == baseline.completion.usage  # type: ignore[attr-defined]

    served = as_usage(responses_usage(body) if api == "responses" else chat_usage(body))
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == error_type(exc)
    assert a["gen_ai.response.model"] == SNAPSHOT
    if api != "responses":
        assert a["gen_ai.response.finish_reasons"] == (FINISH_REASON_MODELS.get(model, "stop"),)
    assert_usage(span, served)
    assert total == assert_cost(stack, span, SNAPSHOT, served)  # priced: the provider billed it
    assert [(p["status"], p["cost_status"], n) for p, n in points] == [("error", "priced", 1)]


@integration
def test_a_request_error_has_no_answer_to_price(stack: Stack) -> None:
    with stack.client() as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.parse(model="rate-limited", messages=messages(), response_format=Answer)
    a = stack.only_span().attributes or {}
    assert a["error.type"] == "openai.RateLimitError" and a["llm.cost.status"] == "no_usage"


@integration
def test_raw_parse_of_a_length_limited_answer_is_priced(stack: Stack) -> None:
    with stack.client() as client:
        raw = client.chat.completions.with_raw_response.parse(
            model="length-limited", messages=messages(), response_format=Answer
        )
        span = stack.only_span()  # ended when the raw response came back, before the app parses it
        with pytest.raises(openai.LengthFinishReasonError):
            raw.parse()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in a
    served = as_usage(chat_usage(stack.server.requests[0].body))
    assert stack.recorder.total_cost() == assert_cost(stack, span, SNAPSHOT, served)


# --- gap 2: stream helpers left early --------------------------------------------------------------------


def enter_helper(client: Any, api: str, include_usage: bool) -> Any:
    """The ``stream()`` helper's context manager for *api*."""
    if api == "responses":
        return client.responses.stream(model=MODEL, input=PROMPT)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    return client.chat.completions.stream(model=MODEL, messages=messages(), **extra)


def stop_here(api: str, event: Any, until: str) -> bool:
    """Whether the app stops reading at *event*: at the first text (*until* ``"text"``) or once usage came."""
    if until == "text":  # the first delta carrying text (the chat stream opens with an empty one)
        return bool(event.type in ("content.delta", "response.output_text.delta") and event.snapshot)
    if api == "responses":
        return bool(event.type == "response.completed")
    return bool(event.type == "chunk" and event.chunk.usage is not None)


def leave_early(stack: Stack, api: str, is_async: bool, until: str, how: str) -> tuple[str, list[int]]:
    """Read *api*'s stream helper until *until*, then leave (``how``: its ``with`` exit, or ``close()`` in it).

    Returns the text streamed when the application stopped, and the count of finished spans right
    before leaving and right after (the collector is off throughout).
    """
    counts: list[int] = []
    seen = ""

    def sync(client: openai.OpenAI) -> None:
        nonlocal seen
        with enter_helper(client, api, until == "usage") as helper:
            for event in helper:
                seen = str(event.snapshot) if "delta" in event.type else seen  # the text so far
                if stop_here(api, event, until):
                    break
            counts.append(len(stack.spans()))
            if how == "close":
                helper.close()
                counts.append(len(stack.spans()))
        if how == "exit":
            counts.append(len(stack.spans()))

    async def aio(client: openai.AsyncOpenAI) -> None:
        nonlocal seen
        async with enter_helper(client, api, until == "usage") as helper:
            async for event in helper:
                seen = str(event.snapshot) if "delta" in event.type else seen  # the text so far
                if stop_here(api, event, until):
                    break
            counts.append(len(stack.spans()))
            if how == "close":
                await helper.close()
                counts.append(len(stack.spans()))
        if how == "exit":
            counts.append(len(stack.spans()))

    with no_gc():
        run(is_async, sync, aio, stack.server)
    return seen, counts


HELPERS = pytest.mark.parametrize("api", ["chat", "responses"])
SYNC_ASYNC = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@integration
@HELPERS
@SYNC_ASYNC
@pytest.mark.parametrize("how", ["exit", "close"])
def test_stream_helper_left_early_ends_the_span_at_once_with_an_estimate(
    stack: Stack, api: str, is_async: bool, how: str
) -> None:
    seen, counts = leave_early(stack, api, is_async, "text", how)
    assert counts == [0, 1]  # open while the app holds the stream; ended by leaving, not by a collection
    assert seen and seen != REPLY_TEXT  # some text streamed, not all of it

    if api == "chat":
        expected = local_count(SNAPSHOT, messages(), seen)
    else:  # Responses input: the text alone, one message of framing (as in test_instr_openai)
        enc = _tokens.encoding_for(MODEL)
        assert enc is not None
        expected = Usage(len(enc.encode(PROMPT)) + 6, len(enc.encode(seen)))
    span = stack.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert_usage(span, expected)
    total = assert_cost(stack, span, SNAPSHOT, expected, status="estimated")
    assert stack.recorder.total_cost() == total
    assert [(p["status"], p["cost_status"]) for p, _ in stack.requests()] == [("ok", "estimated")]


@integration
@HELPERS
@SYNC_ASYNC
def test_stream_helper_left_after_the_usage_is_priced_exactly(stack: Stack, api: str, is_async: bool) -> None:
    # the usage came, but the stream is not exhausted: the span still ends when the app leaves
    _, counts = leave_early(stack, api, is_async, "usage", "exit")
    assert counts == [0, 1]
    body = stack.server.requests[0].body
    served = as_usage(responses_usage(body) if api == "responses" else chat_usage(body))
    span = stack.only_span()
    assert_usage(span, served)
    assert stack.recorder.total_cost() == assert_cost(stack, span, SNAPSHOT, served)
    assert [(p["status"], p["cost_status"]) for p, _ in stack.requests()] == [("ok", "priced")]


@integration
def test_the_stream_response_stays_the_sdks(stack: Stack) -> None:
    # the proxied response answers as the SDK's (headers, type checks), and closing it twice is harmless
    with stack.client() as client:
        stream = client.chat.completions.create(model=MODEL, messages=messages(), stream=True)
        response = stream.response
        assert response is stream.response and isinstance(response, type(stream.__wrapped__.response))
        assert response.headers["content-type"] == stream.__wrapped__.response.headers["content-type"]
        with no_gc():
            response.close()
            assert len(stack.spans()) == 1
            stream.close()
    assert (stack.only_span().attributes or {})["llm.cost.status"] == "estimated"
