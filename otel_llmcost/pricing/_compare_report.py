"""What ``pricing diff`` finds: additions and disagreements, as a review table or JSON (pure, Decimal)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._compare_sources import PriceSet

__all__ = ["ALL_ADDITIONS", "Addition", "Disagreement", "FieldDiff", "Report", "Review", "plain"]

ALL_ADDITIONS = "all-additions"
"""The ``accept`` value of ``sync`` that takes every addition of a report."""


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One price both sides bill differently, in USD per 1,000,000 tokens.

    Attributes:
        field: ``input``, ``output``, ``cache_read``, ``cache_write`` or ``cache_write_1h``.
        above_input_tokens: the long-context tier compared (``None``: the base prices).
        ours: what the catalog bills.
        theirs: what the other data set bills.
        note: how a value was derived when a side does not list it (``theirs: no tier``).
    """

    field: str
    above_input_tokens: int | None
    ours: Decimal
    theirs: Decimal
    note: str = ""

    @property
    def label(self) -> str:
        """The field with its tier, e.g. ``input >200,000``."""
        return self.field if self.above_input_tokens is None else f"{self.field} >{self.above_input_tokens:,}"


@dataclass(frozen=True, slots=True)
class Review:
    """An item of ``pricing/disagreements.yaml``: a difference someone reviewed, with the page that settles it."""

    field: str
    reason: str
    settled_by: str


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A catalog model the other data set prices differently on one date.

    Attributes:
        provider: catalog provider id.
        model_id: the catalog entry's id.
        their_id: the model as the other data set names it (``aws:claude-sonnet-4``, a LiteLLM key).
        at: the date compared.
        effective: the date the other data set's price took effect, when it says.
        fields: the differing prices.
        theirs: the other data set's price period (what ``sync`` appends).
        reviews: items of ``disagreements.yaml`` for this model and data set (empty: not reviewed).
        upcoming: the other data set announces this price from ``effective``, after the report's date.
    """

    provider: str
    model_id: str
    their_id: str
    at: dt.date
    effective: dt.date | None
    fields: tuple[FieldDiff, ...]
    theirs: PriceSet
    reviews: tuple[Review, ...] = ()
    upcoming: bool = False

    @property
    def key(self) -> str:
        """How ``sync(accept=[...])`` names this item: ``provider/model``, plus ``@date`` when upcoming."""
        suffix = f"@{self.effective.isoformat()}" if self.upcoming and self.effective else ""
        return f"{self.provider}/{self.model_id}{suffix}"

    @property
    def reviewed(self) -> bool:
        """Whether ``disagreements.yaml`` lists this model for this data set (matched by provider and id)."""
        return bool(self.reviews)


@dataclass(frozen=True, slots=True)
class Addition:
    """A model the other data set prices for a provider the catalog covers, and the catalog lacks.

    Attributes:
        provider: catalog provider id.
        model_id: the model id to add.
        periods: its price periods, oldest first (one unless the other data set dates its prices).
        current: the period in force on the report's date.
        kind: the catalog kind when the other data set says (``embeddings``...), else ``None``.
        deprecated: the other data set marks the model deprecated.
    """

    provider: str
    model_id: str
    periods: tuple[PriceSet, ...]
    current: PriceSet
    kind: str | None = None
    deprecated: bool = False

    @property
    def key(self) -> str:
        """How ``sync(accept=[...])`` names this item: ``provider/model``."""
        return f"{self.provider}/{self.model_id}"


@dataclass(frozen=True, slots=True)
class Report:
    """What ``diff`` found, for review.

    Attributes:
        source: ``genai-prices`` or ``litellm``.
        source_label: the data set and its version, e.g. ``genai-prices 0.2.3``.
        at: the instant whose prices were compared (UTC).
        catalog_version: the compared catalog's version.
        compared: catalog models found in the other data set.
        additions: models to add, by provider and id.
        disagreements: differing models, reviewed ones included (and marked).
        skipped: models of the other data set not compared or not listed as additions, counted by reason.
    """

    source: str
    source_label: str
    at: dt.datetime
    catalog_version: str
    compared: int
    additions: tuple[Addition, ...]
    disagreements: tuple[Disagreement, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def unreviewed(self) -> tuple[Disagreement, ...]:
        """The disagreements ``disagreements.yaml`` does not list."""
        return tuple(d for d in self.disagreements if not d.reviewed)

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict: prices are decimal strings in USD per 1M tokens."""
        out: dict[str, Any] = _jsonable(self)
        for item, addition in zip(out["additions"], self.additions, strict=True):
            item["key"] = addition.key
            item["current"] = _jsonable(addition.current.to_yaml())
            item["periods"] = [_jsonable(p.to_yaml(with_start=True)) for p in addition.periods]
        for item, disagreement in zip(out["disagreements"], self.disagreements, strict=True):
            item["key"], item["reviewed"] = disagreement.key, disagreement.reviewed
            item["theirs"] = _jsonable(disagreement.theirs.to_yaml(with_start=True))
        return out

    def to_text(self) -> str:
        """Return a table for review: new disagreements, reviewed ones with their reason, then additions."""
        new, reviewed = self.unreviewed, tuple(d for d in self.disagreements if d.reviewed)
        out = [
            f"Catalog {self.catalog_version} vs {self.source_label}, prices on {self.at:%Y-%m-%d %H:%M} UTC, "
            "USD per 1M tokens",
            f"{self.compared} catalog models found in both: {len(self.disagreements)} disagreements "
            f"({len(new)} new, {len(reviewed)} reviewed); {len(self.additions)} additions",
        ]
        for title, items in (("NEW DISAGREEMENTS", new), ("REVIEWED DISAGREEMENTS", reviewed)):
            if items:
                out += ["", title, *_disagreement_rows(items)]
        if self.additions:
            out += ["", f"ADDITIONS (in {self.source_label}, not in the catalog)", *_addition_rows(self.additions)]
        if self.skipped:
            reasons = "; ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            out += ["", f"Not compared, or not listed as additions: {reasons}"]
        out += ["", f"Accept items by key (or '{ALL_ADDITIONS}') with sync."]
        return "\n".join(out) + "\n"


