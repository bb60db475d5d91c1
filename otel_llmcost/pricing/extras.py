"""Catalog schema v2: modality prices, per-unit fees and billing options (pure, Decimal).

A price period may carry, besides its token prices: audio and image token prices, fees per image,
per audio minute, per web search and per request by search context size, and the billing options
that scale a call's cost (batch API, service tiers, regions). See ``pricing/SCHEMA.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["EXTRA_FIELDS", "Extras", "PriceOptions", "parse_extras"]

_MILLION = Decimal(1_000_000)
_THOUSAND = Decimal(1000)
EXTRA_FIELDS = (
    "audio_input",
    "audio_output",
    "image_output",
    "per_image",
    "per_minute",
    "web_search",
    "search_context",
    "batch",
    "service_tiers",
    "regions",
)
_TOKEN_EXTRAS = ("audio_input", "audio_output", "image_output")
_SEARCH_CONTEXTS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class PriceOptions:
    """How a call was billed beyond its tokens.

    Attributes:
        service_tier: the service tier the request asked for (``flex``, ``priority``...).
        batch: the call went through the provider's batch API.
        region: the region that served it (``eu-west-1``), for regional price multipliers.
        search_context: the search context size (``low``, ``medium``, ``high``) of a search model.
    """

    service_tier: str | None = None
    batch: bool = False
    region: str | None = None
    search_context: str | None = None


@dataclass(frozen=True, slots=True)
class Extras:
    """The v2 part of a price period, per unit (token prices per token, fees per item)."""

    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    image_output: Decimal | None = None
    per_image: Decimal | None = None
    per_minute: Decimal | None = None
    web_search: Decimal | None = None
    search_context: Mapping[str, Decimal] = field(default_factory=dict)
    batch: Decimal | None = None
    service_tiers: Mapping[str, Decimal | Mapping[str, Decimal]] = field(default_factory=dict)
    regions: Mapping[str, Decimal] = field(default_factory=dict)

    def as_catalog(self) -> dict[str, Any]:
        """Return the fields that are set, in the catalog's units (per million tokens, per 1,000 searches)."""
        out: dict[str, Any] = {}
        for name in _TOKEN_EXTRAS:
            value = getattr(self, name)
            if value is not None:
                out[name] = _text(value * _MILLION)
        for name, value, unit in (
            ("per_image", self.per_image, 1),
            ("per_minute", self.per_minute, 1),
            ("web_search", self.web_search, 1000),
            ("batch", self.batch, 1),
        ):
            if value is not None:
                out[name] = _text(value * unit)
        if self.search_context:
            out["search_context"] = {k: _text(v * _THOUSAND) for k, v in self.search_context.items()}
        if self.service_tiers:
            out["service_tiers"] = {
                k: _text(v) if isinstance(v, Decimal) else {f: _text(p * _MILLION) for f, p in v.items()}
                for k, v in self.service_tiers.items()
            }
        if self.regions:
            out["regions"] = {k: _text(v) for k, v in self.regions.items()}
        return out


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def parse_extras(
    raw: Mapping[str, Any],
    price: Callable[[Any, str], Decimal],
    err: Callable[[str, str], Exception],
    fld: str,
    token_fields: tuple[str, ...],
) -> Extras | None:
    """Read the v2 fields of one price mapping; ``None`` when it has none.

    Args:
        raw: the price mapping from the YAML.
        price: reads one number as a non-negative Decimal (raises naming the field).
        err: builds the error for a field and a problem.
        fld: the mapping's field path, for messages.
        token_fields: the token price names a service tier may override.
    """
    if not any(name in raw for name in EXTRA_FIELDS):
        return None

    def per_token(name: str) -> Decimal | None:
        return price(raw[name], f"{fld}.{name}") / _MILLION if name in raw else None

    def multiplier(value: Any, path: str) -> Decimal:
        number = price(value, path)
        if not Decimal("0.01") <= number <= Decimal(10):
            raise err(path, f"a multiplier must be between 0.01 and 10, got {value!r}")
        return number

    def mapping(name: str) -> Mapping[str, Any]:
        value = raw.get(name) or {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise err(f"{fld}.{name}", "expected a mapping")
        return value

    search = mapping("search_context")
    for key in search:
        if key not in _SEARCH_CONTEXTS:
            raise err(f"{fld}.search_context.{key}", f"expected one of {', '.join(_SEARCH_CONTEXTS)}")
    tiers: dict[str, Decimal | Mapping[str, Decimal]] = {}
    for name, value in mapping("service_tiers").items():
        path = f"{fld}.service_tiers.{name}"
        if isinstance(value, Mapping):
            bad = set(value) - set(token_fields)
            if bad:
                raise err(f"{path}.{sorted(bad)[0]}", f"unknown price field (known: {', '.join(token_fields)})")
            tiers[name] = {k: price(v, f"{path}.{k}") / _MILLION for k, v in value.items()}
        else:
            tiers[name] = multiplier(value, path)
    return Extras(
        audio_input=per_token("audio_input"),
        audio_output=per_token("audio_output"),
        image_output=per_token("image_output"),
        per_image=price(raw["per_image"], f"{fld}.per_image") if "per_image" in raw else None,
        per_minute=price(raw["per_minute"], f"{fld}.per_minute") if "per_minute" in raw else None,
        web_search=price(raw["web_search"], f"{fld}.web_search") / _THOUSAND if "web_search" in raw else None,
        search_context={k: price(v, f"{fld}.search_context.{k}") / _THOUSAND for k, v in search.items()},
        batch=multiplier(raw["batch"], f"{fld}.batch") if "batch" in raw else None,
        service_tiers=tiers,
        regions={k: multiplier(v, f"{fld}.regions.{k}") for k, v in mapping("regions").items()},
    )
