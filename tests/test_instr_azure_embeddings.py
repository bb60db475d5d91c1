"""AzureOpenAI ``embeddings.create`` through the real ``openai`` SDK is priced from the Azure catalog entries.

Our OpenAI instrumentation + an ``openai.AzureOpenAI`` client + :mod:`tests.fakes.openai_server` (which
answers Azure's ``/openai/deployments/{deployment}/embeddings`` path). The expected cost is the token
count the server reported times the input price of the ``azure`` catalog entry (``pricing/azure.yaml``),
read through the catalog, never a hard-coded amount.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import partial

import openai
import pytest

from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from otel_llmcost.pricing import Usage, default_catalog

from .fakes.openai_server import FakeOpenAIServer, embedding_usage, serve
from .fakes.stack import InstrumentedStack, instrumented_stack, usd

pytestmark = pytest.mark.integration

API_KEY = "azure-key-DO-NOT-LEAK-2468"
API_VERSION = "2024-10-21"
MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture()
def stack(server: FakeOpenAIServer) -> Iterator[InstrumentedStack]:
    with instrumented_stack(partial(InstrumentedStack), OpenAIInstrumentor()) as s:
        yield s


def azure_input_price(model: str, at_ns: int) -> Decimal:
    """The per-token input price of *model* in the catalog's ``azure`` file, and a check that it is all it bills."""
    (entry,) = [e for e in default_catalog().models("azure") if e.model_id == model]
    assert entry.kind == "embeddings"
    prices = entry.prices_at(at_ns)
    assert prices.input > 0 and prices.output == 0 and not prices.tiers
    return prices.input


@pytest.mark.parametrize("model", MODELS)
def test_azure_embeddings_are_priced_from_the_azure_catalog(
    stack: InstrumentedStack, server: FakeOpenAIServer, model: str
) -> None:
    texts = ["The quarterly report, PINEAPPLE-42.", "A second passage to embed."]
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url.removesuffix("/v1"),
        api_key=API_KEY,
        api_version=API_VERSION,
        max_retries=0,
    ) as client:
        result = client.embeddings.create(model=model, input=texts)
    assert len(result.data) == len(texts)
    (request,) = server.requests
    assert request.path == f"/openai/deployments/{model}/embeddings"
    tokens = embedding_usage(request.body)
    assert result.usage.prompt_tokens == tokens

    span = stack.only_span()
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["gen_ai.usage.input_tokens"] == tokens
    assert a["llm.cost.status"] == "priced", a.get("llm.cost.reason")
    assert a["llm.cost.pricing.provider"] == "azure" and a["llm.cost.pricing.model"] == model
    expected = tokens * azure_input_price(model, span.start_time)
    assert usd(a["llm.cost.total_usd"]) == expected
    # and the pricer agrees on the same usage (the span's attribute is a float: compare exact Decimals here)
    cost = stack.pricer.price("azure.ai.openai", model, Usage(tokens, 0), at_ns=span.start_time)
    assert cost.provider == "azure" and cost.total_usd == expected
    # counted at the call site under the Azure price, once
    assert stack.recorder.total_cost() == expected
    snap = stack.recorder.snapshot()
    assert [(lb["provider"], lb["model"], lb["cost_status"], n) for lb, n in snap.requests] == [
        ("azure", model, "priced", 1)
    ]
