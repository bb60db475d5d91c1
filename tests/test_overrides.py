"""User price overrides: custom models, discounts, Azure deployment names, validation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.pricing import Catalog, CatalogError, Pricer, Usage
from otel_llmcost.pricing.overrides import load_overrides, parse_overrides

D = Decimal
OVERRIDES = """
models:
  - provider: openai
    id: ft:gpt-4o-mini-2024-07-18:acme::abc123
    prices: {input: 0.30, output: 1.20}
  - provider: vllm
    id: acme-llama-70b
    prices: {input: 0, output: 0}
  - provider: openai
    id: gpt-4o              # a negotiated list price replaces the catalog's
    prices: {input: 2.00, output: 8.00}
discounts:
  - provider: azure
    multiplier: 0.8
  - provider: azure.ai.openai
    model: gpt-4o
    multiplier: 0.5
deployments:
  azure:
    prod-chat: gpt-4o
"""


@pytest.fixture()
def priced(test_catalog: Catalog, tmp_path: Path) -> Pricer:
    path = tmp_path / "overrides.yaml"
    path.write_text(OVERRIDES)
    return Pricer(test_catalog, overrides=path)


def test_custom_models_are_priced(priced: Pricer) -> None:
    cost = priced.price("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", Usage(1_000_000, 1_000_000))
    assert cost.status == "priced" and cost.total_usd == D("1.50")
    local = priced.price("vllm", "acme-llama-70b", Usage(5000, 5000))
    assert local.status == "priced" and local.total_usd == 0


def test_override_wins_over_the_catalog_and_snapshots_follow(priced: Pricer, test_catalog: Catalog) -> None:
    usage = Usage(1_000_000, 0)
    assert Pricer(test_catalog).price("openai", "gpt-4o", usage).total_usd == D("2.50")
    assert priced.price("openai", "gpt-4o", usage).total_usd == D("2.00")
    assert priced.price("openai", "gpt-4o-2024-08-06", usage).total_usd == D("2.00")
    assert priced.catalog.version.startswith(test_catalog.version + ".overrides-")


def test_discounts_model_beats_provider(priced: Pricer) -> None:
    usage = Usage(1_000_000, 0)
    assert priced.price("azure.ai.openai", "gpt-4o", usage).total_usd == D("2.75") * D("0.5")


def test_provider_discount_and_deployment_names(priced: Pricer, test_catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text("discounts:\n  - {provider: azure, multiplier: 0.8}\ndeployments:\n  azure: {Prod-Chat: gpt-4o}\n")
    pricer = Pricer(test_catalog, overrides=path)
    cost = pricer.price("azure.ai.openai", "prod-chat", Usage(1_000_000, 0))
    assert cost.model == "gpt-4o" and cost.total_usd == D("2.75") * D("0.8")
    # a deployment name means nothing to another provider
    assert pricer.price("openai", "prod-chat", Usage(1, 1)).status == "unpriced"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "models:\n  - {provider: nowhere, id: m, prices: {input: 1, output: 1}}\n",
            "model 'm': field 'provider': unknown provider 'nowhere'",
        ),
        ("models:\n  - {provider: openai, id: m, prices: {input: -1, output: 1}}\n", "model 'm': field 'prices.input'"),
        (
            "models:\n  - {provider: openai, id: m, checked: 2026-02-30, prices: {input: 1, output: 1}}\n",
            "field 'checked': expected a date",
        ),
        (
            "models:\n  - {provider: openai, id: a, prices: {input: 1, output: 1}}\n"
            "  - {provider: openai, id: b, aliases: [A], prices: {input: 1, output: 1}}\n",
            "model 'b': field 'id': 'A' is also matched by 'a'",
        ),
        ("discounts:\n  - {provider: openai, multiplier: 3}\n", "'discounts[0].multiplier': expected a multiplier"),
        ("discounts:\n  - {provider: openai, percent: 10}\n", "'discounts[0]'"),
        ("deployments:\n  azure: [gpt-4o]\n", "'deployments.azure'"),
        ("pricing: {}\n", "unknown top-level key"),
    ],
)
def test_bad_overrides_name_file_entry_and_field(text: str, needle: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_overrides(text, "overrides.yaml")
    assert str(err.value).startswith("overrides.yaml: ")
    assert needle in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the pricing overrides file"):
        load_overrides(tmp_path / "nope.yaml")


def test_empty_file_changes_nothing(test_catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert Pricer(test_catalog, overrides=path).price("openai", "gpt-4o", Usage(1000, 0)).total_usd == D("0.0025")