def _disagreement_rows(items: tuple[Disagreement, ...]) -> list[str]:
    width = min(60, max(len(d.key) for d in items))
    rows = [f"{'key':<{width}}  {'field':<24} {'ours':>10} {'theirs':>10}  note"]
    for d in items:
        for n, f in enumerate(d.fields):
            head = d.key if n == 0 else ""
            rows.append(f"{head:<{width}}  {f.label:<24} {plain(f.ours):>10} {plain(f.theirs):>10}  {f.note}".rstrip())
        extra = [f"theirs: {d.their_id}"] if d.their_id.rsplit(":", 1)[-1] != d.model_id else []
        extra += [f"their price from {d.effective}"] if d.effective else []
        if extra:
            rows.append(f"{'':<{width}}  ({'; '.join(extra)})")
        rows += [f"{'':<{width}}  reviewed [{r.field}]: {_shorten(r.reason, 100)}" for r in d.reviews]
    return rows


def _addition_rows(items: tuple[Addition, ...]) -> list[str]:
    width = min(60, max(len(a.key) for a in items))
    cols = ("input", "output", "cache_read", "cache_write")
    rows = [f"{'key':<{width}}  " + " ".join(f"{c:>11}" for c in cols) + "  other"]
    for a in items:
        cur = a.current
        cells = " ".join(f"{plain(cur.base[c]) if c in cur.base else '-':>11}" for c in cols)
        other = [f"{k} {plain(v)}" for k, v in (*cur.base.items(), *cur.fees.items()) if k not in cols]
        other += [f"tier >{t:,}" for t in cur.tiers]
        other += [f"{len(a.periods)} dated periods"] if len(a.periods) > 1 else []
        other += [a.kind] if a.kind and a.kind != "chat" else []
        other += ["deprecated"] if a.deprecated else []
        rows.append(f"{a.key:<{width}}  {cells}  {', '.join(other)}".rstrip())
    return rows


def plain(value: Decimal) -> str:
    """Format a price as plain decimal text without trailing zeros (``3.000000`` -> ``3``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
