"""Bedrock streams that end early: what each one's span reports and what it costs.

A real ``boto3`` bedrock-runtime client against :mod:`tests.fakes.bedrock_server`, as in
:mod:`tests.test_instr_bedrock` (whose stack and helpers this reuses). An InvokeModelWithResponseStream
with an Anthropic body that ends after ``message_start`` but before ``message_delta`` has exact input
counts and a placeholder output count (``1``): the output is counted locally from what was streamed
and the cost is ``estimated``. Expected values come from the server's usage, the tokenizer/estimate of
:mod:`otel_llmcost.instrumentation._tokens` and the catalog (through :class:`Pricer`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from opentelemetry.trace import StatusCode

from otel_llmcost.instrumentation._tokens import count_tokens, estimate_usage
from otel_llmcost.pricing import Usage

from .fakes.bedrock_server import REPLY_TEXT, THINKING_TEXT, FakeBedrockServer, serve, usage_for
from .fakes.stack import usd
from .test_instr_bedrock import (
    PROMPT,
    US_SONNET,
    Stack,
    _stack,
    anthropic_body,
    assert_priced,
    assert_usage,
    converse_messages,
    otel_usage,
    tokens,
)

pytestmark = pytest.mark.integration

CATALOG_SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture()
def server() -> Iterator[FakeBedrockServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeBedrockServer) -> Iterator[Stack]:
    yield from _stack(server)


def generated(chunks: list[dict[str, Any]]) -> str:
    """The text, thinking and tool input the application saw in Anthropic stream chunks."""
    deltas = [c["delta"] for c in chunks if c.get("type") == "content_block_delta"]
    return "".join(d.get("text") or d.get("thinking") or d.get("partial_json") or "" for d in deltas)


def read_until_cut(stream: Any) -> list[dict[str, Any]]:
    """Read an invoke stream the server cuts off; the chunks that arrived before the connection dropped."""
    chunks: list[dict[str, Any]] = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for event in stream:
            chunks.append(json.loads(event["chunk"]["bytes"]))
    stream.close()
    return chunks


def start_only(stack: Stack, seen: str) -> Usage:
    """The usage of a stream that ended before message_delta: message_start's input, the seen text's output."""
    served = otel_usage(usage_for(stack.server.requests[0].body))
    return dataclasses.replace(served, output_tokens=count_tokens(seen, US_SONNET))


def assert_estimated(stack: Stack, usage: Usage) -> dict[str, Any]:
    span = stack.only_span()
    a = dict(span.attributes or {})
    assert a["llm.cost.status"] == "estimated"
    assert a["llm.cost.pricing.provider"] == "bedrock" and a["llm.cost.pricing.model"] == CATALOG_SONNET
    assert tokens(a) == (usage.input_tokens, usage.output_tokens)
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cache_read_tokens
    assert a.get("gen_ai.usage.cache_creation.input_tokens", 0) == usage.cache_write_tokens
    expected = stack.pricer.price("aws.bedrock", US_SONNET, usage, at_ns=span.start_time).total_usd
    assert expected is not None and usd(a["llm.cost.total_usd"]) == expected
    assert stack.recorder.total_cost() == expected  # counted at the call site, once
    return a


# --- InvokeModelWithResponseStream, Anthropic body ---------------------------------------------------


@pytest.mark.parametrize("cut", [2, 4, 7])  # message_start + content_block_start + 0, 2 or 5 words
def test_invoke_stream_cut_before_message_delta_counts_the_output_streamed(stack: Stack, cut: int) -> None:
    stack.server.cut_stream_after = cut
    response = stack.client().invoke_model_with_response_stream(modelId=US_SONNET, body=anthropic_body())
    chunks = read_until_cut(response["body"])
    assert len(chunks) == cut and chunks[0]["type"] == "message_start"
    assert chunks[0]["message"]["usage"]["output_tokens"] == 1  # Anthropic's placeholder
    seen = generated(chunks)
    assert REPLY_TEXT.startswith(seen) and len(seen) < len(REPLY_TEXT)

    usage = start_only(stack, seen)
    assert usage.cache_write_1h_tokens and usage.cache_read_tokens  # message_start's cache counts kept
    a = assert_estimated(stack, usage)
    assert a["llm.usage.cache_creation_1h.input_tokens"] == usage.cache_write_1h_tokens
    assert a["gen_ai.response.id"] == chunks[0]["message"]["id"] and "gen_ai.response.finish_reasons" not in a
    span = stack.only_span()
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "urllib3.ProtocolError"
    assert stack.requests() == [(CATALOG_SONNET, "error", "estimated", 1)]


def test_invoke_stream_closed_by_the_app_before_message_delta_is_estimated(stack: Stack) -> None:
    response = stack.client().invoke_model_with_response_stream(modelId=US_SONNET, body=anthropic_body(ttl=None))
    stream = response["body"]
    events = iter(stream)
    chunks = [json.loads(next(events)["chunk"]["bytes"]) for _ in range(6)]
    stream.close()
    seen = generated(chunks)
    assert seen and chunks[-1]["type"] == "content_block_delta"

    usage = start_only(stack, seen)
    assert usage.output_tokens > 1  # the placeholder would have under-counted the words the app saw
    assert_estimated(stack, usage)
    span = stack.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert stack.requests() == [(CATALOG_SONNET, "ok", "estimated", 1)]


def test_invoke_stream_thinking_deltas_count_as_output_when_cut(stack: Stack) -> None:
    body = {**json.loads(anthropic_body()), "thinking": THINKING}
    stack.server.cut_stream_after = 6  # message_start, content_block_start, four thinking words
    response = stack.client().invoke_model_with_response_stream(modelId=US_SONNET, body=json.dumps(body))
    chunks = read_until_cut(response["body"])
    seen = generated(chunks)
    assert THINKING_TEXT.startswith(seen) and seen
    assert_estimated(stack, start_only(stack, seen))


def test_invoke_stream_cut_after_message_delta_is_priced_exactly(stack: Stack) -> None:
    client = stack.client()
    complete = [json.loads(e["chunk"]["bytes"]) for e in client.invoke_model_with_response_stream(
        modelId=US_SONNET, body=anthropic_body())["body"]]  # fmt: skip
    delta_at = next(i for i, c in enumerate(complete) if c["type"] == "message_delta")
    assert complete[-1]["type"] == "message_stop" and delta_at == len(complete) - 2

    stack.server.cut_stream_after = delta_at + 1  # message_delta arrives, message_stop (with metrics) not
    response = client.invoke_model_with_response_stream(modelId=US_SONNET, body=anthropic_body())
    chunks = read_until_cut(response["body"])
    assert chunks[-1]["type"] == "message_delta" and "usage" in chunks[-1]
    assert [c["type"] for c in chunks] == [c["type"] for c in complete[: delta_at + 1]]
    served = usage_for(stack.server.requests[-1].body)
    span = stack.spans()[1]
    assert_usage(span, served)  # message_delta's count is final: no estimate
    assert_priced(stack, span, US_SONNET, served, CATALOG_SONNET)
    assert (span.attributes or {})["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_invoke_stream_with_thinking_is_priced_from_the_final_counts(stack: Stack) -> None:
    body = {**json.loads(anthropic_body()), "thinking": THINKING}
    response = stack.client().invoke_model_with_response_stream(modelId=US_SONNET, body=json.dumps(body))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert generated(chunks) == THINKING_TEXT + REPLY_TEXT
    served = usage_for(stack.server.requests[0].body)
    span = stack.only_span()
    assert_usage(span, served)
    assert_priced(stack, span, US_SONNET, served, CATALOG_SONNET)


# --- ConverseStream: no usage before its metadata event, so both input and output are estimated -----


def test_converse_stream_cut_off_estimates_reasoning_and_text(stack: Stack) -> None:
    stack.server.cut_stream_after = 5  # messageStart and four reasoning words
    messages = converse_messages(ttl=None)
    response = stack.client().converse_stream(
        modelId=US_SONNET, messages=messages, additionalModelRequestFields={"thinking": THINKING}
    )
    seen_events = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        seen_events.extend(response["stream"])
    response["stream"].close()
    seen = "".join(e["contentBlockDelta"]["delta"]["reasoningContent"]["text"] for e in seen_events[1:])
    assert THINKING_TEXT.startswith(seen) and seen

    usage = estimate_usage(US_SONNET, [PROMPT], seen)
    assert usage.output_tokens > 0
    a = assert_estimated(stack, usage)
    assert a["error.type"] == "urllib3.ProtocolError"


def test_converse_stream_closed_by_the_app_is_estimated_like_invoke(stack: Stack) -> None:
    response = stack.client().converse_stream(modelId=US_SONNET, messages=converse_messages(ttl=None))
    stream = response["stream"]
    events = iter(stream)
    seen_events = [next(events) for _ in range(4)]
    stream.close()
    seen = "".join(e["contentBlockDelta"]["delta"]["text"] for e in seen_events[1:])
    assert REPLY_TEXT.startswith(seen) and seen
    assert_estimated(stack, estimate_usage(US_SONNET, [PROMPT], seen))
    assert stack.only_span().status.status_code is StatusCode.UNSET


def test_converse_stream_with_reasoning_is_priced_from_metadata(stack: Stack) -> None:
    response = stack.client().converse_stream(
        modelId=US_SONNET, messages=converse_messages(), additionalModelRequestFields={"thinking": THINKING}
    )
    events = list(response["stream"])
    reasoning = [
        e["contentBlockDelta"]["delta"].get("reasoningContent", {}) for e in events if "contentBlockDelta" in e
    ]
    assert "".join(r.get("text", "") for r in reasoning) == THINKING_TEXT
    served = usage_for(stack.server.requests[0].body)
    span = stack.only_span()
    assert_usage(span, served)
    assert_priced(stack, span, US_SONNET, served, CATALOG_SONNET)
