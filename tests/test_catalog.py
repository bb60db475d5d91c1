"""Catalog loading: bad files are refused with file, entry and field named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.pricing import CatalogError, load_catalog
from otel_llmcost.pricing.catalog import parse_file

HEAD = "provider: openai\nsource: https://example.test/p\nchecked: 2026-01-01\nmodels:\n"


def parse(body: str, head: str = HEAD) -> list:  # type: ignore[type-arg]
    return parse_file(head + body, "bad.yaml")[2]


def test_prices_are_exact_decimals_per_token() -> None:
    (entry,) = parse("  - id: m\n    prices: {input: 0.075, output: 0.3}\n")
    prices = entry.prices_at(None)
    assert prices.input == Decimal("0.075") / 10**6
    assert prices.output == Decimal("0.0000003")
    assert prices.per_million()["input"] == "0.075"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("  - id: m\n    prices: {input: -1, output: 1}\n", "'prices.input': expected a finite price >= 0"),
        ("  - id: m\n    prices: {input: abc, output: 1}\n", "'prices.input': expected a number"),
        ("  - id: m\n    prices: {input: 1}\n", "'prices.output': missing"),
        ("  - id: m\n    prices: {input: 1, output: 1, cached: 1}\n", "'prices.cached': unknown price field"),
        ("  - id: m\n    prices: {input: 1, output: 1}\n    colour: red\n", "model 'm': field 'colour': unknown key"),
        ("  - id: m\n    checked: 2026-13-45\n    prices: {input: 1, output: 1}\n", "field 'checked': expected a date"),
        (
            "  - id: m\n    source: nowhere\n    prices: {input: 1, output: 1}\n",
            "field 'source': every entry needs a public source URL",
        ),
        ("  - prices: {input: 1, output: 1}\n", "models[0].id"),
        (
            "  - id: m\n    prices:\n      - {input: 2, output: 2}\n      - {input: 1, output: 1}\n",
            "'prices[1].from': every price period after the first needs a 'from' date",
        ),
        (
            "  - id: m\n    prices:\n      - {input: 2, output: 2}\n      - {from: 2025-01-02, input: 1, output: 1}\n      - {from: 2025-01-01, input: 1, output: 1}\n",
            "must be in date order",
        ),
        (
            "  - id: m\n    prices: {input: 1, output: 1, tiers: [{above_input_tokens: 0, input: 2}]}\n",
            "tiers[0].above_input_tokens",
        ),
        ("  - id: m\n    prices: {input: 1000000, output: 1}\n", "a typo?"),
        ("  - id: m\n    kind: hologram\n    prices: {input: 1, output: 1}\n", "field 'kind'"),
    ],
)
def test_bad_entries_name_file_entry_and_field(body: str, needle: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse(body)
    assert "bad.yaml" in str(err.value)
    assert needle in str(err.value)


def test_unknown_provider_and_bad_yaml() -> None:
    with pytest.raises(CatalogError, match="unknown provider 'openaii'"):
        parse("  - id: m\n    prices: {input: 1, output: 1}\n", head=HEAD.replace("openai", "openaii"))
    with pytest.raises(CatalogError, match=r"bad\.yaml: not valid YAML"):
        parse_file("provider: [", "bad.yaml")


def test_entry_without_checked_date_is_refused() -> None:
    with pytest.raises(CatalogError, match="checked"):
        parse(
            "  - id: m\n    prices: {input: 1, output: 1}\n", head="provider: openai\nsource: https://x.test\nmodels:\n"
        )


def test_same_id_matched_twice_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "openai.yaml"
    f.write_text(
        HEAD
        + "  - id: a\n    prices: {input: 1, output: 1}\n  - id: b\n    aliases: [A]\n    prices: {input: 1, output: 1}\n"
    )
    with pytest.raises(CatalogError, match="alias 'a' is already matched by 'a'"):
        load_catalog([f])


def test_version_changes_with_content(tmp_path: Path) -> None:
    f = tmp_path / "openai.yaml"
    f.write_text(HEAD + "  - id: a\n    prices: {input: 1, output: 1}\n")
    v1 = load_catalog([f]).version
    f.write_text(HEAD + "  - id: a\n    prices: {input: 2, output: 1}\n")
    v2 = load_catalog([f]).version
    assert v1 != v2 and v1.startswith("2026.01.01+")


@pytest.mark.parametrize(
    ("prices", "needle"),
    [
        ("{input: 1, output: 1, batch: 20}", "'prices.batch': a multiplier must be between 0.01 and 10"),
        ("{input: 1, output: 1, service_tiers: {flex: -1}}", "'prices.service_tiers.flex'"),
        ("{input: 1, output: 1, service_tiers: {priority: {inputs: 2}}}", "'prices.service_tiers.priority.inputs'"),
        ("{input: 1, output: 1, search_context: {huge: 1}}", "'prices.search_context.huge'"),
        ("{input: 1, output: 1, per_image: abc}", "'prices.per_image': expected a number"),
        ("{input: 1, output: 1, regions: [eu]}", "'prices.regions': expected a mapping"),
    ],
)
def test_bad_v2_fields_name_the_field(prices: str, needle: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse(f"  - id: m\n    prices: {prices}\n")
    assert needle in str(err.value)
