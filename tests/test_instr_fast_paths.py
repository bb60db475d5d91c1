"""The instrumentation's fast paths give exactly what the general paths they stand in for give.

Each fast path (attributes written straight into an SDK span, pydantic fields read without a
miss, the per-chunk stream reader, the endpoint cache) is checked against the slow one it
replaces, on inputs both can take, and against the SDK where the SDK decides (limits, cleaning).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from opentelemetry import attributes as otel_attributes
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from otel_llmcost import semconv as sc
from otel_llmcost.instrumentation._call import set_span_attributes
from otel_llmcost.instrumentation._openai_read import ChatStream, chat_usage, model_field
from otel_llmcost.instrumentation.openai import _endpoint, endpoint_of
from otel_llmcost.pricing import Usage

CLEAN = {
    sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
    sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    sc.LLM_COST_TOTAL_USD: 0.0042,
    sc.GEN_AI_REQUEST_STREAM: True,
    sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop", "length"),
}


@pytest.fixture()
def cleanings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Count the SDK's attribute cleaning calls (the work the fast path skips)."""
    seen: list[Any] = []
    real = otel_attributes._clean_attribute_value

    def counting(value: Any, limit: Any) -> Any:
        seen.append(value)
        return real(value, limit)

    monkeypatch.setattr(otel_attributes, "_clean_attribute_value", counting)
    yield seen


def _pair(limits: SpanLimits | None = None) -> tuple[Any, Any]:
    """Two identical recording spans: one for the SDK's set_attributes, one for ours."""
    tracer = TracerProvider(span_limits=limits or SpanLimits()).get_tracer("t")
    first = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_USAGE_INPUT_TOKENS: 1}  # the second is set again
    return tracer.start_span("sdk", attributes=first), tracer.start_span("ours", attributes=first)


def _stored(span: Any) -> tuple[list[tuple[str, Any]], int]:
    return list(span._attributes._dict.items()), span._attributes.dropped


def test_clean_values_skip_the_sdk_cleaning_and_store_what_it_would(cleanings: list[Any]) -> None:
    sdk, ours = _pair()
    start = len(cleanings)
    sdk.set_attributes(CLEAN)
    after_sdk = len(cleanings)
    set_span_attributes(ours, CLEAN)
    assert after_sdk - start > len(CLEAN) and len(cleanings) == after_sdk  # ours cleaned nothing
    # the same values in the same order: a key set again moves to where the SDK puts it
    assert _stored(ours) == _stored(sdk)
    keys = [key for key, _ in _stored(ours)[0]]
    assert keys.index(sc.GEN_AI_USAGE_INPUT_TOKENS) > keys.index(sc.GEN_AI_RESPONSE_MODEL)


@pytest.mark.parametrize(
    "value",
    [["stop"], None, ("stop", 3), b"raw", {"nested": 1}],
    ids=["list", "none", "mixed-tuple", "bytes", "mapping"],
)
def test_values_the_sdk_would_clean_take_its_path(value: Any, cleanings: list[Any]) -> None:
    sdk, ours = _pair()
    attrs = {**CLEAN, sc.GEN_AI_RESPONSE_ID: value}
    start = len(cleanings)
    sdk.set_attributes(attrs)
    by_sdk = len(cleanings) - start
    set_span_attributes(ours, attrs)
    assert by_sdk > 0 and len(cleanings) - start == 2 * by_sdk
    assert _stored(ours) == _stored(sdk)


@pytest.mark.parametrize(
    "limits",
    [SpanLimits(max_span_attributes=4), SpanLimits(max_span_attribute_length=5)],
    ids=["count-limit", "length-limit"],
)
def test_span_limits_are_applied_as_the_sdk_applies_them(limits: SpanLimits) -> None:
    sdk, ours = _pair(limits)
    sdk.set_attributes(CLEAN)
    set_span_attributes(ours, CLEAN)
    assert _stored(ours) == _stored(sdk)
    stored, dropped = _stored(ours)
    assert dropped > 0 or any(v == "gpt-4" for _, v in stored)  # the limit did bite


