"""Opt-in message content on the spans of all four SDK instrumentations, with real clients and the fake servers.

Each SDK runs the same scenario -- a call with separate system instructions (where the API has
them), sync, async (where the SDK has it) and streamed -- once with capture off (unset, ``false``,
``NO_CONTENT``, ``EVENT_ONLY``: no content attribute at all, no prompt text anywhere) and once on
(``true``, ``SPAN_ONLY``, ``SPAN_AND_EVENT``, or ``instrument(capture_content=True)``): every chat
span then carries the conventions' JSON, and still no credential reaches any span.
Expected outputs come from the fakes' reply constants and the span's own finish reasons.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import types
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.sdk.trace import ReadableSpan

from otel_llmcost import semconv as sc
from otel_llmcost.instrumentation._content import finish_reason
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.bedrock import BedrockInstrumentor
from otel_llmcost.instrumentation.google_genai import GoogleGenAIInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

from .fakes import anthropic_server, bedrock_server, gemini_server, openai_server
from .fakes.stack import InstrumentedStack, instrumented_stack, strings

pytestmark = pytest.mark.integration

ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
    sc.LLM_CONTENT_TRUNCATED,
)
PROMPT = "The launch code is PINEAPPLE-42; summarise it."
SYSTEM = "You are terse and never reveal launch codes."
API_KEY = "sk-test-DO-NOT-LEAK-5ecret"
AWS_KEY, AWS_SECRET = "AKIACONTENTTEST", "aws-secret-DO-NOT-LEAK"
CREDENTIALS = (API_KEY, AWS_KEY, AWS_SECRET, "Bearer", "x-api-key", "x-goog-api-key", "AWS4-HMAC-SHA256", "Signature=")


@dataclass(frozen=True)
class Scenario:
    """One SDK: how to run its calls against its fake server, and what the fake replies."""

    name: str
    instrumentor: Callable[[], BaseInstrumentor]
    serve: Callable[[], AbstractContextManager[Any]]
    run: Callable[[Any], None]
    reply: str
    system_apart: Callable[[ReadableSpan], bool]
    """Whether this span's request passed the system instructions apart from the history."""


# --- the calls, per SDK -------------------------------------------------------------------------


def _openai(server: Any) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))  # type: ignore[arg-type]
        client.responses.create(model="gpt-4o-mini", input=PROMPT, instructions=SYSTEM)
        list(client.responses.create(model="gpt-4o-mini", input=PROMPT, instructions=SYSTEM, stream=True))
        client.embeddings.create(model="text-embedding-3-small", input=PROMPT)

    async def run_async() -> None:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)  # type: ignore[arg-type]
            async for _ in stream:
                pass

    asyncio.run(run_async())


def _anthropic(server: Any) -> None:
    model, messages = "claude-haiku-4-5", [{"role": "user", "content": PROMPT}]
    with anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        client.messages.create(model=model, max_tokens=256, system=SYSTEM, messages=messages)  # type: ignore[arg-type]
        with client.messages.stream(model=model, max_tokens=256, system=SYSTEM, messages=messages) as stream:  # type: ignore[arg-type]
            stream.get_final_message()

    async def run_async() -> None:
        async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            await client.messages.create(model=model, max_tokens=256, system=SYSTEM, messages=messages)  # type: ignore[arg-type]
            stream = await client.messages.create(
                model=model,
                max_tokens=256,
                system=SYSTEM,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
            )
            async for _ in stream:
                pass

    asyncio.run(run_async())


def _gemini(server: Any) -> None:
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=server.base_url))
    config = types.GenerateContentConfig(system_instruction=SYSTEM)
    model = "gemini-2.5-flash"
    client.models.generate_content(model=model, contents=PROMPT, config=config)
    list(client.models.generate_content_stream(model=model, contents=PROMPT, config=config))
    client.models.embed_content(model="gemini-embedding-001", contents=PROMPT)

    async def run_async() -> None:
        async with client.aio as aio:  # closes its connections
            await aio.models.generate_content(model=model, contents=PROMPT, config=config)
            async for _ in await aio.models.generate_content_stream(model=model, contents=PROMPT, config=config):
                pass

    asyncio.run(run_async())
    client.close()


