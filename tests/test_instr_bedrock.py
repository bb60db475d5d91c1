"""Our Bedrock instrumentation + a real ``boto3`` bedrock-runtime client + the fake Bedrock server.

The client talks to :mod:`tests.fakes.bedrock_server` on 127.0.0.1 with botocore retries off.
Expected costs come from the usage the server reported and the built-in catalog's per-token prices
(through :class:`Pricer`), never from hard-coded dollars.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import boto3
import botocore.client
import pytest
import urllib3
import wrapt
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, IncompleteReadError, ResponseStreamingError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost.instrumentation._tokens import estimate_usage
from otel_llmcost.instrumentation.bedrock import BedrockInstrumentor
from otel_llmcost.pricing import Usage

from .fakes.bedrock_server import (
    ERROR_MODELS,
    REPLY_TEXT,
    STREAM_ERROR_MODEL,
    FakeBedrockServer,
    ServedUsage,
    serve,
    usage_for,
)
from .fakes.stack import InstrumentedStack, instrumented_stack, strings, usd

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIATESTKEY"
SECRET_KEY = "test-secret"
US_SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
GLOBAL_SONNET = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
ORIGINAL_MAKE_API_CALL = botocore.client.BaseClient.__dict__["_make_api_call"]
PROMPT = "Summarise the quarterly report for the board, PINEAPPLE-42."


def converse_messages(text: str = PROMPT, ttl: str | None = None) -> list[dict[str, Any]]:
    cache: dict[str, Any] = {"type": "default", **({"ttl": ttl} if ttl else {})}
    return [{"role": "user", "content": [{"text": text}, {"cachePoint": cache}]}]


def anthropic_body(text: str = PROMPT, ttl: str | None = "1h") -> str:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    content = [{"type": "text", "text": text, "cache_control": control}]
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": content}],
        }
    )


@dataclass
class Stack(InstrumentedStack):
    server: FakeBedrockServer
    clients: list[Any] = field(default_factory=list)

    def client(self, service: str = "bedrock-runtime") -> Any:
        client = boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.server.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        self.clients.append(client)  # closed at teardown: no socket outlives its test
        return client

    def requests(self) -> list[tuple[str, str, str, int]]:
        snap = self.recorder.snapshot()
        return sorted((lb["model"], lb["status"], lb["cost_status"], n) for lb, n in snap.requests)


@pytest.fixture()
def server() -> Iterator[FakeBedrockServer]:
    with serve() as s:
        yield s


def _stack(server: FakeBedrockServer, sampler: Any = None) -> Iterator[Stack]:
    # the built-in catalog (its us./global. Bedrock entries differ); spans priced by CostSpanProcessor
    make = partial(Stack, server=server)
    with instrumented_stack(make, BedrockInstrumentor(), sampler=sampler, price_spans=True) as stack:
        try:
            yield stack
        finally:
            for client in stack.clients:
                client.close()


@pytest.fixture()
def stack(server: FakeBedrockServer) -> Iterator[Stack]:
    yield from _stack(server)


# --- expected values ---------------------------------------------------------------------------


def otel_usage(served: ServedUsage) -> Usage:
    return Usage(
        input_tokens=served.total_input,
        output_tokens=served.output_tokens,
        cache_read_tokens=served.cache_read,
        cache_write_tokens=served.cache_write,
        cache_write_1h_tokens=served.cache_write_1h,
    )


def expected_cost(stack: Stack, span: ReadableSpan, model: str, served: ServedUsage) -> Decimal:
    """The bill from the catalog's per-token prices, checked against Pricer.price on the same usage."""
    match = stack.pricer.match("aws.bedrock", model)
    assert match is not None, model
    p = match.entry.prices_at(span.start_time)
    assert all(served.total_input <= t.above_input_tokens for t in p.tiers)  # the base tier applies
    assert p.cache_read < p.input < p.cache_write < p.cache_write_1h  # each rate makes a difference
    five_min = served.cache_write - served.cache_write_1h
    total = (
        served.input_tokens * p.input
        + served.cache_read * p.cache_read
        + five_min * p.cache_write
        + served.cache_write_1h * p.cache_write_1h
        + served.output_tokens * p.output
    )
    assert stack.pricer.price("aws.bedrock", model, otel_usage(served), at_ns=span.start_time).total_usd == total
    return total


