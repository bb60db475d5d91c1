"""The price catalog: YAML files in ``pricing/`` loaded into immutable, indexed entries.

Pure module (no OpenTelemetry import). The schema is documented in ``pricing/SCHEMA.md``. Prices
are read as :class:`~decimal.Decimal` straight from the YAML text (never through ``float``), kept
per token, and every problem in a file is reported with the file, the entry and the field.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .extras import EXTRA_FIELDS, Extras, parse_extras
from .providers import known_providers

__all__ = [
    "ANY_MODEL",
    "Catalog",
    "CatalogError",
    "ModelEntry",
    "PricePeriod",
    "Prices",
    "Tier",
    "catalog_dir",
    "default_catalog",
    "load_catalog",
]

ANY_MODEL = "*"
"""Model id of a file's ``any_model`` entry: the price of every model the file does not list."""
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning", "request")
_TIER_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
_ENTRY_KEYS = {"id", "aliases", "snapshots", "kind", "source", "checked", "note", "prices"}
_FILE_KEYS = {"provider", "display_name", "source", "checked", "models", "note", "any_model"}
_KINDS = {"chat", "embeddings", "completion", "image", "audio", "rerank", "moderation"}
_MAX_PRICE = Decimal(100_000)  # USD per million tokens (or per request): anything above is a typo


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file, the entry and the field."""


@dataclass(frozen=True, slots=True)
class Tier:
    """Per-token prices that replace the base prices when input tokens exceed ``above_input_tokens``."""

    above_input_tokens: int
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal


@dataclass(frozen=True, slots=True)
class Prices:
    """Per-token USD prices (the YAML's per-million prices divided by 10^6) and a per-request fee."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal
    request: Decimal
    tiers: tuple[Tier, ...] = ()
    extras: Extras | None = None

    def per_million(self) -> dict[str, Any]:
        """Return the prices as the catalog writes them: USD per million tokens, USD per request."""
        out: dict[str, Any] = {name: getattr(self, name) * _MILLION for name in _TIER_FIELDS}
        out["request"] = self.request
        if self.tiers:
            out["tiers"] = [
                {
                    "above_input_tokens": t.above_input_tokens,
                    **{n: _plain(getattr(t, n) * _MILLION) for n in _TIER_FIELDS},
                }
                for t in self.tiers
            ]
        if self.extras is not None:
            out.update(self.extras.as_catalog())
        return {k: (_plain(v) if isinstance(v, Decimal) else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class PricePeriod:
    """Prices in force from ``starts_ns`` (Unix ns, UTC; ``None`` for the first period)."""

    starts: dt.date | None
    starts_ns: int | None
    prices: Prices


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of one provider, with its match keys and dated prices."""

    provider: str
    model_id: str
    aliases: tuple[str, ...]
    snapshots: bool
    kind: str
    source: str
    checked: dt.date
    periods: tuple[PricePeriod, ...]
    file: str
    note: str = ""

    def prices_at(self, ts_ns: int | None) -> Prices:
        """Return the prices in force at ``ts_ns`` (Unix ns); ``None`` means now."""
        periods = self.periods
        if ts_ns is None or len(periods) == 1:
            return periods[-1].prices
        chosen = periods[0].prices
        for period in periods[1:]:
            if period.starts_ns is not None and period.starts_ns <= ts_ns:
                chosen = period.prices
            else:
                break
        return chosen


@dataclass(slots=True)
class Catalog:
    """All model entries, indexed for matching. Build with :func:`load_catalog`."""

    entries: tuple[ModelEntry, ...]
    version: str
    display_names: Mapping[str, str] = field(default_factory=dict)
    overrides: tuple[ModelEntry, ...] = ()
    any_model: Mapping[str, ModelEntry] = field(default_factory=dict)
    exact: dict[str, dict[str, ModelEntry]] = field(default_factory=dict)
    snapshot: dict[str, dict[str, ModelEntry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.any_model = {e.provider: e for e in (*self.entries, *self.overrides) if e.model_id == ANY_MODEL}
        self._index(tuple(e for e in self.entries if e.model_id != ANY_MODEL), replace=False)
        # user overrides win over the built-in entries they share an id with
        self._index(tuple(e for e in self.overrides if e.model_id != ANY_MODEL), replace=True)

    def _index(self, entries: tuple[ModelEntry, ...], *, replace: bool) -> None:
        seen: dict[tuple[str, str], ModelEntry] = {}
        for entry in entries:
            exact = self.exact.setdefault(entry.provider, {})
            snap = self.snapshot.setdefault(entry.provider, {})
            for key in (entry.model_id, *entry.aliases):
                key = key.lower()
                other = seen.get((entry.provider, key)) if replace else exact.get(key)
                seen[(entry.provider, key)] = entry
                if replace and other is None:
                    exact.pop(key, None)
                    snap.pop(key, None)
                if other is not None:
                    raise CatalogError(
                        f"{entry.file}: model {entry.model_id!r}: id or alias {key!r} is already matched by "
                        f"{other.model_id!r} ({other.file}); one id may match one entry only"
                    )
                exact[key] = entry
                if entry.snapshots:
                    snap[key] = entry

    def providers(self) -> list[str]:
        """Return the catalog provider ids that have at least one entry, sorted."""
        return sorted(self.exact)

    def models(self, provider: str | None = None) -> list[ModelEntry]:
        """Return the entries (built-in, then user overrides), optionally of one catalog provider only."""
        return [e for e in (*self.entries, *self.overrides) if provider is None or e.provider == provider]


# --- loading -------------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loader that reads floats as Decimal from their text, so 0.075 stays exactly 0.075."""


def _decimal_from_yaml(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))  # type: ignore[arg-type]


def _text_from_yaml(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal_from_yaml)
# Dates stay text until _date() checks them, so a bad date is reported with its field.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text_from_yaml)


def catalog_dir() -> Path:
    """Return the directory holding the built-in catalog YAML files.

    Inside an installed wheel the files live in ``otel_llmcost/_data/pricing``; in a source
    checkout they are the repository's ``pricing/`` directory.
    """
    packaged = Path(__file__).resolve().parent.parent / "_data" / "pricing"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "pricing"


class _Where:
    """Formats 'file: model X: field' prefixes for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, entry: str | None, fld: str, problem: str) -> CatalogError:
        where = f"{self.file}: " + (f"model {entry!r}: " if entry else "")
        return CatalogError(f"{where}field {fld!r}: {problem}")


def _date(value: Any, where: _Where, entry: str | None, fld: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise where.err(entry, fld, f"expected a date YYYY-MM-DD, got {value!r}") from None


def _price(value: Any, where: _Where, entry: str, fld: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise where.err(entry, fld, f"expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise where.err(entry, fld, f"expected a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise where.err(entry, fld, f"expected a finite price >= 0, got {value!r}")
    if number > _MAX_PRICE:
        raise where.err(entry, fld, f"price {value!r} is above {_MAX_PRICE} USD per unit: a typo?")
    return number


def _prices(raw: Any, where: _Where, entry: str, fld: str) -> tuple[dt.date | None, Prices]:
    if not isinstance(raw, Mapping):
        raise where.err(entry, fld, f"expected a mapping of prices, got {type(raw).__name__}")
    unknown = set(raw) - set(_PRICE_FIELDS) - set(EXTRA_FIELDS) - {"tiers", "from"}
    if unknown:
        known = ", ".join((*_PRICE_FIELDS, *EXTRA_FIELDS))
        raise where.err(entry, f"{fld}.{sorted(unknown)[0]}", f"unknown price field (known: {known})")
    for required in ("input", "output"):
        if required not in raw:
            raise where.err(entry, f"{fld}.{required}", "missing (every model needs input and output prices)")
    per_m = {name: _price(raw[name], where, entry, f"{fld}.{name}") for name in _PRICE_FIELDS if name in raw}
    starts = _date(raw["from"], where, entry, f"{fld}.from") if "from" in raw else None

    def per_token(values: Mapping[str, Decimal], base: Mapping[str, Decimal]) -> dict[str, Decimal]:
        merged = {**base, **values}
        out = {"input": merged["input"] / _MILLION, "output": merged["output"] / _MILLION}
        out["cache_read"] = merged["cache_read"] / _MILLION if "cache_read" in merged else out["input"]
        out["cache_write"] = merged["cache_write"] / _MILLION if "cache_write" in merged else out["input"]
        out["cache_write_1h"] = (
            merged["cache_write_1h"] / _MILLION if "cache_write_1h" in merged else out["cache_write"]
        )
        out["reasoning"] = merged["reasoning"] / _MILLION if "reasoning" in merged else out["output"]
        return out

    base = per_token(per_m, {})
    tiers: list[Tier] = []
    raw_tiers = raw.get("tiers") or []
    if not isinstance(raw_tiers, list):
        raise where.err(entry, f"{fld}.tiers", "expected a list of tiers")
    last = 0
    for i, raw_tier in enumerate(raw_tiers):
        tf = f"{fld}.tiers[{i}]"
        if not isinstance(raw_tier, Mapping):
            raise where.err(entry, tf, "expected a mapping")
        unknown = set(raw_tier) - set(_TIER_FIELDS) - {"above_input_tokens"}
        if unknown:
            raise where.err(entry, f"{tf}.{sorted(unknown)[0]}", "unknown tier field")
        above = raw_tier.get("above_input_tokens")
        if isinstance(above, bool) or not isinstance(above, int) or above <= last:
            raise where.err(entry, f"{tf}.above_input_tokens", f"expected an increasing whole number, got {above!r}")
        last = above
        tier_m = {n: _price(raw_tier[n], where, entry, f"{tf}.{n}") for n in _TIER_FIELDS if n in raw_tier}
        tp = per_token(tier_m, per_m)
        tiers.append(Tier(above_input_tokens=above, **tp))
    request = per_m.get("request", _ZERO)
    extras = parse_extras(
        raw,
        lambda value, path: _price(value, where, entry, path),
        lambda path, problem: where.err(entry, path, problem),
        fld,
        _TIER_FIELDS,
    )
    return starts, Prices(request=request, tiers=tuple(tiers), extras=extras, **base)


def _periods(raw: Any, where: _Where, entry: str) -> tuple[PricePeriod, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise where.err(entry, "prices", "empty price list")
    periods: list[PricePeriod] = []
    for i, item in enumerate(items):
        fld = f"prices[{i}]" if isinstance(raw, list) else "prices"
        starts, prices = _prices(item, where, entry, fld)
        if i > 0 and starts is None:
            raise where.err(entry, f"{fld}.from", "every price period after the first needs a 'from' date")
        if periods and starts is not None and periods[-1].starts is not None and starts <= periods[-1].starts:
            raise where.err(entry, f"{fld}.from", "price periods must be in date order, oldest first")
        starts_ns = None
        if starts is not None:
            starts_ns = (
                int(dt.datetime(starts.year, starts.month, starts.day, tzinfo=dt.timezone.utc).timestamp()) * 10**9
            )
        periods.append(PricePeriod(starts=starts, starts_ns=starts_ns, prices=prices))
    return tuple(periods)


def _ids(value: Any, where: _Where, entry: str, fld: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise where.err(entry, fld, "expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_entry(
    raw: Any,
    path: str,
    where: _Where,
    provider: str,
    default_source: Any = None,
    default_checked: Any = None,
    *,
    require_source: bool = True,
) -> ModelEntry:
    """Parse one model entry of a catalog (or overrides) file.

    Args:
        raw: the entry's mapping.
        path: where it is in the file (``models[3]``), for messages about a missing id.
        where: the file, for messages.
        provider: the catalog provider id of the entry.
        default_source: the file's source, for entries that name none.
        default_checked: the file's date checked, for entries that name none.
        require_source: refuse entries without a public source and date (the built-in catalog).

    Raises:
        CatalogError: the entry is malformed; the message names file, entry and field.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not raw["id"].strip():
        raise where.err(None, f"{path}.id", "every model needs a non-empty string id")
    model_id = raw["id"].strip()
    bad = set(raw) - _ENTRY_KEYS
    if bad:
        raise where.err(model_id, sorted(bad)[0], f"unknown key (known: {', '.join(sorted(_ENTRY_KEYS))})")
    source = raw.get("source", default_source)
    checked_raw = raw.get("checked", default_checked)
    has_url = isinstance(source, str) and source.startswith(("http://", "https://"))
    if (require_source or source is not None) and not has_url:
        raise where.err(model_id, "source", f"every entry needs a public source URL, got {source!r}")
    if require_source and checked_raw is None:
        raise where.err(model_id, "checked", "every entry needs the date its source was checked")
    kind = raw.get("kind", "chat")
    if kind not in _KINDS:
        raise where.err(model_id, "kind", f"expected one of {', '.join(sorted(_KINDS))}, got {kind!r}")
    snapshots = raw.get("snapshots", True)
    if not isinstance(snapshots, bool):
        raise where.err(model_id, "snapshots", f"expected true or false, got {snapshots!r}")
    if "prices" not in raw:
        raise where.err(model_id, "prices", "missing")
    return ModelEntry(
        provider=provider,
        model_id=model_id,
        aliases=_ids(raw.get("aliases"), where, model_id, "aliases"),
        snapshots=snapshots,
        kind=kind,
        source=source or "",
        checked=_date(checked_raw, where, model_id, "checked") if checked_raw is not None else dt.date.today(),
        periods=_periods(raw["prices"], where, model_id),
        file=where.file,
        note=str(raw.get("note", "")),
    )


def parse_file(text: str, file: str, *, providers: Iterable[str] | None = None) -> tuple[str, str, list[ModelEntry]]:
    """Parse one catalog file's text.

    Args:
        text: the YAML text.
        file: the name used in error messages.
        providers: allowed provider ids (default: every id :mod:`.providers` knows).

    Returns:
        ``(provider, display_name, entries)``.

    Raises:
        CatalogError: the file is malformed; the message names file, entry and field.
    """
    where = _Where(file)
    try:
        data = yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError) as exc:
        raise CatalogError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise CatalogError(f"{file}: expected a mapping with 'provider' and 'models'")
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise where.err(None, sorted(unknown)[0], f"unknown top-level key (known: {', '.join(sorted(_FILE_KEYS))})")
    provider = data.get("provider")
    allowed = set(providers) if providers is not None else set(known_providers())
    if not isinstance(provider, str) or provider not in allowed:
        raise where.err(None, "provider", f"unknown provider {provider!r} (known: {', '.join(sorted(allowed))})")
    default_source = data.get("source")
    default_checked = data.get("checked")
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise where.err(None, "models", "expected a non-empty list of models")
    entries = [
        parse_entry(raw, f"models[{i}]", where, provider, default_source, default_checked)
        for i, raw in enumerate(models)
    ]
    if "any_model" in data:
        # a provider-wide price (local servers: every model is free), used only when no entry matches
        raw_any = data["any_model"]
        if not isinstance(raw_any, Mapping) or set(raw_any) - {"prices", "note"}:
            raise where.err(None, "any_model", "expected a mapping with prices (and a note)")
        entries.append(
            parse_entry(
                {"id": ANY_MODEL, "snapshots": False, **raw_any},
                "any_model",
                where,
                provider,
                default_source,
                default_checked,
            )
        )
    return provider, str(data.get("display_name", provider)), entries


def load_catalog(paths: Sequence[Path] | None = None) -> Catalog:
    """Load catalog files into a :class:`Catalog`.

    Args:
        paths: YAML files to load; default every ``*.yaml`` file in :func:`catalog_dir`.

    Raises:
        CatalogError: a file is malformed or two entries match the same id.
    """
    files = sorted(paths) if paths is not None else sorted(catalog_dir().glob("*.yaml"))
    digest = hashlib.sha256()
    entries: list[ModelEntry] = []
    names: dict[str, str] = {}
    newest = dt.date(1970, 1, 1)
    for path in files:
        if path.name.startswith("_") or path.name == "disagreements.yaml":
            continue
        text = path.read_text(encoding="utf-8")
        digest.update(text.encode())
        provider, display, found = parse_file(text, path.name)
        names[provider] = display
        entries.extend(found)
        newest = max([newest, *(e.checked for e in found)])
    version = f"{newest:%Y.%m.%d}+{digest.hexdigest()[:8]}"
    return Catalog(entries=tuple(entries), version=version, display_names=names)


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """Return the built-in catalog, loaded on first use (importing the package does not load it)."""
    return load_catalog()


def _plain(value: Decimal) -> str:
    """Format a Decimal without exponent or trailing zeros (``2.50`` -> ``2.5``)."""
    text = format(value.normalize(), "f")
    return text
