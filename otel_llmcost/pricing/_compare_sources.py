"""Readers of the public price data sets ``pricing diff`` compares the catalog with (pure, Decimal).

Each reader turns the other data set's models into :class:`PriceSet` periods in catalog terms (USD per
1,000,000 tokens, the catalog's field names) and pairs them with catalog entries:

- genai-prices: the installed package's bundled data, imported lazily (it is not a runtime
  dependency). Catalog providers map to its providers as in ``GP_PROVIDER``; a model is looked up
  with genai-prices' own matching, as its ``calc_price`` would do.
- LiteLLM: a ``model_prices_and_context_window.json`` file, read by :mod:`._compare_litellm`
  with the shared types and helpers defined here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from itertools import pairwise
from typing import Any

from .catalog import ModelEntry
from .matching import Matcher

__all__ = [
    "FIELDS",
    "GENAI_PRICES",
    "GP_PROVIDER",
    "LITELLM",
    "CompareError",
    "External",
    "PriceSet",
    "SyncError",
    "Found",
    "MILLION",
    "Read",
    "TWELVE_DIGITS",
    "effective",
    "read_genai_prices",
    "tiers",
    "unaddable",
]

GENAI_PRICES = "genai-prices"
LITELLM = "litellm"
FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
"""The token prices compared, in catalog names."""

# Catalog provider id -> genai-prices provider id (the standing cross-check test uses it too). genai-prices
# has one "google" provider for the Gemini API and Vertex AI; its additions go to "google" only.
GP_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "vertex": "google",
    "bedrock": "aws",
    "azure": "azure",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "groq": "groq",
    "together": "together",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "novita": "novita",
    "moonshot": "moonshotai",
    "zhipu": "zai",  # Z.ai international USD prices; genai-prices' "zhipuai" is the CNY mainland platform
    "minimax": "minimax",
    "hyperbolic": "huggingface_hyperbolic",  # Hugging Face router data, passing Hyperbolic's prices through
}
_GP_PRIMARY = {gp: ours for ours, gp in reversed(list(GP_PROVIDER.items()))}
MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_NO_OUTPUT_KINDS = ("embeddings", "rerank", "moderation")
TWELVE_DIGITS = Context(prec=12)


class CompareError(ValueError):
    """The other price data set cannot be read, or a comparison or sync request is invalid."""


class SyncError(CompareError):
    """An accepted change cannot be written; the catalog files were left as they were."""


@dataclass(frozen=True, slots=True)
class PriceSet:
    """One price period of the other data set in catalog terms.

    Attributes:
        base: the token prices it lists (a subset of ``input``, ``output``, ``cache_read``,
            ``cache_write``, ``cache_write_1h``), USD per 1M tokens.
        tiers: long-context prices by ``above_input_tokens``: the prices it lists above that size.
        fees: catalog schema v2 fields it gives (``audio_input``, ``per_image``, ``request``...).
        starts: the date the period took effect, when the data set says.
    """

    base: Mapping[str, Decimal]
    tiers: Mapping[int, Mapping[str, Decimal]] = field(default_factory=dict)
    fees: Mapping[str, Decimal] = field(default_factory=dict)
    starts: dt.date | None = None

    def effective(self, above: int | None) -> dict[str, Decimal]:
        """Return what it bills per 1M tokens, for a request above *above* input tokens (``None``: base)."""
        tier: Mapping[str, Decimal] = {}
        for threshold in sorted(self.tiers):
            if above is not None and threshold <= above:
                tier = self.tiers[threshold]
        return effective(self.base, tier)

    def prices_tokens(self) -> bool:
        """Whether it lists an input or an output token price (else there is nothing to compare)."""
        return "input" in self.base or "output" in self.base

    def lists(self, name: str) -> bool:
        """Whether it gives *name* a price, itself or through the price it defaults to.

        An unlisted input or output price is not compared: the data set may bill that part another
        way (per image token, per tiered range) and writing 0 from it would under-price.
        """
        chain = {"cache_read": ("input",), "cache_write": ("input",), "cache_write_1h": ("cache_write", "input")}
        return any(k in self.base for k in (name, *chain.get(name, ())))

    def absent_note(self, name: str) -> str:
        """Say how an unlisted price is billed (empty when *name* is listed)."""
        if name in self.base:
            return ""
        billed = {"cache_read": "as input", "cache_write": "as input", "cache_write_1h": "as cache_write"}
        return f"theirs: not listed, billed {billed.get(name, 'at 0')}"

    def to_yaml(self, *, with_start: bool = False) -> dict[str, Any]:
        """Return the period as a catalog ``prices`` mapping (input and output always present)."""
        out: dict[str, Any] = {"from": self.starts} if with_start and self.starts else {}
        out["input"] = self.base.get("input", _ZERO)
        out["output"] = self.base.get("output", _ZERO)
        out.update({k: self.base[k] for k in FIELDS[2:] if k in self.base})
        out.update(self.fees)
        if self.tiers:
            out["tiers"] = [{"above_input_tokens": t, **self.tiers[t]} for t in sorted(self.tiers)]
        return out


def effective(base: Mapping[str, Decimal], tier: Mapping[str, Decimal] | None) -> dict[str, Decimal]:
    """Apply the catalog's defaults (see ``pricing/SCHEMA.md``) to listed prices, per 1M tokens.

    An unlisted input or output price bills nothing (as in both data sets); cache reads and writes
    default to the input price, one-hour writes to the five-minute price; tier prices not listed
    keep the base price.
    """
    merged = {**base, **(tier or {})}
    inp = merged.get("input", _ZERO)
    write = merged.get("cache_write", inp)
    return {
        "input": inp,
        "output": merged.get("output", _ZERO),
        "cache_read": merged.get("cache_read", inp),
        "cache_write": write,
        "cache_write_1h": merged.get("cache_write_1h", write),
    }


@dataclass(frozen=True, slots=True)
class External:
    """A model of the other data set, for one catalog provider.

    Attributes:
        provider: the catalog provider id.
        model_id: the id an addition would get.
        their_id: how the other data set names it (``aws:claude-sonnet-4``, a LiteLLM key).
        periods: its price periods, oldest first.
        kind: the catalog kind, when the data set says.
        deprecated: the data set marks it deprecated.
    """

    provider: str
    model_id: str
    their_id: str
    periods: tuple[PriceSet, ...]
    kind: str | None = None
    deprecated: bool = False

    def at(self, day: dt.date) -> PriceSet:
        """Return the period in force on *day* (the last one started; the first when none has)."""
        for period in reversed(self.periods):
            if period.starts is None or period.starts <= day:
                return period
        return self.periods[0]


Found = list[tuple[ModelEntry, External]]
Read = tuple[str, Found, list[External], Counter[str]]


def tiers(per_field: Mapping[str, Iterable[tuple[int, Decimal]]]) -> dict[int, dict[str, Decimal]]:
    """Per-field tier prices -> catalog tiers: at each threshold, each field's price for a request above it."""
    steps = {name: sorted(points) for name, points in per_field.items()}
    out: dict[int, dict[str, Decimal]] = {}
    for threshold in sorted({t for points in steps.values() for t, _ in points}):
        out[threshold] = {}
        for name, points in steps.items():
            below = [price for start, price in points if start <= threshold]
            if below:
                out[threshold][name] = below[-1]
    return out


