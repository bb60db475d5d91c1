"""Model matching: every naming form providers and instrumentations use, and no loose matching."""

from __future__ import annotations

import pytest

from otel_llmcost.pricing import Pricer, canonical_provider, provider_from_address, region_from_address


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o", ("openai", "gpt-4o")),
        ("openai", "GPT-4o", ("openai", "gpt-4o")),
        ("openai", "gpt-4o-2024-08-06", ("openai", "gpt-4o")),  # dated snapshot
        ("openai", "gpt-4o-2024-05-13", ("openai", "gpt-4o-2024-05-13")),  # own entry wins over the rule
        ("openai", "openai/gpt-4o", ("openai", "gpt-4o")),  # provider prefix
        (None, "openai/gpt-4o", ("openai", "gpt-4o")),  # prefix names the provider
        (None, "gpt-4o", ("openai", "gpt-4o")),  # no provider: first-party ids
        ("OpenAI", "gpt-4o", ("openai", "gpt-4o")),  # OpenLLMetry capitalisation
        ("anthropic", "claude-sonnet-4-5-20250929", ("anthropic", "claude-sonnet-4-5")),
        ("anthropic", "claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("anthropic", "claude-sonnet-4-5-latest", ("anthropic", "claude-sonnet-4-5")),
        (
            "aws.bedrock",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ),
        (
            "aws.bedrock",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ),
        (
            "aws.bedrock",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ),
        (
            "aws.bedrock",
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ),
        ("aws.bedrock", "apac.amazon.nova-micro-v1:0", ("bedrock", "amazon.nova-micro-v1:0")),
        (
            "AWS",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ),
        ("bedrock", "amazon.nova-micro-v1:0:128k", ("bedrock", "amazon.nova-micro-v1:0")),
        ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", ("vertex", "claude-sonnet-4-5")),
        ("vertex_ai", "publishers/google/models/gemini-2.5-pro", ("vertex", "gemini-2.5-pro")),
        (
            "gcp.vertex_ai",
            "projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro",
            ("vertex", "gemini-2.5-pro"),
        ),
        ("gcp.vertex_ai", "gemini-2.5-pro-001", ("vertex", "gemini-2.5-pro")),
        ("Vertex AI", "gemini-2.5-pro@002", ("vertex", "gemini-2.5-pro")),
        ("gcp.gemini", "gemini-2.5-flash", ("google", "gemini-2.5-flash")),
        ("gemini", "models/gemini-2.5-flash", ("google", "gemini-2.5-flash")),
        ("azure.ai.openai", "gpt-4o", ("azure", "gpt-4o")),
        ("az.ai.openai", "gpt-4o-2024-11-20", ("azure", "gpt-4o")),
        (
            "together_ai",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
    ],
)
def test_match(pricer: Pricer, provider: str | None, model: str, expected: tuple[str, str]) -> None:
    found = pricer.match(provider, model)
    assert found is not None, (provider, model)
    assert (found.provider, found.entry.model_id) == expected


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),  # a prefix of nothing and not a snapshot of gpt-4o
        ("openai", "gpt-4"),  # prefix of gpt-4o: never matched loosely
        ("openai", "gpt-4o-2024-05-13-extra"),
        ("openai", "my-gpt-4o"),
        ("openai", "gpt-4o-2024"),  # not a date
        ("openai", "ft:gpt-4o-2024-08-06:acme::abc"),  # fine-tunes bill differently
        ("anthropic", "claude-sonnet-4"),
        ("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v2:0"),
        ("aws.bedrock", "claude-sonnet-4-5"),  # Bedrock ids carry the vendor
        ("gcp.vertex_ai", "gemini-2.5-flash"),  # in the Gemini API catalog, not Vertex's
        ("openai", ""),
        ("openai", None),
        ("openai", "x" * 1000),
        ("mystery", "gpt-4o"),
        ("gcp.vertex_ai", "gpt-4o"),
    ],
)
def test_no_match(pricer: Pricer, provider: str, model: str | None) -> None:
    assert pricer.match(provider, model) is None


def test_server_address_selects_provider(pricer: Pricer) -> None:
    # An OpenAI client pointed at Azure reports provider "openai"; Azure bills it.
    found = pricer.match("openai", "gpt-4o", "myresource.openai.azure.com")
    assert found is not None and found.provider == "azure"
    local = pricer.match("openai", "gpt-4o", "127.0.0.1")
    assert local is not None and local.provider == "openai"


def test_matches_are_memoised_including_misses(pricer: Pricer) -> None:
    pricer.match("openai", "never-heard-of-it")
    pricer.match("openai", "never-heard-of-it")
    pricer.match("openai", "gpt-4o")
    pricer.match("openai", "gpt-4o")
    info = pricer.matcher.match.cache_info()
    assert info.hits == 2 and info.misses == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gcp.gemini", "google"),
        ("gcp.vertex_ai", "vertex"),
        ("aws.bedrock", "bedrock"),
        ("azure.ai.openai", "azure"),
        ("az.ai.openai", "azure"),
        ("mistral_ai", "mistral"),
        ("deepseek", "deepseek"),
        ("x_ai", "xai"),
        ("groq", "groq"),
        ("cohere", "cohere"),
        ("vertex_ai", "vertex"),
        ("gemini", "google"),
        ("Vertex AI", "vertex"),
        ("together_ai", "together"),
        ("perplexity", "perplexity"),
        ("nonsense", None),
        ("", None),
        (None, None),
    ],
)
def test_provider_names(name: str | None, expected: str | None) -> None:
    assert canonical_provider(name) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("myres.openai.azure.com", "azure"),
        ("api.groq.com", "groq"),
        ("bedrock-runtime.eu-west-1.amazonaws.com", "bedrock"),
        ("us-central1-aiplatform.googleapis.com", "vertex"),
        ("generativelanguage.googleapis.com", "google"),
        ("api.openai.com", "openai"),
        ("evil-openai.azure.com.attacker.test", None),
        ("localhost", None),
        (None, None),
    ],
)
def test_provider_from_address(host: str | None, expected: str | None) -> None:
    assert provider_from_address(host) == expected


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("bedrock-runtime.eu-west-1.amazonaws.com", "eu-west-1"),
        ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("europe-west4-aiplatform.googleapis.com", "europe-west4"),
        ("aiplatform.googleapis.com", None),
        ("api.openai.com", None),
        (None, None),
    ],
)
def test_region_from_address(host: str | None, region: str | None) -> None:
    assert region_from_address(host) == region
