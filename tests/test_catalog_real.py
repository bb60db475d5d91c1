"""Sanity checks over the SHIPPED price catalog (``load_catalog()`` with no arguments).

The other catalog tests use a small fixed catalog in ``tests/testdata``; these guard the real data
that users get: coverage, provenance, plausible prices, unambiguous matching, the models the demo
uses, a few prices checked by hand against the provider pages and genai-prices, and the Bedrock
global cross-region entries.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import yaml

from otel_llmcost.demo import _MODELS as DEMO_MODELS
from otel_llmcost.pricing import Catalog, ModelEntry, Pricer, Usage, catalog_dir, load_catalog

PROVIDERS = {
    "openai",
    "anthropic",
    "google",
    "vertex",
    "bedrock",
    "azure",
    "mistral",
    "deepseek",
    "xai",
    "groq",
    "together",
    "cohere",
    "perplexity",
    "fireworks",
    "openrouter",
    "cerebras",
    "deepinfra",
    "nebius",
    "novita",
    "moonshot",
    "qwen",
    "zhipu",
    "ai21",
    "ollama",
    "vllm",
}
MIN_MODELS = 500
M = 1_000_000

# Entries whose output price is below their input price, and why. Anything else with output < input
# is a typo until someone explains it here. Today only embedding models, priced at output 0.
OUTPUT_BELOW_INPUT = {
    **{
        ("bedrock", m): "embeddings produce no output tokens"
        for m in (
            "amazon.titan-embed-text-v2:0",
            "amazon.titan-embed-text-v1",
            "cohere.embed-english-v3",
            "cohere.embed-multilingual-v3",
            "cohere.embed-v4:0",
        )
    },
    ("google", "gemini-embedding-001"): "embeddings produce no output tokens",
    ("google", "gemini-embedding-2"): "embeddings produce no output tokens",
    ("vertex", "gemini-embedding-001"): "embeddings produce no output tokens",
    ("mistral", "mistral-embed"): "embeddings produce no output tokens",
    ("mistral", "codestral-embed-2505"): "embeddings produce no output tokens",
    ("openai", "text-embedding-3-small"): "embeddings produce no output tokens",
    ("openai", "text-embedding-3-large"): "embeddings produce no output tokens",
    ("openai", "text-embedding-ada-002"): "embeddings produce no output tokens",
    ("azure", "text-embedding-3-small"): "embeddings produce no output tokens",
    ("azure", "text-embedding-3-large"): "embeddings produce no output tokens",
    ("azure", "text-embedding-ada-002"): "embeddings produce no output tokens",
    **{
        ("cohere", m): "embeddings produce no output tokens"
        for m in (
            "embed-v4.0",
            "embed-v5.0-pro",
            "embed-v5.0-fast",
            "embed-english-v3.0",
            "embed-multilingual-v3.0",
            "embed-english-light-v3.0",
        )
    },
    ("nebius", "Qwen/Qwen3-Embedding-8B"): "embeddings produce no output tokens",
    ("nebius", "BAAI/bge-en-icl"): "embeddings produce no output tokens",
    **{
        ("perplexity", m): "embeddings produce no output tokens"
        for m in ("pplx-embed-v1-0.6b", "pplx-embed-v1-4b", "pplx-embed-context-v1-0.6b", "pplx-embed-context-v1-4b")
    },
    **{
        ("perplexity", m): "Decisions API models bill input tokens only; their output is free"
        for m in ("pplx-decider-v1.2", "pplx-decider-flash-v1.2", "pplx-decider-v1.1-27b", "pplx-decider-v1-27b")
    },
}

# Claude models that Bedrock bills 10% below In-Region/Geo on the global. cross-region profile.
BEDROCK_GLOBAL = {
    "anthropic.claude-opus-5-5": ("4.00", "20.00"),
    "anthropic.claude-sonnet-5-5": ("2.00", "10.00"),
    "anthropic.claude-haiku-5-5": ("0.10", "0.50"),
    "anthropic.claude-opus-5": ("5.00", "25.00"),
    "anthropic.claude-sonnet-5": ("2.00", "10.00"),
    "anthropic.claude-opus-4-8": ("5.00", "25.00"),
    "anthropic.claude-opus-4-7": ("5.00", "25.00"),
    "anthropic.claude-opus-4-6-v1": ("5.00", "25.00"),
    "anthropic.claude-sonnet-4-6": ("3.00", "15.00"),
    "anthropic.claude-opus-4-5-20251101-v1:0": ("5.00", "25.00"),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": ("3.00", "15.00"),
    "anthropic.claude-haiku-4-5-20251001-v1:0": ("1.00", "5.00"),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def real_pricer(catalog: Catalog) -> Pricer:
    return Pricer(catalog)


def _per_m(value: Decimal) -> Decimal:
    return (value * M).normalize()


def _cost(pricer: Pricer, provider: str, model: str, **counts: int) -> Decimal:
    cost = pricer.price(provider, model, Usage(**counts))
    assert cost.status == "priced" and cost.total_usd is not None, (provider, model, cost.reason)
    return cost.total_usd


def test_size_and_providers(catalog: Catalog) -> None:
    """Guards coverage: enough models, and every provider the project documents has a file."""
    assert len(catalog.entries) >= MIN_MODELS
    assert set(catalog.providers()) >= PROVIDERS, PROVIDERS - set(catalog.providers())


def test_every_entry_has_a_source_and_a_plausible_date(catalog: Catalog) -> None:
    """Guards provenance: each price names a public page and a check date from 2023 up to today."""
    today = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)  # any time zone's today
    for e in catalog.entries:
        assert e.source.startswith(("https://", "http://")), (e.provider, e.model_id, e.source)
        assert dt.date(2023, 1, 1) <= e.checked <= today, (e.provider, e.model_id, e.checked)


def test_cache_reads_cost_less_than_input() -> None:
    """Guards typos: where a cache-read price is given (per period and per tier) it is below input.

    Read from the YAML, because a loaded entry cannot tell an absent cache price (billed as input)
    from one written equal to input.
    """
    problems = []
    for path in sorted(catalog_dir().glob("*.yaml")):
        if path.name == "disagreements.yaml" or path.name.startswith("_"):
            continue
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            raw = model["prices"]
            for period in raw if isinstance(raw, list) else [raw]:
                for level in [period, *({**period, **t} for t in period.get("tiers") or [])]:
                    if "cache_read" in level and not Decimal(str(level["cache_read"])) < Decimal(str(level["input"])):
                        problems.append(f"{path.name}: {model['id']}: cache_read {level['cache_read']} >= input")
    assert not problems, "\n".join(problems)


def test_output_not_below_input(catalog: Catalog) -> None:
    """Guards swapped input/output prices; the known exceptions are listed above with their reason."""
    found = {
        (e.provider, e.model_id)
        for e in catalog.entries
        for p in e.periods
        for level in (p.prices, *p.prices.tiers)
        if level.output < level.input
    }
    unexplained = sorted(found - set(OUTPUT_BELOW_INPUT))
    assert not unexplained, f"output below input, not listed in OUTPUT_BELOW_INPUT with a reason: {unexplained}"
    assert not set(OUTPUT_BELOW_INPUT) - found, "stale exceptions in OUTPUT_BELOW_INPUT"


def _entry(catalog: Catalog, provider: str, model_id: str) -> ModelEntry:
    return next(e for e in catalog.models(provider) if e.model_id == model_id)


def test_tiers_increase(catalog: Catalog) -> None:
    """Guards long-context tiers: thresholds rise, and no price falls as the prompt grows."""
    fields = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
    for e in catalog.entries:
        for period in e.periods:
            previous, last_threshold = period.prices, 0
            for tier in period.prices.tiers:
                assert tier.above_input_tokens > last_threshold, (e.provider, e.model_id)
                for f in fields:
                    assert getattr(tier, f) >= getattr(previous, f), (
                        e.provider,
                        e.model_id,
                        tier.above_input_tokens,
                        f,
                    )
                previous, last_threshold = tier, tier.above_input_tokens


def test_every_id_and_alias_matches_its_own_entry(catalog: Catalog, real_pricer: Pricer) -> None:
    """Guards shadowing: an id or alias must resolve to its own entry, not to another one's snapshot rule."""
    wrong = []
    for e in catalog.entries:
        for ref in (e.model_id, *e.aliases):
            found = real_pricer.match(e.provider, ref)
            if found is None or found.entry is not e:
                wrong.append(f"{e.provider} {ref!r} -> {found.entry.model_id if found else None!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "gpt-4.1-nano-2025-04-14"),
        ("openai", "o4-mini-2025-04-16"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("gcp.gemini", "gemini-2.5-pro"),
        ("gcp.gemini", "gemini-2.5-flash"),
        ("aws.bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("deepseek", "deepseek-chat"),
        ("openai", "text-embedding-3-small"),
    ],
)
def test_demo_models_resolve(real_pricer: Pricer, provider: str, model: str) -> None:
    """Guards the demo: every model it calls (as the instrumentation names it) has a price."""
    assert real_pricer.match(provider, model) is not None
    _cost(real_pricer, provider, model, input_tokens=1000, output_tokens=100)


def test_demo_list_is_covered(real_pricer: Pricer) -> None:
    """Guards the list above against drift: the demo's models, bar the fine-tune it shows as unpriced."""
    for m in DEMO_MODELS.values():
        if not m.model.startswith("ft:"):
            assert real_pricer.match(m.provider, m.model) is not None, (m.provider, m.model)


def test_spot_prices(real_pricer: Pricer) -> None:
    """Guards known prices, checked by hand in the YAML and in genai-prices 0.2.3 on 2026-11-25.

    gpt-4o $2.50/$10; Claude Sonnet 4.5 $3/$15, cache read $0.30, 5-minute write $3.75, 1-hour $6;
    Gemini 2.5 Pro $1.25/$10, and $2.50/$15 for the whole request above 200K input tokens.
    """
    assert _cost(real_pricer, "openai", "gpt-4o", input_tokens=M, output_tokens=M) == Decimal("12.50")
    k = 10_000  # below the 200K long-context threshold
    sonnet = {"input_tokens": 4 * k, "cache_read_tokens": k, "cache_write_tokens": 2 * k, "cache_write_1h_tokens": k}
    # 10K uncached x 3 + 10K read x 0.30 + 10K 5-minute write x 3.75 + 10K 1-hour write x 6 + 100K output x 15
    cost = _cost(real_pricer, "anthropic", "claude-sonnet-4-5-20250929", output_tokens=10 * k, **sonnet)
    assert cost == Decimal("0.03") + Decimal("0.003") + Decimal("0.0375") + Decimal("0.06") + Decimal("1.5")
    pro = real_pricer.price("gcp.gemini", "gemini-2.5-pro", Usage(input_tokens=200_000, output_tokens=M))
    assert pro.total_usd == Decimal("10.25") and pro.tier_above is None  # 0.2M x 1.25 + 1M x 10
    pro = real_pricer.price("gcp.gemini", "gemini-2.5-pro", Usage(input_tokens=200_001, output_tokens=M))
    assert pro.total_usd == Decimal("15.5000025") and pro.tier_above == 200_000  # 200,001 x 2.50/M + 1M x 15


def test_bedrock_global_profiles_have_their_own_price(catalog: Catalog, real_pricer: Pricer) -> None:
    """Guards the Bedrock endpoint premium: global. is billed 10% below the us./eu./apac./jp./au. profiles.

    The exact global.-prefixed id (or alias) is matched before the prefix is stripped, so it must reach
    its own entry; geographic prefixes must still reach the unprefixed In-Region/Geo entry.
    """
    ten_percent = Decimal("1.1")
    for bare, (inp, out) in BEDROCK_GLOBAL.items():
        regional = _entry(catalog, "bedrock", bare)
        glob = _entry(catalog, "bedrock", f"global.{bare}")
        assert glob.aliases == tuple(f"global.{a}" for a in regional.aliases), bare
        for ref in (regional.model_id, *regional.aliases):
            found = real_pricer.match("aws.bedrock", f"global.{ref}")
            assert found is not None and found.entry is glob, ref
            for geo in ("us", "eu", "apac", "jp", "au"):
                found = real_pricer.match("aws.bedrock", f"{geo}.{ref}")
                assert found is not None and found.entry is regional, (geo, ref)
        r, g = regional.prices_at(None), glob.prices_at(None)
        assert (_per_m(g.input), _per_m(g.output)) == (Decimal(inp), Decimal(out)), bare
        for f in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
            assert getattr(r, f) == getattr(g, f) * ten_percent, (bare, f)
        assert [t.above_input_tokens for t in r.tiers] == [t.above_input_tokens for t in g.tiers], bare
        for rt, gt in zip(r.tiers, g.tiers, strict=True):
            for f in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
                assert getattr(rt, f) == getattr(gt, f) * ten_percent, (bare, rt.above_input_tokens, f)


def test_bedrock_sonnet_4_5_global_and_us_prices(real_pricer: Pricer) -> None:
    """Guards the worked example: Sonnet 4.5 costs $3/$15 through global. and $3.30/$16.50 through us.

    Also through an inference-profile ARN, and above 200K input tokens ($6/$22.50 vs $6.60/$24.75).
    """
    sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{sonnet}"
    glob = real_pricer.match("aws.bedrock", f"global.{sonnet}")
    us = real_pricer.match("aws.bedrock", f"us.{sonnet}")
    assert glob is not None and us is not None and glob.entry is not us.entry
    by_arn = real_pricer.match("aws.bedrock", arn)
    assert by_arn is not None and by_arn.entry is glob.entry
    short = {"input_tokens": 100_000, "output_tokens": M}
    assert _cost(real_pricer, "aws.bedrock", f"global.{sonnet}", **short) == Decimal("15.3")  # 0.1 x 3 + 15
    assert _cost(real_pricer, "aws.bedrock", arn, **short) == Decimal("15.3")
    assert _cost(real_pricer, "aws.bedrock", f"us.{sonnet}", **short) == Decimal("16.83")  # 0.1 x 3.30 + 16.50
    assert _cost(real_pricer, "aws.bedrock", sonnet, **short) == Decimal("16.83")
    long = {"input_tokens": 400_000, "output_tokens": M}
    assert _cost(real_pricer, "aws.bedrock", f"global.{sonnet}", **long) == Decimal("24.9")  # 0.4 x 6 + 22.50
    assert _cost(real_pricer, "aws.bedrock", f"eu.{sonnet}", **long) == Decimal("27.39")  # 0.4 x 6.60 + 24.75


def test_bedrock_older_claude_has_one_price(real_pricer: Pricer) -> None:
    """Guards the other side of the premium: models before Claude 4.5 keep one price for every profile."""
    for model in ("anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"):
        bare = real_pricer.match("aws.bedrock", model)
        assert bare is not None
        for prefix in ("global.", "us.", "eu."):
            found = real_pricer.match("aws.bedrock", prefix + model)
            assert found is not None and found.entry is bare.entry, prefix + model


def test_local_providers_price_any_model_at_zero(real_pricer: Pricer) -> None:
    """Ollama and vLLM serve models on the user's own hardware: every call is priced at $0, never unpriced."""
    for provider in ("ollama", "vllm"):
        cost = real_pricer.price(provider, "some-model-nobody-listed:13b", Usage(1000, 100))
        assert cost.status == "priced" and cost.total_usd == 0
        assert cost.model == "some-model-nobody-listed:13b"
    assert real_pricer.price("openai", "some-model-nobody-listed", Usage(1, 1)).status == "unpriced"