def unaddable(prices: PriceSet, kind: str | None) -> str | None:
    """Why a model cannot become a catalog entry as listed (``None``: it can)."""
    has_in, has_out = "input" in prices.base, "output" in prices.base
    if has_in and has_out:
        return None
    if has_in and kind in _NO_OUTPUT_KINDS:
        return None  # nothing to bill as output
    if not prices.base and prices.fees:
        return None  # billed per image, minute or request only
    if not prices.base and not prices.fees:
        return "models with no price the catalog can carry (per second of video, per page...)"
    return "models with only an input or only an output token price (writing 0 for the other would under-price)"


# --- genai-prices ---------------------------------------------------------------------------------

_GP_TOKENS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
}
_GP_FEES = {
    "audio_input": ("input_audio_mtok", Decimal(1)),
    "audio_output": ("output_audio_mtok", Decimal(1)),
    "image_output": ("output_image_mtok", Decimal(1)),
    "web_search": ("web_searches_kcount", Decimal(1)),  # both per 1,000 searches
    "request": ("requests_kcount", Decimal("0.001")),  # per 1,000 requests -> per request
}


def _gp_snapshot() -> tuple[str, Any]:
    try:
        import genai_prices
        from genai_prices import data_snapshot
    except ImportError:
        raise CompareError(
            "comparing with genai-prices needs the genai-prices package: pip install genai-prices"
        ) from None
    return str(genai_prices.__version__), data_snapshot.get_snapshot()


