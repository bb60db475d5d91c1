"""Call extraction: every attribute variant, numbers as strings, OTel token semantics."""

from __future__ import annotations

import pytest

from otel_llmcost.calls import extract_call, is_priced
from otel_llmcost.pricing import PriceOptions, Usage


def test_current_genai_names() -> None:
    call = extract_call(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.cache_read.input_tokens": 40,
            "gen_ai.usage.cache_creation.input_tokens": 10,
            "gen_ai.usage.reasoning.output_tokens": 20,
            "server.address": "api.openai.com",
            "session.id": "s1",
            "llm.session.name": "chat",
            "user.id": "u1",
            "llm.property.feature": "search",
        }
    )
    assert call is not None
    assert call.model == "gpt-4o-2024-08-06"  # the response model wins
    assert call.request_model == "gpt-4o"
    assert call.usage == Usage(100, 50, 40, 10, 0, 20)
    assert (call.session_id, call.session_name, call.user_id) == ("s1", "chat", "u1")
    assert call.properties == {"feature": "search"}
    assert call.server_address == "api.openai.com"


def test_older_genai_and_openllmetry_names() -> None:
    call = extract_call(
        {
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "llm.request.type": "chat",
            "gen_ai.usage.prompt_tokens": 1000,
            "gen_ai.usage.completion_tokens": 200,
            "gen_ai.usage.cache_read_input_tokens": 600,
            "gen_ai.usage.cache_creation_input_tokens": 100,
            "enduser.id": "u9",
            "gen_ai.conversation.id": "conv-1",
        }
    )
    assert call is not None
    assert call.provider == "Anthropic" and call.operation == "chat"
    assert call.usage == Usage(1000, 200, 600, 100, 0, 0)
    assert call.user_id == "u9" and call.session_id == "conv-1"


def test_openlit_names() -> None:
    call = extract_call(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "o3",
            "gen_ai.usage.input_tokens": 500,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.reasoning_tokens": 250,
            "gen_ai.usage.prompt_tokens_details.cache_read": 100,
        }
    )
    assert call is not None and call.usage == Usage(500, 300, 100, 0, 0, 250)


def test_openinference_names() -> None:
    call = extract_call(
        {
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 70,
            "llm.token_count.completion": 30,
            "llm.token_count.prompt_details.cache_read": 20,
            "llm.token_count.completion_details.reasoning": 5,
        }
    )
    assert call is not None and call.model == "gpt-4o" and call.usage == Usage(70, 30, 20, 0, 0, 5)


def test_newest_name_wins_when_both_present() -> None:
    call = extract_call(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "azure",
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.prompt_tokens": 9,
        }
    )
    assert call is not None and call.provider == "openai" and call.usage is not None and call.usage.input_tokens == 5


@pytest.mark.parametrize("value", ["120", " 120 ", "120.0", 120.0, 120])
def test_numbers_given_as_strings_or_floats(value: object) -> None:
    call = extract_call(
        {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": value, "gen_ai.usage.output_tokens": "3"}
    )
    assert call is not None and call.usage == Usage(120, 3)


@pytest.mark.parametrize("value", ["lots", "12.5", float("nan"), True, [1, 2], "1e999"])
def test_non_numeric_counts_are_reported_not_raised(value: object) -> None:
    call = extract_call({"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": value})
    assert call is not None
    assert call.usage is None
    assert call.usage_error_code == "non_numeric_tokens"
    assert "gen_ai.usage.input_tokens" in (call.usage_error or "")


def test_anthropic_style_exclusive_input_is_converted() -> None:
    # Anthropic reports input_tokens without the cached part; passed through unchanged the
    # cache counts exceed the input, and the only consistent reading is exclusive.
    call = extract_call(
        {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read.input_tokens": 3000,
            "gen_ai.usage.cache_creation.input_tokens": 200,
        }
    )
    assert call is not None and call.usage == Usage(3210, 5, 3000, 200, 0, 0)


def test_gemini_style_exclusive_output_is_converted() -> None:
    call = extract_call(
        {
            "gen_ai.request.model": "gemini-2.5-flash",
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 400,
        }
    )
    assert call is not None and call.usage == Usage(0, 500, 0, 0, 0, 400)


def test_missing_usage_and_non_genai_spans() -> None:
    no_usage = extract_call({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "error.type": "429"})
    assert no_usage is not None and no_usage.usage is None and no_usage.usage_error is None
    assert no_usage.error_type == "429"
    assert extract_call({"http.method": "GET", "http.status_code": 200}) is None
    assert extract_call({}) is None


def test_only_one_side_of_usage() -> None:
    call = extract_call({"gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 42})
    assert call is not None and call.usage == Usage(42, 0)


def test_is_priced() -> None:
    assert is_priced({"llm.cost.status": "unpriced"})
    assert is_priced({"llm.cost.total_usd": 0.1})
    assert not is_priced({"gen_ai.request.model": "m"})


def test_modality_usage_and_billing_options() -> None:
    call = extract_call(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-audio-preview",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
            "llm.usage.audio.input_tokens": "400",
            "llm.usage.audio.output_tokens": 300,
            "llm.usage.web_search_calls": 2,
            "openai.request.service_tier": "flex",
            "llm.request.batch": True,
            "cloud.region": "eu-west-1",
        }
    )
    assert call is not None and call.usage is not None
    assert (call.usage.audio_input_tokens, call.usage.audio_output_tokens, call.usage.web_search_calls) == (400, 300, 2)
    assert call.usage.input_tokens == 1000
    assert call.options == PriceOptions(service_tier="flex", batch=True, region="eu-west-1")


def test_spans_without_v2_attributes_have_no_options() -> None:
    call = extract_call({"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1})
    assert call is not None and call.options is None
    bad = extract_call({"gen_ai.request.model": "m", "llm.usage.images": "two"})
    assert bad is not None and bad.usage_error_code == "non_numeric_tokens"


def test_plain_counts_are_the_usage_extract_call_reads() -> None:
    # plain_counts (the fast path's reading of whole-int counts) must give extract_call's usage.
    import itertools

    from otel_llmcost.calls import PLAIN_TOKEN_NAMES, plain_counts

    values = (None, 0, 3, 500, -2)
    seen = 0
    for combo in itertools.product(values, values, (None, 0, 40), (None, 10), (None, 0, 5), (None, 0, 700)):
        attrs = {name: v for name, v in zip(PLAIN_TOKEN_NAMES, combo, strict=True) if v is not None}
        counts = plain_counts(*combo)
        call = extract_call({"gen_ai.request.model": "m", **attrs})
        if counts is None:  # no counts, no operation, no error: not a call
            assert call is None and not attrs
            continue
        assert call is not None and call.usage == Usage(*counts)
        seen += 1
    assert seen > 500
    assert plain_counts("3", 1, None, None, None, None) is None  # a string: the general path
    assert plain_counts(True, 1, None, None, None, None) is None
