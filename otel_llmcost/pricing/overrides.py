"""User price overrides: custom models, negotiated discounts, Azure deployment names (pure).

An overrides file (path given to :func:`load_overrides`, ``configure(pricing_overrides=...)`` or
``OTEL_LLMCOST_PRICING_OVERRIDES``) is YAML::

    models:                       # custom models: fine-tunes, self-hosted, private deployments
      - provider: openai          # any provider name otel-llmcost knows
        id: ft:gpt-4o-mini-2024-07-18:acme::abc123
        prices: {input: 0.30, output: 1.20}     # the catalog's price schema (SCHEMA.md)
    discounts:                    # negotiated multipliers on the final cost
      - provider: azure
        multiplier: 0.85          # every Azure model
      - provider: openai
        model: gpt-4o             # one model (wins over the provider's multiplier)
        multiplier: 0.9
    deployments:                  # deployment name -> the model it serves, per provider
      azure:
        prod-chat: gpt-4o

Precedence: an override model wins over a built-in entry with the same id or alias; a model's
discount wins over its provider's; deployments are resolved before matching. The file is validated
on load: an unknown provider, a negative price, a bad date, a model matched twice, or an unknown key
is refused with the file, the entry and the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from .catalog import CatalogError, ModelEntry, _Loader, _price, _Where, parse_entry
from .providers import canonical_provider

__all__ = ["Overrides", "load_overrides", "parse_overrides"]

_TOP_KEYS = {"models", "discounts", "deployments"}
_DISCOUNT_KEYS = {"provider", "model", "multiplier", "note"}


@dataclass(frozen=True)
class Overrides:
    """A parsed overrides file.

    Attributes:
        entries: custom model entries (win over built-in ones with the same id).
        discounts: multiplier by ``(catalog provider, catalog model id or None)``.
        deployments: deployment name (lower-case) -> model id, by catalog provider.
        file: where they came from.
    """

    entries: tuple[ModelEntry, ...] = ()
    discounts: Mapping[tuple[str, str | None], Decimal] = field(default_factory=dict)
    deployments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    file: str = ""

    def multiplier(self, provider: str | None, model: str | None) -> Decimal | None:
        """Return the discount multiplier for a matched (provider, model), or ``None``."""
        if not self.discounts or provider is None:
            return None
        found = self.discounts.get((provider, model.lower() if model else None))
        return found if found is not None else self.discounts.get((provider, None))


def _provider(value: Any, where: _Where, entry: str | None, fld: str) -> str:
    provider = canonical_provider(value) if isinstance(value, str) else None
    if provider is None:
        raise where.err(entry, fld, f"unknown provider {value!r}")
    return provider


def parse_overrides(text: str, file: str) -> Overrides:
    """Parse the text of an overrides file.

    Raises:
        CatalogError: the file is malformed; the message names the file, the entry and the field.
    """
    where = _Where(file)
    try:
        data = yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError) as exc:
        raise CatalogError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return Overrides(file=file)
    if not isinstance(data, Mapping):
        raise CatalogError(f"{file}: expected a mapping with models, discounts and/or deployments")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise where.err(None, sorted(unknown)[0], f"unknown top-level key (known: {', '.join(sorted(_TOP_KEYS))})")

    models = data.get("models") or []
    if not isinstance(models, list):
        raise where.err(None, "models", "expected a list of models")
    entries = []
    for i, raw in enumerate(models):
        if not isinstance(raw, Mapping):
            raise where.err(None, f"models[{i}]", "expected a mapping")
        label = str(raw.get("id", f"models[{i}]"))
        provider = _provider(raw.get("provider"), where, label, "provider")
        body = {k: v for k, v in raw.items() if k != "provider"}
        entries.append(parse_entry(body, f"models[{i}]", where, provider, require_source=False))
    seen: dict[tuple[str, str], str] = {}
    for entry in entries:
        for key in (entry.model_id, *entry.aliases):
            other = seen.setdefault((entry.provider, key.lower()), entry.model_id)
            if other != entry.model_id:
                raise where.err(entry.model_id, "id", f"{key!r} is also matched by {other!r} in this file")

    discounts: dict[tuple[str, str | None], Decimal] = {}
    raw_discounts = data.get("discounts") or []
    if not isinstance(raw_discounts, list):
        raise where.err(None, "discounts", "expected a list")
    for i, raw in enumerate(raw_discounts):
        path = f"discounts[{i}]"
        if not isinstance(raw, Mapping) or set(raw) - _DISCOUNT_KEYS:
            raise where.err(None, path, f"expected a mapping of {', '.join(sorted(_DISCOUNT_KEYS))}")
        provider = _provider(raw.get("provider"), where, None, f"{path}.provider")
        model = raw.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise where.err(None, f"{path}.model", f"expected a model id, got {model!r}")
        multiplier = _price(raw.get("multiplier"), where, str(model or provider), f"{path}.multiplier")
        if not Decimal(0) < multiplier <= Decimal(2):
            raise where.err(
                None, f"{path}.multiplier", f"expected a multiplier above 0 and at most 2, got {multiplier}"
            )
        target: tuple[str, str | None] = (provider, model.strip().lower() if model else None)
        if target in discounts:
            raise where.err(None, path, f"a second discount for {target[1] or provider!r}")
        discounts[target] = multiplier

    deployments: dict[str, dict[str, str]] = {}
    raw_deployments = data.get("deployments") or {}
    if not isinstance(raw_deployments, Mapping):
        raise where.err(None, "deployments", "expected a mapping of provider -> {deployment: model}")
    for name, mapping in raw_deployments.items():
        provider = _provider(name, where, None, f"deployments.{name}")
        if not isinstance(mapping, Mapping) or not all(isinstance(v, str) and v for v in mapping.values()):
            raise where.err(None, f"deployments.{name}", "expected a mapping of deployment name -> model id")
        deployments[provider] = {str(k).lower(): v for k, v in mapping.items()}
    return Overrides(tuple(entries), discounts, deployments, file)


def load_overrides(path: str | Path) -> Overrides:
    """Read and validate an overrides file.

    Raises:
        CatalogError: the file cannot be read or is malformed (file, entry and field named).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{file}: cannot read the pricing overrides file: {exc.strerror or exc}") from None
    return parse_overrides(text, str(file))