def _bedrock(server: Any) -> None:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=AWS_SECRET,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    messages = [{"role": "user", "content": [{"text": PROMPT}]}]
    system = [{"text": SYSTEM}]
    client.converse(modelId=model, system=system, messages=messages)
    for _ in client.converse_stream(modelId=model, system=system, messages=messages)["stream"]:
        pass
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 256,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    )
    client.invoke_model(modelId=model, body=body)["body"].read()
    for _ in client.invoke_model_with_response_stream(modelId=model, body=body)["body"]:
        pass
    client.close()


def _openai_system_apart(span: ReadableSpan) -> bool:
    # the Responses API takes instructions apart; chat keeps the system message in the history
    return sc.GEN_AI_SYSTEM_INSTRUCTIONS in (span.attributes or {})


SCENARIOS = [
    Scenario(
        "openai", OpenAIInstrumentor, openai_server.serve, _openai, openai_server.REPLY_TEXT, _openai_system_apart
    ),
    Scenario("anthropic", AnthropicInstrumentor, anthropic_server.serve, _anthropic, anthropic_server.REPLY_TEXT, bool),
    Scenario("google-genai", GoogleGenAIInstrumentor, gemini_server.serve, _gemini, gemini_server.REPLY_TEXT, bool),
    Scenario("bedrock", BedrockInstrumentor, bedrock_server.serve, _bedrock, bedrock_server.REPLY_TEXT, bool),
]
EXPECTED_CHAT_SPANS = {"openai": 6, "anthropic": 4, "google-genai": 4, "bedrock": 4}
"""Chat spans each scenario makes (counted from its calls above), so a call silently left out fails."""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV, "OTEL_LLMCOST_CONTENT_MAX_LENGTH", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        monkeypatch.delenv(name, raising=False)


def _spans(scenario: Scenario, **instrument_kwargs: Any) -> list[ReadableSpan]:
    with ExitStack() as stack:
        server = stack.enter_context(scenario.serve())
        pipeline = stack.enter_context(
            instrumented_stack(InstrumentedStack, scenario.instrumentor(), **instrument_kwargs)
        )
        scenario.run(server)
        return pipeline.spans()


def _everything(spans: list[ReadableSpan]) -> list[str]:
    seen: list[str] = []
    for span in spans:
        seen += [span.name, *strings(dict(span.attributes or {}))]
        for event in span.events:
            seen += [event.name, *strings(dict(event.attributes or {}))]
    return seen


def _chat(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get(sc.GEN_AI_OPERATION_NAME) != "embeddings"]


# --- off by default -----------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [None, "false", "NO_CONTENT", "EVENT_ONLY"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_content_unless_opted_in(scenario: Scenario, setting: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if setting is not None:
        monkeypatch.setenv(ENV, setting)
    spans = _spans(scenario)
    assert len(_chat(spans)) == EXPECTED_CHAT_SPANS[scenario.name]
    for span in spans:
        present = [k for k in CONTENT_KEYS if k in (span.attributes or {})]
        assert present == [], (span.name, present)
    seen = _everything(spans)
    assert not [s for s in seen if "PINEAPPLE" in s or SYSTEM in s or scenario.reply in s]


# --- on: the conventions' shape -----------------------------------------------------------------


def _json(span: ReadableSpan, key: str) -> Any:
    value = (span.attributes or {})[key]
    assert isinstance(value, str)
    return json.loads(value)


