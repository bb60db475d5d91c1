"""Standing accuracy check: the shipped catalog against genai-prices, the other public price data set.

For every catalog model that genai-prices also knows, the same token usage must cost the same in both,
at the same instant, unless ``pricing/disagreements.yaml`` records the difference for that provider
and model with a reason and the page that settles it. A new unlisted difference fails with both values.

The comparison needs the optional ``genai-prices`` package (a test extra); the checks of
``disagreements.yaml`` itself run without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from otel_llmcost.pricing import Catalog, ModelEntry, Pricer, Usage, load_catalog
from otel_llmcost.pricing._compare_sources import GP_PROVIDER

DISAGREEMENTS = Path(__file__).resolve().parents[1] / "pricing" / "disagreements.yaml"
GENAI_PRICES = "genai-prices"
OTHER_SOURCES = {GENAI_PRICES, "litellm"}
ITEM_KEYS = {"provider", "model", "field", "ours", "theirs", "other_source", "reason", "settled_by"}

# Our catalog provider id -> genai-prices provider id: one mapping, shared with `otel-llmcost pricing diff`.
MIN_COMPARED = 550  # fewer means a provider mapping broke, not that the data sets agree
TOLERANCE = Decimal("1e-9")  # USD; both sides compute exactly, this only absorbs Decimal rounding
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _usage(inp: int, out: int) -> dict[str, int]:
    """Token counts in OpenTelemetry semantics: input includes 10% cache reads and 5% cache writes."""
    cache_write = inp // 20
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": inp // 10,
        "cache_write_tokens": cache_write,
        "cache_write_1h_tokens": cache_write * 2 // 5,
    }


def _usages(thresholds: set[int]) -> list[dict[str, int]]:
    """A small call below any tier, a 1M-token call, and calls at and above every long-context threshold."""
    usages = [_usage(60_000, 20_000), _usage(1_000_000, 500_000)]
    for above in sorted(thresholds):
        usages += [_usage(above, 20_000), _usage(above + 50_000, 20_000)]
    return usages


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc)


def _their_periods(gp_model: Any) -> list[tuple[dt.date | None, Any]]:
    """(start date or None, ModelPrice) of a genai-prices model; time-of-day prices are left out."""
    if not isinstance(gp_model.prices, list):
        return [(None, gp_model.prices)]
    return [(getattr(cp.constraint, "start_date", None), cp.prices) for cp in gp_model.prices]


def _instants(entry: ModelEntry, gp_model: Any) -> list[dt.datetime]:
    """Now, and noon on the day each price period of either side starts and on the day before."""
    starts = {p.starts for p in entry.periods if p.starts} | {d for d, _ in _their_periods(gp_model) if d}
    return sorted({NOW} | {_noon(d) for d in starts} | {_noon(d - dt.timedelta(days=1)) for d in starts})


def _thresholds(entry: ModelEntry, gp_model: Any, tiered: type) -> set[int]:
    ours = {t.above_input_tokens for p in entry.periods for t in p.prices.tiers}
    theirs = {
        tier.start
        for _, price in _their_periods(gp_model)
        for value in vars(price).values()
        if isinstance(value, tiered)
        for tier in value.tiers
    }
    return ours | theirs


def _usd(amount: Decimal | None) -> str:
    return "unpriced" if amount is None else f"{amount.normalize():f}"


def _refs(entry: ModelEntry) -> Iterator[str]:
    yield entry.model_id
    yield from entry.aliases


def _compare(gp: ModuleType, catalog: Catalog) -> tuple[int, dict[tuple[str, str], list[str]]]:
    """Price every shared model both ways; return (models compared, {(provider, model id): differences})."""
    from genai_prices.types import TieredPrices

    pricer = Pricer(catalog)
    compared = 0
    diffs: dict[tuple[str, str], list[str]] = {}
    for entry in catalog.entries:
        gp_provider = GP_PROVIDER.get(entry.provider)
        if gp_provider is None:
            continue
        known = False
        for ref in _refs(entry):
            try:
                probe = gp.calc_price(gp.Usage(input_tokens=1), model_ref=ref, provider_id=gp_provider)
            except LookupError:
                continue
            known = True
            gp_model = probe.model
            for when in _instants(entry, gp_model):
                at_ns = int(when.timestamp()) * 10**9
                for counts in _usages(_thresholds(entry, gp_model, TieredPrices)):
                    ours = pricer.price(entry.provider, ref, Usage(**counts), at_ns=at_ns)
                    theirs = gp.calc_price(
                        gp.Usage(**counts), model_ref=ref, provider_id=gp_provider, genai_request_timestamp=when
                    )
                    if ours.model != entry.model_id:  # shadowed: test_catalog_real reports it
                        continue
                    if ours.total_usd is None or abs(ours.total_usd - theirs.total_price) > TOLERANCE:
                        diffs.setdefault((entry.provider, entry.model_id), []).append(
                            f"{entry.provider} {ref} at {when:%Y-%m-%d %H:%M}Z, input {counts['input_tokens']:,} "
                            f"(cache read {counts['cache_read_tokens']:,}, write {counts['cache_write_tokens']:,}), "
                            f"output {counts['output_tokens']:,}: ours {_usd(ours.total_usd)} USD, genai-prices "
                            f"{_usd(theirs.total_price)} USD ({gp_provider}:{theirs.model.id})"
                        )
        compared += known
    return compared, diffs


def _items() -> list[dict[str, Any]]:
    data = yaml.safe_load(DISAGREEMENTS.read_text(encoding="utf-8"))
    assert isinstance(data, list), "disagreements.yaml must be a list of items"
    return data


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def comparison(catalog: Catalog) -> tuple[int, dict[tuple[str, str], list[str]]]:
    gp = pytest.importorskip("genai_prices")
    return _compare(gp, catalog)


def _listed() -> set[tuple[str, str]]:
    return {(i["provider"], i["model"]) for i in _items() if i.get("other_source") == GENAI_PRICES}


def test_costs_agree_with_genai_prices(comparison: tuple[int, dict[tuple[str, str], list[str]]]) -> None:
    """Guards the prices: every cost difference from genai-prices is explained in disagreements.yaml.

    Items are matched by provider and catalog model id (the entry's ``id``, not an alias); a listed
    model is exempt at every instant and usage. For a new difference either fix the catalog or, when
    the other data set is wrong, add an item with the reason and the page that settles it.
    """
    _, diffs = comparison
    unlisted = {key: lines for key, lines in diffs.items() if key not in _listed()}
    report = "\n".join(line for lines in unlisted.values() for line in lines)
    assert not unlisted, f"{len(unlisted)} models cost differently in genai-prices and are not listed:\n{report}"


def test_enough_models_compared(comparison: tuple[int, dict[tuple[str, str], list[str]]]) -> None:
    """Guards the check itself: a renamed genai-prices provider must not make it compare nothing."""
    compared, _ = comparison
    assert compared >= MIN_COMPARED, f"only {compared} catalog models were found in genai-prices"


def test_listed_genai_disagreements_still_disagree(comparison: tuple[int, dict[tuple[str, str], list[str]]]) -> None:
    """Guards disagreements.yaml from going stale: a listed model that now agrees must be unlisted."""
    _, diffs = comparison
    stale = sorted(_listed() - set(diffs))
    assert not stale, f"these genai-prices items no longer disagree; remove them from disagreements.yaml: {stale}"


def test_disagreements_file_is_well_formed(catalog: Catalog) -> None:
    """Guards the record: each item names a catalog model and says why, with a public page that settles it."""
    ids = {(e.provider, e.model_id) for e in catalog.entries}
    problems = []
    for n, item in enumerate(_items()):
        where = f"item {n} ({item.get('provider')} {item.get('model')})"
        if not isinstance(item, dict) or set(item) != ITEM_KEYS:
            problems.append(f"{where}: keys must be exactly {sorted(ITEM_KEYS)}")
            continue
        if (item["provider"], item["model"]) not in ids:
            problems.append(f"{where}: no catalog entry has this provider and id")
        if item["other_source"] not in OTHER_SOURCES:
            problems.append(f"{where}: other_source must be one of {sorted(OTHER_SOURCES)}")
        for key in ("field", "reason"):
            if not str(item[key]).strip():
                problems.append(f"{where}: empty {key}")
        if not str(item["settled_by"]).startswith(("https://", "http://")):
            problems.append(f"{where}: settled_by must be a URL, got {item['settled_by']!r}")
    assert not problems, "\n".join(problems)