def assert_usage(span: ReadableSpan, served: ServedUsage) -> None:
    a = span.attributes or {}
    assert a["gen_ai.usage.input_tokens"] == served.total_input  # Bedrock's count + cache: inclusive
    assert a["gen_ai.usage.output_tokens"] == served.output_tokens
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == served.cache_read
    assert a.get("gen_ai.usage.cache_creation.input_tokens", 0) == served.cache_write
    assert a.get("llm.usage.cache_creation_1h.input_tokens", 0) == served.cache_write_1h


def tokens(a: Any) -> tuple[int, int]:
    return a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]


def assert_priced(stack: Stack, span: ReadableSpan, model: str, served: ServedUsage, catalog_model: str) -> None:
    a = span.attributes or {}
    total = expected_cost(stack, span, model, served)
    assert a["llm.cost.status"] == "priced"
    assert a["llm.cost.pricing.provider"] == "bedrock" and a["llm.cost.pricing.model"] == catalog_model
    assert usd(a["llm.cost.total_usd"]) == total


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [None, "1h"])
def test_converse_is_priced_with_cache_reads_and_writes(stack: Stack, ttl: str | None) -> None:
    config = {"maxTokens": 300, "temperature": 0.25, "topP": 0.9}
    result = stack.client().converse(modelId=US_SONNET, messages=converse_messages(ttl=ttl), inferenceConfig=config)
    (request,) = stack.server.requests
    assert request.path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    served = usage_for(request.body)
    assert served.cache_read and served.cache_write and bool(served.cache_write_1h) is (ttl == "1h")
    # the application's result is Bedrock's, untouched: input excludes the cache there
    assert result["usage"]["inputTokens"] == served.input_tokens < served.total_input
    assert result["output"]["message"]["content"] == [{"text": REPLY_TEXT}]

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"chat {US_SONNET}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.model"] == US_SONNET and "gen_ai.response.model" not in a
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == stack.server.port
    assert a["cloud.region"] == "us-east-1"
    request_params = (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"], a["gen_ai.request.top_p"])
    assert request_params == (300, 0.25, 0.9)
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["aws.request_id"] == result["ResponseMetadata"]["RequestId"]
    assert_usage(span, served)
    assert_priced(stack, span, US_SONNET, served, "anthropic.claude-sonnet-4-5-20250929-v1:0")
    # counted once at the call site; the span processor saw the cost and left it alone
    assert stack.requests() == [("anthropic.claude-sonnet-4-5-20250929-v1:0", "ok", "priced", 1)]
    assert stack.recorder.total_cost() == usd(a["llm.cost.total_usd"])


def test_global_profile_is_priced_apart_from_geographic_ones(stack: Stack) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{GLOBAL_SONNET}"
    client = stack.client()
    for model in (US_SONNET, GLOBAL_SONNET, arn):
        client.converse(modelId=model, messages=converse_messages())
    spans = stack.spans()
    assert [(s.attributes or {})["gen_ai.request.model"] for s in spans] == [US_SONNET, GLOBAL_SONNET, arn]
    served = usage_for(stack.server.requests[0].body)
    assert_priced(stack, spans[0], US_SONNET, served, "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert_priced(stack, spans[1], GLOBAL_SONNET, served, GLOBAL_SONNET)
    assert_priced(stack, spans[2], arn, served, GLOBAL_SONNET)
    us, glob, by_arn = (usd((s.attributes or {})["llm.cost.total_usd"]) for s in spans)
    assert glob < us and by_arn == glob


def test_converse_stream_span_ends_when_the_app_has_read_the_stream(stack: Stack) -> None:
    response = stack.client().converse_stream(modelId=GLOBAL_SONNET, messages=converse_messages(ttl="1h"))
    assert stack.spans() == []  # the call is not over until the stream is
    events = list(response["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == REPLY_TEXT
    assert events[-1]["metadata"]["usage"]["inputTokens"] == usage_for(stack.server.requests[0].body).input_tokens

    span = stack.only_span()
    a = span.attributes or {}
    served = usage_for(stack.server.requests[0].body)
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["aws.request_id"] == response["ResponseMetadata"]["RequestId"]
    assert_usage(span, served)
    assert_priced(stack, span, GLOBAL_SONNET, served, GLOBAL_SONNET)


def test_converse_stream_closed_early_ends_the_span_with_an_estimate(stack: Stack) -> None:
    response = stack.client().converse_stream(modelId=US_SONNET, messages=converse_messages())
    stream = response["stream"]
    first = [next(iter(stream)) for _ in range(3)]
    assert "messageStart" in first[0]
    stream.close()
    a = stack.only_span().attributes or {}
    assert a["llm.cost.status"] == "estimated" and a["gen_ai.usage.output_tokens"] > 0


def test_stream_without_usage_is_estimated(stack: Stack) -> None:
    stack.server.omit_usage = True
    response = stack.client().converse_stream(modelId=US_SONNET, messages=converse_messages())
    assert "metadata" not in [k for e in response["stream"] for k in e]
    span = stack.only_span()
    a = span.attributes or {}
    usage = estimate_usage(US_SONNET, [PROMPT], REPLY_TEXT)
    assert tokens(a) == (usage.input_tokens, usage.output_tokens)
    assert a["llm.cost.status"] == "estimated" and span.status.status_code is StatusCode.UNSET
    assert usd(a["llm.cost.total_usd"]) == stack.pricer.price("aws.bedrock", US_SONNET, usage).total_usd


def test_invoke_stream_without_usage_is_estimated_from_the_request_body(stack: Stack) -> None:
    stack.server.omit_usage = True
    body = json.loads(anthropic_body())
    body["system"] = "You are terse."  # Anthropic's plain-string system prompt counts as input too
    response = stack.client().invoke_model_with_response_stream(modelId=US_SONNET, body=json.dumps(body))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert not [c for c in chunks if "usage" in c or "usage" in c.get("message", {})]
    a = stack.only_span().attributes or {}
    usage = estimate_usage(US_SONNET, ["You are terse.", PROMPT], REPLY_TEXT)
    assert tokens(a) == (usage.input_tokens, usage.output_tokens)
    assert a["llm.cost.status"] == "estimated" and a["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_stream_cut_off_midway_fails_the_span_with_what_was_seen(stack: Stack) -> None:
    stack.server.cut_stream_after = 3  # messageStart and two words, then the connection drops
    response = stack.client().converse_stream(modelId=US_SONNET, messages=converse_messages())
    seen = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        seen.extend(response["stream"])
    response["stream"].close()
    assert len(seen) == 3
    span = stack.only_span()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "urllib3.ProtocolError"
    usage = estimate_usage(US_SONNET, [PROMPT], "Hello from")
    assert a["llm.cost.status"] == "estimated"
    assert usd(a["llm.cost.total_usd"]) == stack.pricer.price("aws.bedrock", US_SONNET, usage).total_usd
    assert stack.requests() == [("anthropic.claude-sonnet-4-5-20250929-v1:0", "error", "estimated", 1)]


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_model_with_response_stream"])
def test_error_event_inside_a_stream_propagates_and_fails_the_span(stack: Stack, operation: str) -> None:
    kwargs: dict[str, Any] = (
        {"messages": converse_messages()} if operation == "converse_stream" else {"body": anthropic_body()}
    )
    response = getattr(stack.client(), operation)(modelId=STREAM_ERROR_MODEL, **kwargs)
    stream = response["stream" if operation == "converse_stream" else "body"]
    with pytest.raises(EventStreamError) as raised:
        list(stream)
    stream.close()
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    span = stack.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "botocore.EventStreamError"


def test_invoke_model_anthropic_body_reaches_the_app_unchanged(stack: Stack) -> None:
    response = stack.client().invoke_model(modelId=US_SONNET, body=anthropic_body(), contentType="application/json")
    # the span is complete when the call returns, before the application reads the body
    span = stack.only_span()
    body = response["body"]
    head = body.read(10)
    payload = json.loads(head + body.read())
    assert body.read() == b""
    assert payload["content"] == [{"type": "text", "text": REPLY_TEXT}] and payload["stop_reason"] == "end_turn"
    served = usage_for(stack.server.requests[0].body)
    assert served.cache_write_1h and payload["usage"] == served.anthropic()

    a = span.attributes or {}
    assert a["gen_ai.request.model"] == US_SONNET and "gen_ai.request.stream" not in a
    assert a["gen_ai.response.id"] == payload["id"] and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert_usage(span, served)
    assert_priced(stack, span, US_SONNET, served, "anthropic.claude-sonnet-4-5-20250929-v1:0")


def test_invoke_model_body_can_be_read_line_by_line(stack: Stack) -> None:
    response = stack.client().invoke_model(modelId=US_SONNET, body=anthropic_body(ttl=None).encode())
    lines = list(response["body"].iter_lines())
    assert json.loads(b"".join(lines))["usage"] == usage_for(stack.server.requests[0].body).anthropic()
    assert (stack.only_span().attributes or {})["llm.cost.status"] == "priced"


def test_invoke_model_body_cut_off_fails_the_call_and_the_app_sees_the_same_error(stack: Stack) -> None:
    stack.server.truncate_body = True
    response = stack.client().invoke_model(modelId=US_SONNET, body=anthropic_body())
    span = stack.only_span()  # the body was read (and failed) inside the call
    body = response["body"]
    with pytest.raises(ResponseStreamingError):  # what botocore's own body raises on a dropped connection
        body.read()
    with pytest.raises(IncompleteReadError):  # and then, as botocore's own body does
        body.read()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "botocore.ResponseStreamingError"
    assert a["llm.cost.status"] == "no_usage"


def test_invoke_model_other_payloads_are_priced_from_the_token_headers(stack: Stack) -> None:
    body = {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": PROMPT}]}]}
    response = stack.client().invoke_model(modelId="amazon.nova-micro-v1:0", body=json.dumps(body))
    assert json.loads(response["body"].read())["usage"]  # the body was left for the app to read
    served = usage_for(stack.server.requests[0].body)
    a = stack.only_span().attributes or {}
    assert tokens(a) == (served.input_tokens, served.output_tokens)
    match = stack.pricer.match("aws.bedrock", "amazon.nova-micro-v1:0")
    assert match is not None
    p = match.entry.prices_at(stack.only_span().start_time)
    assert usd(a["llm.cost.total_usd"]) == served.input_tokens * p.input + served.output_tokens * p.output


def test_invoke_model_with_response_stream_anthropic_is_priced(stack: Stack) -> None:
    response = stack.client().invoke_model_with_response_stream(modelId=GLOBAL_SONNET, body=anthropic_body())
    assert stack.spans() == []
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == REPLY_TEXT
    served = usage_for(stack.server.requests[0].body)
    span = stack.only_span()
    a = span.attributes or {}
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.id"] == chunks[0]["message"]["id"]
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert_usage(span, served)
    assert_priced(stack, span, GLOBAL_SONNET, served, GLOBAL_SONNET)


def test_response_without_usage_is_counted_as_no_usage(stack: Stack) -> None:
    stack.server.omit_usage = True
    client = stack.client()
    result = client.converse(modelId=US_SONNET, messages=converse_messages())
    assert "usage" not in result
    response = client.invoke_model(modelId=US_SONNET, body=anthropic_body())
    assert "usage" not in json.loads(response["body"].read())
    assert [(s.attributes or {})["llm.cost.status"] for s in stack.spans()] == ["no_usage", "no_usage"]
    assert stack.requests() == [("anthropic.claude-sonnet-4-5-20250929-v1:0", "ok", "no_usage", 2)]


@pytest.mark.parametrize("model", sorted(ERROR_MODELS))
@pytest.mark.parametrize("operation", ["converse", "invoke_model", "converse_stream"])
def test_api_error_propagates_unchanged_and_is_recorded(stack: Stack, model: str, operation: str) -> None:
    status, code, message = ERROR_MODELS[model]
    client = stack.client()
    kwargs: dict[str, Any] = {"body": anthropic_body()} if operation == "invoke_model" else {"messages": []}
    with pytest.raises(ClientError) as raised:
        getattr(client, operation)(modelId=model, **kwargs)
    assert type(raised.value) is getattr(client.exceptions, code)
    assert raised.value.response["Error"] == {"Code": code, "Message": message}
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert len(stack.server.requests) == 1  # retries off: one request, one span

    span = stack.only_span()
    a = span.attributes or {}
    assert span.name == f"chat {model}" and span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == f"botocore.{code}"
    assert a["llm.cost.status"] == "no_usage"
    assert not any(k.startswith("gen_ai.usage.") or k.endswith("_usd") for k in a)
    assert stack.requests() == [(model, "error", "no_usage", 1)]


def test_other_services_and_operations_are_not_traced(stack: Stack) -> None:
    runtime = stack.client()
    assert runtime.count_tokens(modelId=US_SONNET, input={"converse": {"messages": converse_messages()}})
    assert stack.client("bedrock").list_foundation_models()["modelSummaries"] == []
    assert [r.path for r in stack.server.requests] == [
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens",
        "/foundation-models",
    ]
    assert stack.spans() == [] and stack.requests() == []


def test_credentials_and_content_never_reach_spans_or_metrics(stack: Stack) -> None:
    client = stack.client()
    client.converse(modelId=US_SONNET, messages=converse_messages())
    list(client.converse_stream(modelId=US_SONNET, messages=converse_messages())["stream"])
    client.invoke_model(modelId=US_SONNET, body=anthropic_body())["body"].read()
    list(client.invoke_model_with_response_stream(modelId=US_SONNET, body=anthropic_body())["body"])
    with pytest.raises(ClientError):
        client.converse(modelId="throttled.model-v1:0", messages=converse_messages())
    authorization = {r.headers["Authorization"] for r in stack.server.requests}
    assert len(authorization) >= 1 and all(f"Credential={ACCESS_KEY}/" in h for h in authorization)
    signatures = {h.rsplit("Signature=", 1)[1] for h in authorization}

    spans = stack.spans()
    assert len(spans) == 5
    seen = [span.name for span in spans] + [s for span in spans for s in strings(dict(span.attributes or {}))]
    seen += [s for span in spans for e in span.events for s in strings(dict(e.attributes or {}))]
    snap = stack.recorder.snapshot()
    seen += [s for labels, _ in snap.requests for s in strings(labels)]
    forbidden = [ACCESS_KEY, SECRET_KEY, "AWS4-HMAC-SHA256", "PINEAPPLE", REPLY_TEXT, *signatures]
    assert seen and not [s for s in seen for f in forbidden if f in s]


def test_cost_is_counted_when_spans_are_not_sampled(server: FakeBedrockServer) -> None:
    for stack in _stack(server, sampler=ALWAYS_OFF):
        client = stack.client()
        client.converse(modelId=US_SONNET, messages=converse_messages())
        list(client.converse_stream(modelId=US_SONNET, messages=converse_messages())["stream"])
        assert stack.spans() == []
        served = usage_for(server.requests[0].body)
        price = stack.pricer.price("aws.bedrock", US_SONNET, otel_usage(served)).total_usd
        assert price is not None and stack.recorder.total_cost() == 2 * price
        assert stack.requests() == [("anthropic.claude-sonnet-4-5-20250929-v1:0", "ok", "priced", 2)]


def test_uninstrument_restores_botocore(stack: Stack) -> None:
    assert isinstance(botocore.client.BaseClient.__dict__["_make_api_call"], wrapt.FunctionWrapper)
    client = stack.client()  # made while instrumented: its calls go through the class's method
    client.converse(modelId=US_SONNET, messages=converse_messages())
    assert len(stack.spans()) == 1
    stack.instrumentor.uninstrument()
    assert botocore.client.BaseClient.__dict__["_make_api_call"] is ORIGINAL_MAKE_API_CALL
    assert not isinstance(ORIGINAL_MAKE_API_CALL, wrapt.FunctionWrapper)
    client.converse(modelId=US_SONNET, messages=converse_messages())
    response = client.invoke_model(modelId=US_SONNET, body=anthropic_body())
    assert type(response["body"]._raw_stream).__module__.startswith("urllib3")  # Bedrock's own body again
    assert len(stack.server.requests) == 3 and len(stack.spans()) == 1