def _gp_price(model_price: Any, starts: dt.date | None) -> PriceSet:
    values = {k: v for k, v in vars(model_price).items() if v is not None}
    base: dict[str, Decimal] = {}
    per_field: dict[str, list[tuple[int, Decimal]]] = {}
    for name, key in _GP_TOKENS.items():
        value = values.get(key)
        if value is None:
            continue
        if hasattr(value, "tiers"):  # TieredPrices: a base and prices above input-token thresholds
            base[name] = value.base
            per_field[name] = [(tier.start, tier.price) for tier in value.tiers]
        else:
            base[name] = value
    fees = {
        name: values[key] * scale for name, (key, scale) in _GP_FEES.items() if isinstance(values.get(key), Decimal)
    }
    return PriceSet(base, tiers(per_field), fees, starts)


def _gp_periods(model: Any) -> tuple[PriceSet, ...]:
    """Dated periods of a genai-prices model; time-of-day prices (off-peak discounts) are left out."""
    if not isinstance(model.prices, list):
        return (_gp_price(model.prices, None),)
    periods = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if constraint is None:
            periods.append(_gp_price(conditional.prices, None))
        elif hasattr(constraint, "start_date"):
            periods.append(_gp_price(conditional.prices, constraint.start_date))
    return tuple(periods)


def _in_order(periods: Sequence[PriceSet]) -> bool:
    """Whether the periods can be written as catalog history: every one but the first dated, in order."""
    if any(p.starts is None for p in periods[1:]):
        return False
    dated = [p.starts for p in periods if p.starts is not None]
    return all(a < b for a, b in pairwise(dated))


def read_genai_prices(entries: Sequence[ModelEntry], wanted: set[str], matcher: Matcher, day: dt.date) -> Read:
    """Pair catalog entries with genai-prices models; list the models of covered providers we lack.

    Raises:
        CompareError: genai-prices is not installed.
    """
    version, snapshot = _gp_snapshot()
    found: Found = []
    resolved: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        gp_provider = GP_PROVIDER.get(entry.provider)
        if gp_provider is None:
            continue
        for ref in (entry.model_id, *entry.aliases):
            try:
                _, model = snapshot.find_provider_model(ref, None, gp_provider, None)
            except LookupError:
                continue
            periods = _gp_periods(model)
            if periods:
                found.append((entry, External(entry.provider, model.id, f"{gp_provider}:{model.id}", periods)))
                resolved[entry.provider].add(model.id)
            break
    extra: list[External] = []
    skipped: Counter[str] = Counter()
    by_id = {p.id: p for p in snapshot.providers}
    for pid in sorted(wanted):
        gp_provider = GP_PROVIDER.get(pid)
        if gp_provider is None or _GP_PRIMARY[gp_provider] != pid or gp_provider not in by_id:
            continue
        for model in by_id[gp_provider].models:
            if model.id in resolved[pid] or matcher.match(pid, model.id) is not None:
                continue
            periods = _gp_periods(model)
            if not periods:
                skipped["models with time-of-day prices only"] += 1
                continue
            ext = External(pid, model.id, f"{gp_provider}:{model.id}", periods, None, bool(model.deprecated))
            if not _in_order(periods):
                ext = External(pid, model.id, ext.their_id, (ext.at(day),), None, ext.deprecated)
            kind = "embeddings" if "embed" in model.id.lower() else None
            why = unaddable(ext.at(day), kind)
            if why:
                skipped[why] += 1
            else:
                extra.append(External(pid, model.id, ext.their_id, ext.periods, kind, ext.deprecated))
    return f"genai-prices {version}", found, extra, skipped