def test_an_ended_span_is_left_alone_with_the_sdk_warning(caplog: pytest.LogCaptureFixture) -> None:
    _, ours = _pair()
    ours.end()
    before = _stored(ours)
    with caplog.at_level(logging.WARNING):
        set_span_attributes(ours, CLEAN)
    assert _stored(ours) == before
    assert "Setting attribute on ended span" in caplog.text


def test_a_non_recording_span_takes_attributes_quietly() -> None:
    span = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("x")
    set_span_attributes(span, CLEAN)
    assert not span.is_recording()


# --- reading openai models ------------------------------------------------------------------------


def test_model_field_reads_declared_extra_and_missing_fields_as_getattr_does() -> None:
    usage = CompletionUsage.model_validate(
        {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_cache_hit_tokens": 7}
    )
    for name in ("prompt_tokens", "prompt_cache_hit_tokens", "cost", "prompt_tokens_details"):
        assert model_field(usage, name) == getattr(usage, name, None)
    assert model_field(usage, "prompt_cache_hit_tokens") == 7 and model_field(usage, "cost") is None
    plain = types.SimpleNamespace(cost=0.5)
    assert model_field(plain, "cost") == 0.5 and model_field(plain, "other") is None
    assert model_field(None, "cost") is None


def test_usage_extras_of_other_providers_are_read_from_sdk_models() -> None:
    # what the SDK parses a DeepSeek or OpenRouter reply into: their fields are pydantic extras
    deepseek = CompletionUsage.model_validate(
        {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105, "prompt_cache_hit_tokens": 40}
    )
    assert chat_usage(deepseek, "deepseek") == (Usage(100, 5, cache_read_tokens=40), None)
    routed = CompletionUsage.model_validate(
        {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11, "cost": 0.25}
    )
    usage, cost = chat_usage(routed, "openrouter")
    assert usage == Usage(10, 1) and cost is not None and float(cost) == 0.25


CHUNKS: list[dict[str, Any]] = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "Hello"}}, {"index": 1, "delta": {"refusal": "No"}}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"name": "lookup", "arguments": '{"q":1}'}}]},
            }
        ]
    },
    {
        "choices": [
            {"index": 1, "delta": {}, "finish_reason": "stop"},
            {"index": 0, "delta": {}, "finish_reason": "length"},
        ]
    },
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
]


def _namespace(value: Any) -> Any:
    """The chunk as bare objects holding only the fields given: the accumulator's general path."""
    if isinstance(value, dict):
        return types.SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


def test_stream_reader_reads_sdk_chunks_as_its_general_path_reads_any_chunk() -> None:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    sdk, general = ChatStream(None), ChatStream(None)  # type: ignore[arg-type]  # feed() needs no call
    for raw in CHUNKS:
        sdk.feed(ChatCompletionChunk.model_validate({**base, **raw}))
        general.feed(_namespace({**base, **raw}))
    assert sdk.text == general.text == ["", "Hello", "No", "lookup", '{"q":1}']
    assert sdk.finish == general.finish == {0: "length", 1: "stop"}
    assert (sdk.model, sdk.id) == (general.model, general.id) == ("gpt-4o", "chatcmpl-1")
    assert sdk.usage is not None and sdk.usage.prompt_tokens == general.usage.prompt_tokens == 9


# --- the endpoint cache ---------------------------------------------------------------------------


def test_endpoint_follows_a_client_whose_base_url_changes() -> None:
    client = openai.OpenAI(base_url="https://api.groq.com/openai/v1", api_key="k")
    first = endpoint_of(client)
    assert first == _endpoint(str(client.base_url), False) and endpoint_of(client) == first
    client.base_url = "https://api.deepseek.com/v1"  # type: ignore[assignment]
    second = endpoint_of(client)
    assert second == _endpoint(str(client.base_url), False) and second != first
    azure = openai.AzureOpenAI(azure_endpoint="https://example.test", api_key="k", api_version="2024-06-01")
    assert endpoint_of(azure) == _endpoint(str(azure.base_url), True)