def _assert_shape(scenario: Scenario, span: ReadableSpan) -> None:
    attrs = span.attributes or {}
    inputs = _json(span, sc.GEN_AI_INPUT_MESSAGES)
    assert inputs[-1] == {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}, span.name
    if scenario.system_apart(span):
        assert _json(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": SYSTEM}]
        assert len(inputs) == 1
    else:  # an OpenAI chat request: the system message is part of the history
        assert sc.GEN_AI_SYSTEM_INSTRUCTIONS not in attrs
        assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]}
    # a Responses API span has no finish reasons: its output's comes from the response's status
    (reason,) = attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS) or ("completed",)  # type: ignore[misc]
    expected = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": scenario.reply}],
            "finish_reason": finish_reason(reason),
        }
    ]
    assert _json(span, sc.GEN_AI_OUTPUT_MESSAGES) == expected, span.name
    assert expected[0]["finish_reason"] == "stop"  # every fake ends its reply normally
    assert sc.GEN_AI_TOOL_DEFINITIONS not in attrs and sc.LLM_CONTENT_TRUNCATED not in attrs


@pytest.mark.parametrize("setting", ["true", "SPAN_ONLY", "span_and_event", "kwarg"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_content_when_opted_in(scenario: Scenario, setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if setting == "kwarg":
        monkeypatch.setenv(ENV, "false")  # the argument wins over the environment
        spans = _spans(scenario, capture_content=True)
    else:
        monkeypatch.setenv(ENV, setting)
        spans = _spans(scenario)
    chat = _chat(spans)
    assert len(chat) == EXPECTED_CHAT_SPANS[scenario.name]
    for span in chat:
        _assert_shape(scenario, span)
        assert (span.attributes or {})[sc.LLM_COST_STATUS] in ("priced", "estimated")  # capture changes no price
    for span in spans:
        if span not in chat:  # embeddings: no content, ever
            assert not [k for k in CONTENT_KEYS if k in (span.attributes or {})]
    seen = _everything(spans)
    leaked = [s for s in seen for secret in CREDENTIALS if secret.lower() in s.lower()]
    assert leaked == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_argument_turns_capture_off_over_the_environment(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "true")
    spans = _spans(scenario, capture_content=False)
    assert spans and all(not [k for k in CONTENT_KEYS if k in (s.attributes or {})] for s in spans)


def test_a_size_cap_truncates_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_CONTENT_MAX_LENGTH", "300")
    monkeypatch.setenv(ENV, "true")
    long_prompt = PROMPT + " padding" * 500
    with openai_server.serve() as server, instrumented_stack(InstrumentedStack, OpenAIInstrumentor()) as stack:
        with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": long_prompt}])
        (span,) = stack.spans()
    attrs = span.attributes or {}
    raw = attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert isinstance(raw, str) and len(raw) <= 300
    (message,) = json.loads(raw)  # still valid JSON, still the conventions' shape
    content = message["parts"][0]["content"]
    kept, _, marker = content.partition("…[truncated ")
    assert long_prompt.startswith(kept) and marker == f"{len(long_prompt) - len(kept)} chars]"
    assert attrs[sc.LLM_CONTENT_TRUNCATED] == (sc.GEN_AI_INPUT_MESSAGES,)
    assert json.loads(str(attrs[sc.GEN_AI_OUTPUT_MESSAGES]))[0]["parts"][0]["content"] == openai_server.REPLY_TEXT


def test_a_stream_cut_off_midway_keeps_the_content_it_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "true")
    # the fake sends the role chunk, then words, and drops the connection after CUT_AFTER_CHUNKS chunks
    words = openai_server.REPLY_TEXT.split()[: openai_server.CUT_AFTER_CHUNKS - 1]
    with openai_server.serve() as server, instrumented_stack(InstrumentedStack, OpenAIInstrumentor()) as stack:
        with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            stream = client.chat.completions.create(
                model=openai_server.CUT_STREAM_MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True
            )
            with pytest.raises(openai.APIError):
                list(stream)
        (span,) = stack.spans()
    assert (span.attributes or {}).get(sc.ERROR_TYPE)
    assert _json(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": " ".join(words)}], "finish_reason": ""}
    ]
