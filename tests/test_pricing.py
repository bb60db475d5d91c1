"""Pricing core: arithmetic, cache, reasoning, tiers, history, request fees, bad usage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from otel_llmcost.pricing import PriceOptions, Pricer, Usage

D = Decimal


def ns(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp()) * 10**9


def test_basic_arithmetic_is_exact(pricer: Pricer) -> None:
    cost = pricer.price("openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=500))
    assert cost.status == "priced"
    assert cost.input_usd == D("0.0025")
    assert cost.output_usd == D("0.005")
    assert cost.total_usd == D("0.0075")
    assert (cost.provider, cost.model) == ("openai", "gpt-4o")


def test_cache_read_is_part_of_input_and_billed_at_cache_rate(pricer: Pricer) -> None:
    # 1000 input of which 800 cached: 200 x 2.50/M + 800 x 1.25/M
    cost = pricer.price("openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=800))
    assert cost.input_usd == D("0.0005")
    assert cost.cache_read_usd == D("0.001")
    assert cost.total_usd == D("0.0015")


def test_cache_write_5m_and_1h(pricer: Pricer) -> None:
    usage = Usage(
        input_tokens=10_000,
        output_tokens=100,
        cache_read_tokens=1000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=1000,
    )
    cost = pricer.price("anthropic", "claude-sonnet-4-5", usage)
    assert cost.input_usd == 6000 * D("3") / 10**6
    assert cost.cache_read_usd == 1000 * D("0.30") / 10**6
    assert cost.cache_write_usd == (2000 * D("3.75") + 1000 * D("6.00")) / 10**6
    assert cost.output_usd == 100 * D("15") / 10**6
    assert cost.total_usd == sum(cost.breakdown().values())


def test_missing_cache_price_bills_cache_as_input(pricer: Pricer) -> None:
    with_cache = pricer.price(
        "bedrock", "amazon.nova-micro-v1:0", Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=400)
    )
    plain = pricer.price("bedrock", "amazon.nova-micro-v1:0", Usage(input_tokens=1000, output_tokens=0))
    assert with_cache.total_usd == plain.total_usd == D("0.000035")


def test_long_context_tier_bills_whole_request_at_higher_rate(pricer: Pricer) -> None:
    below = pricer.price("anthropic", "claude-sonnet-4-5", Usage(input_tokens=200_000, output_tokens=1000))
    above = pricer.price("anthropic", "claude-sonnet-4-5", Usage(input_tokens=200_001, output_tokens=1000))
    assert below.tier_above is None
    assert below.total_usd == 200_000 * D(3) / 10**6 + 1000 * D(15) / 10**6
    assert above.tier_above == 200_000
    # every token of the request at the tier price, not only those past the threshold
    assert above.total_usd == 200_001 * D(6) / 10**6 + 1000 * D("22.50") / 10**6


def test_tier_counts_cached_input_towards_threshold(pricer: Pricer) -> None:
    cost = pricer.price("openai", "gpt-5.4", Usage(input_tokens=300_000, output_tokens=10, cache_read_tokens=290_000))
    assert cost.tier_above == 272_000
    assert cost.cache_read_usd == 290_000 * D("0.50") / 10**6
    assert cost.input_usd == 10_000 * D(5) / 10**6


def test_price_history_uses_prices_in_force_at_call_time(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    before = pricer.price("openai", "o3", usage, at_ns=ns("2025-06-09T23:59:59"))
    after = pricer.price("openai", "o3", usage, at_ns=ns("2025-06-10T00:00:00"))
    now = pricer.price("openai", "o3", usage)
    assert before.total_usd == D(50)
    assert after.total_usd == D(10)
    assert now.total_usd == D(10)


def test_reasoning_priced_apart_when_catalog_says_so(pricer: Pricer) -> None:
    cost = pricer.price("openai", "reasoner-x", Usage(input_tokens=0, output_tokens=1000, reasoning_tokens=600))
    assert cost.output_usd == 400 * D(4) / 10**6 + 600 * D(8) / 10**6
    assert cost.request_usd == D("0.01")
    assert cost.total_usd == cost.output_usd + D("0.01")


def test_reasoning_included_in_output_at_output_rate(pricer: Pricer) -> None:
    plain = pricer.price("openai", "gpt-4o", Usage(input_tokens=0, output_tokens=1000))
    reasoning = pricer.price("openai", "gpt-4o", Usage(input_tokens=0, output_tokens=1000, reasoning_tokens=900))
    assert plain.total_usd == reasoning.total_usd


def test_unknown_model_is_unpriced_never_zero(pricer: Pricer) -> None:
    cost = pricer.price("openai", "gpt-9-ultra", Usage(input_tokens=10, output_tokens=10))
    assert cost.status == "unpriced"
    assert cost.total_usd is None and cost.input_usd is None
    assert "gpt-9-ultra" in (cost.reason or "")


def test_unknown_provider_is_unpriced_even_for_known_model(pricer: Pricer) -> None:
    cost = pricer.price("some_proxy", "gpt-4o", Usage(input_tokens=10, output_tokens=10))
    assert cost.status == "unpriced"


def test_unpriced_reason_names_the_catalog_provider_searched(pricer: Pricer) -> None:
    """The reason says where a price would go: the catalog provider that bills the call."""
    usage = Usage(input_tokens=10, output_tokens=10)
    via_host = pricer.price("openai", "gpt-9-ultra", usage, server_address="acme.openai.azure.com")
    billed = pricer.matcher.resolve_provider("openai", "gpt-9-ultra", "acme.openai.azure.com")
    assert billed is not None and billed != "openai"
    assert f"catalog provider {billed!r}" in (via_host.reason or "")
    unknown = pricer.price("some_proxy", "gpt-4o", usage)
    assert "'some_proxy' is not in the catalog" in (unknown.reason or "")


def test_no_usage(pricer: Pricer) -> None:
    cost = pricer.price("openai", "gpt-4o", None)
    assert cost.status == "no_usage" and cost.total_usd is None


@pytest.mark.parametrize(
    ("usage", "code"),
    [
        (Usage(input_tokens=-1, output_tokens=10), "negative_tokens"),
        (Usage(input_tokens=10**9 + 1, output_tokens=10), "absurd_tokens"),
        (Usage(input_tokens=10, output_tokens=10, cache_read_tokens=11), "inconsistent_tokens"),
        (Usage(input_tokens=10, output_tokens=10, reasoning_tokens=11), "inconsistent_tokens"),
        (
            Usage(input_tokens=10, output_tokens=10, cache_write_tokens=2, cache_write_1h_tokens=3),
            "inconsistent_tokens",
        ),
        (Usage(input_tokens="12", output_tokens=10), "non_numeric_tokens"),  # type: ignore[arg-type]
        (Usage(input_tokens=True, output_tokens=10), "non_numeric_tokens"),
    ],
)
def test_bad_usage_is_not_priced(pricer: Pricer, usage: Usage, code: str) -> None:
    cost = pricer.price("openai", "gpt-4o", usage)
    assert cost.status == "invalid_usage"
    assert cost.reason_code == code
    assert cost.total_usd is None


def test_million_calls_sum_exactly(pricer: Pricer) -> None:
    # Floats drift over many additions; Decimal must not. 100k distinct calls, summed two ways.
    total = D(0)
    expected_input = D(0)
    expected_output = D(0)
    for i in range(100_000):
        cost = pricer.price("openai", "gpt-4o", Usage(input_tokens=i % 977, output_tokens=i % 313))
        assert cost.total_usd is not None
        total += cost.total_usd
        expected_input += i % 977
        expected_output += i % 313
    assert total == expected_input * D("2.50") / 10**6 + expected_output * D(10) / 10**6


# --- schema v2: modalities, fees and billing options ------------------------------------------------


def test_audio_tokens_billed_at_audio_rates(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1000, output_tokens=500, audio_input_tokens=400, audio_output_tokens=300)
    cost = pricer.price("openai", "gpt-audio-x", usage)
    assert cost.input_usd == (600 * D("2.50") + 400 * D(40)) / 10**6
    assert cost.output_usd == (200 * D(10) + 300 * D(80)) / 10**6


def test_image_generation_tokens_and_per_image_fee(pricer: Pricer) -> None:
    cost = pricer.price(
        "openai", "image-x", Usage(input_tokens=50, output_tokens=4160, image_output_tokens=4160, images=2)
    )
    assert cost.output_usd == 4160 * D(40) / 10**6
    assert cost.request_usd == 2 * D("0.04")


def test_audio_minutes(pricer: Pricer) -> None:
    cost = pricer.price("openai", "whisper-x", Usage(audio_seconds=90))
    assert cost.total_usd == D("0.006") * 90 / 60 == D("0.009")


def test_web_search_and_search_context_fees(pricer: Pricer) -> None:
    searches = pricer.price("openai", "tiered-x", Usage(input_tokens=0, output_tokens=0, web_search_calls=3))
    assert searches.request_usd == 3 * D(10) / 1000
    high = pricer.price("perplexity", "sonar-x", Usage(1000, 100), options=PriceOptions(search_context="high"))
    low = pricer.price("perplexity", "sonar-x", Usage(1000, 100), options=PriceOptions(search_context="low"))
    assert high.request_usd == D(12) / 1000 and low.request_usd == D(5) / 1000
    assert high.total_usd - low.total_usd == D(7) / 1000


@pytest.mark.parametrize(
    ("options", "factor"),
    [
        (None, D(1)),
        (PriceOptions(batch=True), D("0.5")),
        (PriceOptions(service_tier="flex"), D("0.5")),
        (PriceOptions(region="eu-west-1"), D("1.1")),
        (PriceOptions(batch=True, region="eu-west-1"), D("0.55")),
        (PriceOptions(service_tier="default", region="us-east-1"), D(1)),  # not in the catalog: no change
    ],
)
def test_billing_option_multipliers(pricer: Pricer, options: PriceOptions | None, factor: Decimal) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1000, cache_read_tokens=2000)
    base = pricer.price("openai", "tiered-x", usage)
    scaled = pricer.price("openai", "tiered-x", usage, options=options)
    assert base.total_usd is not None and scaled.total_usd == base.total_usd * factor
    # the savings are at the prices the call was billed at: scaled alike
    assert base.cache_savings_usd == 2000 * (D("1.25") - D("0.125")) / 10**6
    assert scaled.cache_savings_usd == base.cache_savings_usd * factor and scaled.cache_write_premium_usd == 0


def test_service_tier_with_its_own_prices(pricer: Pricer) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1000, cache_read_tokens=2000)
    cost = pricer.price("openai", "tiered-x", usage, options=PriceOptions(service_tier="priority"))
    assert cost.input_usd == 8000 * D("2.50") / 10**6
    assert cost.cache_read_usd == 2000 * D("0.25") / 10**6
    assert cost.output_usd == 1000 * D(20) / 10**6
    assert cost.cache_savings_usd == 2000 * (D("2.50") - D("0.25")) / 10**6  # the tier's own prices


def test_cache_savings_are_reads_below_input_and_the_write_premium_apart(pricer: Pricer) -> None:
    usage = Usage(10_000, 100, cache_read_tokens=1000, cache_write_tokens=3000, cache_write_1h_tokens=1000)
    cost = pricer.price("anthropic", "claude-sonnet-4-5", usage)
    found = pricer.match("anthropic", "claude-sonnet-4-5")
    assert found is not None
    p = found.entry.prices_at(None)
    assert p.cache_read < p.input < p.cache_write < p.cache_write_1h  # Anthropic's: writes cost more than input
    assert cost.cache_savings_usd == 1000 * (p.input - p.cache_read)
    assert cost.cache_write_premium_usd == 2000 * (p.cache_write - p.input) + 1000 * (p.cache_write_1h - p.input)
    # net: what the cached tokens would have cost as plain input, minus what they cost
    uncached = (usage.cache_read_tokens + usage.cache_write_tokens) * p.input
    assert cost.cache_read_usd is not None and cost.cache_write_usd is not None
    net = uncached - cost.cache_read_usd - cost.cache_write_usd
    assert cost.cache_savings_usd - cost.cache_write_premium_usd == net
    # savings are not a component of the total
    assert "cache_savings_usd" not in cost.breakdown() and cost.total_usd == sum(cost.breakdown().values())


def test_cache_savings_at_the_long_context_tier_and_none_without_cache(pricer: Pricer) -> None:
    found = pricer.match("openai", "gpt-5.4")
    assert found is not None
    prices = found.entry.prices_at(None)
    assert prices.tiers
    tier = prices.tiers[0]
    big = Usage(tier.above_input_tokens + 1000, 10, cache_read_tokens=5000)
    cost = pricer.price("openai", "gpt-5.4", big)
    assert cost.tier_above == tier.above_input_tokens
    assert cost.cache_savings_usd == 5000 * (tier.input - tier.cache_read) != 5000 * (prices.input - prices.cache_read)
    plain = pricer.price("openai", "gpt-5.4", Usage(1000, 10))
    assert plain.cache_savings_usd is None and plain.cache_write_premium_usd is None
    unpriced = pricer.price("openai", "no-such-model", Usage(1000, 10, cache_read_tokens=10))
    assert unpriced.cache_savings_usd is None


def test_inconsistent_modal_usage_is_refused(pricer: Pricer) -> None:
    cost = pricer.price("openai", "gpt-audio-x", Usage(input_tokens=10, output_tokens=10, audio_output_tokens=11))
    assert cost.status == "invalid_usage" and cost.reason_code == "inconsistent_tokens"


def test_search_context_defaults_to_low(pricer: Pricer) -> None:
    cost = pricer.price("perplexity", "sonar-x", Usage(1000, 100))
    assert cost.request_usd == D(5) / 1000


def _usages() -> list[Usage]:
    """Token counts of every shape the memoised path meets: zeros, cache, one-hour writes, reasoning, tiers."""
    out = []
    for inp in (0, 1, 999, 120_000, 272_001, 10**9):
        for cache_read, cache_write, one_hour in (
            (0, 0, 0),
            (min(inp, 7), 0, 0),
            (0, min(inp, 5), 0),
            (0, min(inp, 5), min(inp, 5) // 2),
        ):
            for out_tokens, reasoning in ((0, 0), (1, 0), (300, 0), (300, 120), (10**9, 10**9)):
                out.append(Usage(inp, out_tokens, cache_read, cache_write, one_hour, reasoning))
    return out


@pytest.mark.parametrize("catalog_name", ["test", "built-in"])
def test_memoised_rates_give_the_general_arithmetic_digit_for_digit(pricer: Pricer, catalog_name: str) -> None:
    # price_usage() (and Rates, behind the span processor's and the collector's fast path) prices
    # a call with only token counts from constants computed once per price period; the general
    # arithmetic (compute_cost, then the components summed in order) is the reference, compared
    # by value and by digits (str), as the CLI prints them. Their floats are float() of the Decimals.
    from otel_llmcost.pricing import compute_cost, default_catalog
    from otel_llmcost.pricing.compute import cache_savings
    from otel_llmcost.pricing.rates import price_usage, rates_of

    catalog = pricer.catalog if catalog_name == "test" else default_catalog()
    usages = _usages()
    compared = floats = 0
    for entry in catalog.entries:
        for period in entry.periods:
            for usage in usages:
                inp, out, cread, cwrite, req, tier = compute_cost(period.prices, usage)
                expected = (inp + out + cread + cwrite + req, inp, out, cread, cwrite, req, tier)
                got = price_usage(period.prices, usage)
                assert got == expected and list(map(str, got)) == list(map(str, expected)), (entry.model_id, usage)
                counted = rates_of(period.prices, usage.input_tokens).price_counts(
                    usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                    usage.cache_write_1h_tokens, usage.reasoning_tokens,
                )  # fmt: skip
                assert counted[:7] == got and list(map(str, counted[:7])) == list(map(str, got))
                saved = cache_savings(period.prices, usage)
                assert counted[8] == saved, (entry.model_id, usage)
                if saved is not None:  # Pricer.price takes the memoised savings too: the same digits
                    memo = rates_of(period.prices, usage.input_tokens).savings(
                        usage.cache_read_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens
                    )
                    assert list(map(str, memo)) == list(map(str, saved)), (entry.model_id, usage)
                if counted[7] is not None:
                    assert counted[7] == tuple(float(x) for x in got[:6]), (entry.model_id, usage)
                    floats += 1
                compared += 1
    assert compared > 1000 and floats > 100  # both paths were exercised


def test_price_counts_is_price_for_whole_counts(pricer: Pricer) -> None:
    # Pricer.price_counts (the fast path's) gives price()'s amounts, or None where price() must say why.
    for model in ("gpt-4o", "o3", "gpt-5.4", "reasoner-x", "tiered-x", "gpt-audio-x", "image-x", "sonar-x"):
        resolved = pricer.resolve("openai" if model != "sonar-x" else "perplexity", model)
        for usage in _usages():
            counts = (
                usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                usage.cache_write_1h_tokens, usage.reasoning_tokens,
            )  # fmt: skip
            for at in (None, ns("2025-01-01"), ns("2025-06-10"), ns("2026-01-01")):
                cost = pricer.price("openai" if model != "sonar-x" else "perplexity", model, usage, at_ns=at)
                priced = pricer.price_counts(resolved, counts, at)
                if cost.status != "priced":
                    assert priced is None
                    continue
                assert priced is not None
                amounts = (
                    cost.total_usd,
                    cost.input_usd,
                    cost.output_usd,
                    cost.cache_read_usd,
                    cost.cache_write_usd,
                    cost.request_usd,
                    cost.tier_above,
                )
                assert priced[:7] == amounts and list(map(str, priced[:7])) == list(map(str, amounts))
                saved = cost.cache_savings_usd, cost.cache_write_premium_usd
                assert priced[8] == (None if saved == (None, None) else saved)
    assert pricer.price_counts(pricer.resolve("openai", "no-such-model"), (1, 1, 0, 0, 0, 0), None) is None
    assert pricer.price_counts(pricer.resolve("openai", "gpt-4o"), (-1, 1, 0, 0, 0, 0), None) is None
