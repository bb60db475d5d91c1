"""InvokeModelWithResponseStream of non-Anthropic models: Meta Llama, Amazon Titan Text, Mistral.

A real ``boto3`` bedrock-runtime client against :mod:`tests.fakes.bedrock_server`, which streams each
family's own chunk JSON (one word a chunk) with Bedrock's invocation metrics on the last chunk. A
stream read to the end is priced exactly from those metrics; one that ends before them (cut off, or
closed by the application) is estimated from the prompt and the text each family's chunks carried,
never left at zero output. Expected values come from the server's usage, the estimate of
:mod:`otel_llmcost.instrumentation._tokens` and the catalog (through :class:`Pricer`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from opentelemetry.trace import StatusCode

from otel_llmcost.instrumentation._tokens import estimate_usage

from .fakes.bedrock_server import REPLY_TEXT, FakeBedrockServer, model_family, serve, usage_for
from .fakes.stack import usd
from .test_instr_bedrock import Stack, _stack, otel_usage, tokens

pytestmark = pytest.mark.integration

PROMPT = "Summarise the quarterly report for the board in three bullet points."
# model id -> (request body, the text field of its chunks)
MODELS: dict[str, tuple[dict[str, Any], str]] = {
    "meta.llama3-1-8b-instruct-v1:0": ({"prompt": PROMPT, "max_gen_len": 128}, "generation"),
    "amazon.titan-text-express-v1": (
        {"inputText": PROMPT, "textGenerationConfig": {"maxTokenCount": 128}},
        "outputText",
    ),
    "mistral.mistral-7b-instruct-v0:2": ({"prompt": f"<s>[INST] {PROMPT} [/INST]", "max_tokens": 128}, "outputs"),
}


@pytest.fixture()
def server() -> Iterator[FakeBedrockServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeBedrockServer) -> Iterator[Stack]:
    yield from _stack(server)


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text one family's chunk carries, read the way the application reads it."""
    if "outputs" in chunk:
        return str(chunk["outputs"][0]["text"])
    return str(chunk.get("generation") or chunk.get("outputText") or "")


def read(stream: Any, *, cut: bool, keep: int | None = None) -> list[dict[str, Any]]:
    """Read an invoke stream: to the end, until the server cuts it, or *keep* chunks then close it."""
    chunks: list[dict[str, Any]] = []
    events = iter(stream)
    if keep is not None:
        chunks = [json.loads(next(events)["chunk"]["bytes"]) for _ in range(keep)]
    elif cut:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            for event in events:
                chunks.append(json.loads(event["chunk"]["bytes"]))
    else:
        chunks = [json.loads(event["chunk"]["bytes"]) for event in events]
    stream.close()
    return chunks


def test_the_fake_streams_each_family_in_its_own_format() -> None:
    assert {model_family(m) for m in MODELS} == {"meta", "titan", "mistral"}
    assert model_family("us.meta.llama3-1-8b-instruct-v1:0") == "meta"
    assert model_family("us.anthropic.claude-sonnet-4-5-20250929-v1:0") is None


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_family_stream_read_to_the_end_is_priced_from_the_invocation_metrics(stack: Stack, model: str) -> None:
    body, field = MODELS[model]
    response = stack.client().invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = read(response["body"], cut=False)
    assert all(field in c for c in chunks) and "".join(map(chunk_text, chunks)) == REPLY_TEXT

    span = stack.only_span()
    a = dict(span.attributes or {})
    served = otel_usage(usage_for(stack.server.requests[0].body))
    assert a["llm.cost.status"] == "priced" and tokens(a) == (served.input_tokens, served.output_tokens)
    expected = stack.pricer.price("aws.bedrock", model, served, at_ns=span.start_time).total_usd
    assert expected is not None and expected > 0 and usd(a["llm.cost.total_usd"]) == expected
    assert a["llm.cost.pricing.model"] == model
    assert a.get("gen_ai.response.finish_reasons")  # the family's stop reason, read from its last chunk


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("cut", [1, 4])
def test_a_family_stream_cut_before_the_metrics_is_estimated_from_the_text_streamed(
    stack: Stack, model: str, cut: int
) -> None:
    body, _ = MODELS[model]
    stack.server.cut_stream_after = cut
    response = stack.client().invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = read(response["body"], cut=True)
    seen = "".join(map(chunk_text, chunks))
    assert len(chunks) == cut and seen and REPLY_TEXT.startswith(seen) and seen != REPLY_TEXT

    span = stack.only_span()
    a = dict(span.attributes or {})
    prompt = body.get("prompt") or body.get("inputText")
    usage = estimate_usage(model, [prompt], seen)
    assert usage.output_tokens > 0  # what the chunks carried, not zero
    assert a["llm.cost.status"] == "estimated" and tokens(a) == (usage.input_tokens, usage.output_tokens)
    expected = stack.pricer.price("aws.bedrock", model, usage, at_ns=span.start_time).total_usd
    assert expected is not None and usd(a["llm.cost.total_usd"]) == expected
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "urllib3.ProtocolError"
    assert stack.recorder.total_cost() == expected


def test_a_llama_stream_closed_by_the_app_is_estimated_from_what_it_read(stack: Stack) -> None:
    model = "meta.llama3-1-8b-instruct-v1:0"
    body, _ = MODELS[model]
    response = stack.client().invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = read(response["body"], cut=False, keep=3)
    seen = "".join(map(chunk_text, chunks))

    a = dict(stack.only_span().attributes or {})
    usage = estimate_usage(model, [body["prompt"]], seen)
    assert a["llm.cost.status"] == "estimated" and tokens(a) == (usage.input_tokens, usage.output_tokens)
    assert stack.requests() == [(model, "ok", "estimated", 1)]
