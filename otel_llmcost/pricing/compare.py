"""Compare the catalog with other public price data (``pricing diff``) and append accepted changes (``pricing sync``).

Pure module (no OpenTelemetry import). The other data sets are the ``genai-prices`` package's data
(imported lazily: it is not a runtime dependency) and a LiteLLM ``model_prices_and_context_window.json``
file given by path. Prices are compared as they bill: a price one side does not list is read with
the catalog's defaults (cache reads and writes at the input price, one-hour cache writes at the
five-minute price), so only differences that change a cost are reported.

``sync`` edits the YAML text by appending blocks (comments and key order survive), never rewrites a
price period, checks that the directory still loads and that each change took, and restores the
files when not.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from . import _catalog_edit as edit
from ._compare_litellm import read_litellm
from ._compare_report import ALL_ADDITIONS, Addition, Disagreement, FieldDiff, Report, Review, plain
from ._compare_sources import (
    FIELDS,
    GENAI_PRICES,
    GP_PROVIDER,
    LITELLM,
    CompareError,
    External,
    PriceSet,
    SyncError,
    read_genai_prices,
)
from .catalog import ANY_MODEL, Catalog, CatalogError, ModelEntry, Prices, catalog_dir, load_catalog
from .matching import Matcher

__all__ = [
    "ALL_ADDITIONS",
    "GENAI_PRICES",
    "GP_PROVIDER",
    "LITELLM",
    "Addition",
    "CompareError",
    "Disagreement",
    "FieldDiff",
    "PriceSet",
    "Report",
    "Review",
    "SyncError",
    "diff",
    "field_diffs",
    "sync",
]

_MILLION = Decimal(1_000_000)
_DEFAULTS_TO = {"cache_read": "input", "cache_write": "input", "cache_write_1h": "cache_write"}


# --- diff -----------------------------------------------------------------------------------------


def diff(
    catalog: Catalog,
    *,
    source: str | Path,
    at: dt.datetime | None = None,
    providers: Sequence[str] | None = None,
    reviewed: Path | None = None,
) -> Report:
    """Compare the catalog with another public price data set.

    Args:
        catalog: the catalog to check (its built-in entries; user overrides are not compared).
        source: ``"genai-prices"`` (the installed package's data) or the path of a LiteLLM
            ``model_prices_and_context_window.json`` file.
        at: the instant whose prices are compared (naive means UTC); default now. Price changes
            that genai-prices dates after ``at`` are compared too, and reported as upcoming.
        providers: catalog provider ids to compare; default every one the other data set covers.
        reviewed: the file of reviewed differences; default ``disagreements.yaml`` in
            :func:`~otel_llmcost.pricing.catalog_dir`. Its items mark disagreements as reviewed
            (matched by provider, catalog id and data set), they do not hide them.

    Returns:
        The :class:`Report`.

    Raises:
        CompareError: an unknown source; genai-prices not installed; the LiteLLM file missing, not
            JSON or not in LiteLLM's format; a malformed reviewed-differences file.
    """
    when = (at or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    when = when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)
    kind, path = _source(source)
    wanted = set(catalog.providers()) if providers is None else set(providers) & set(catalog.providers())
    matcher = Matcher(catalog)
    entries = [e for e in catalog.entries if e.provider in wanted and e.model_id != ANY_MODEL]
    if path is None:
        label, found, extra, skipped = read_genai_prices(entries, wanted, matcher, when.date())
    else:
        label, found, extra, skipped = read_litellm(path, entries, wanted, matcher, when.date())
    reviews = _reviews(reviewed if reviewed is not None else catalog_dir() / "disagreements.yaml", kind)
    priced = [(entry, ext) for entry, ext in found if any(p.prices_tokens() for p in ext.periods)]
    if len(priced) < len(found):
        skipped["catalog models they list without token prices (not compared)"] += len(found) - len(priced)
    found = priced
    disagreements = [
        d
        for entry, ext in found
        for d in _disagreements(entry, ext, when, reviews.get((entry.provider, entry.model_id)))
    ]
    additions = [Addition(x.provider, x.model_id, x.periods, x.at(when.date()), x.kind, x.deprecated) for x in extra]
    return Report(
        source=kind,
        source_label=label,
        at=when,
        catalog_version=catalog.version,
        compared=len(found),
        additions=tuple(sorted(additions, key=lambda a: (a.provider, a.model_id.lower()))),
        disagreements=tuple(sorted(disagreements, key=lambda d: (d.provider, d.model_id.lower(), d.at))),
        skipped=dict(sorted(skipped.items())),
    )


def field_diffs(ours: Prices, theirs: PriceSet) -> tuple[FieldDiff, ...]:
    """Return the prices, base and per long-context tier, that *ours* and *theirs* bill differently.

    A difference that only repeats another one is left out: a base difference above a tier that does
    not change it, or an unlisted cache price that follows the input price on both sides.

    Args:
        ours: a catalog price period.
        theirs: the other data set's period.
    """
    base_o, base_t = _ours(ours, None), theirs.effective(None)
    out: list[FieldDiff] = []
    for above in (None, *sorted({t.above_input_tokens for t in ours.tiers} | set(theirs.tiers))):
        at_o, at_t = _ours(ours, above), theirs.effective(above)
        note = ""
        if above is not None and not any(t.above_input_tokens <= above for t in ours.tiers):
            note = "ours: no tier"
        elif above is not None and not any(t <= above for t in theirs.tiers):
            note = "theirs: no tier"
        for f in FIELDS:
            if at_o[f] == at_t[f] or not theirs.lists(f):
                continue
            if above is not None and (at_o[f], at_t[f]) == (base_o[f], base_t[f]):
                continue
            given = f in theirs.base or any(f in tier for tier in theirs.tiers.values())
            parent = _DEFAULTS_TO.get(f)
            if parent and not given and (at_o[f], at_t[f]) == (at_o[parent], at_t[parent]):
                continue
            out.append(FieldDiff(f, above, at_o[f], at_t[f], note if above is not None else theirs.absent_note(f)))
    return tuple(out)


def _source(source: str | Path) -> tuple[str, Path | None]:
    if isinstance(source, Path):
        return LITELLM, source
    if source == GENAI_PRICES:
        return GENAI_PRICES, None
    if source.endswith(".json") or "/" in source or "\\" in source:
        return LITELLM, Path(source)
    raise CompareError(
        f"unknown price data source {source!r}: give {GENAI_PRICES!r} or the path of a LiteLLM "
        "model_prices_and_context_window.json file"
    )


def _reviews(path: Path, source: str) -> dict[tuple[str, str], tuple[Review, ...]]:
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise CompareError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise CompareError(f"{path}: expected a list of items with provider, model, field, reason, settled_by")
    found: dict[tuple[str, str], tuple[Review, ...]] = {}
    for item in items:
        if item.get("other_source") == source:
            key = (str(item.get("provider")), str(item.get("model")))
            review = Review(str(item.get("field", "")), str(item.get("reason", "")), str(item.get("settled_by", "")))
            found[key] = (*found.get(key, ()), review)
    return found


def _ours(prices: Prices, above: int | None) -> dict[str, Decimal]:
    """The catalog's prices per 1M tokens for a request above *above* input tokens (``None``: base)."""
    chosen: Any = prices
    for tier in prices.tiers:
        if above is not None and tier.above_input_tokens <= above:
            chosen = tier
    return {f: (getattr(chosen, f) * _MILLION).normalize() for f in FIELDS}


def _noon_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9


def _disagreements(
    entry: ModelEntry, ext: External, when: dt.datetime, reviews: tuple[Review, ...] | None
) -> Iterator[Disagreement]:
    """Compare at *when*, then on each later date the other data set changes its price."""
    today = when.date()
    instants = [(today, int(when.timestamp()) * 10**9, False)]
    instants += [(p.starts, _noon_ns(p.starts), True) for p in ext.periods if p.starts and p.starts > today]
    for day, ns, upcoming in instants:
        theirs = ext.at(day)
        fields = field_diffs(entry.prices_at(ns), theirs) if theirs.prices_tokens() else ()
        if fields:
            effective = theirs.starts
            yield Disagreement(
                entry.provider, entry.model_id, ext.their_id, day, effective, fields, theirs, reviews or (), upcoming
            )


# --- sync -----------------------------------------------------------------------------------------


def sync(
    catalog_dir: Path,
    report: Report,
    *,
    accept: Sequence[str] | Literal["all-additions"],
    checked: dt.date,
) -> list[str]:
    """Write the accepted items of *report* into the catalog files of *catalog_dir*.

    An accepted addition is appended to its provider's file as a new entry with the file's source,
    date *checked* and a note naming the data set. An accepted disagreement appends a price period
    to the entry (a single ``prices:`` mapping becomes a list, the old mapping first), starting on
    *checked*, or, for an upcoming change the other data set dates, on that date. No period is
    ever edited; a new one must start after the entry's last.

    Args:
        catalog_dir: the directory of catalog YAML files.
        report: what :func:`diff` found.
        accept: item keys (``openai/gpt-x``, see :attr:`Addition.key`, :attr:`Disagreement.key`),
            or ``"all-additions"``.
        checked: the date the change was reviewed.

    Returns:
        One line per accepted item: what changed, or why nothing had to.

    Raises:
        SyncError: an unknown key; an entry, file or ``prices:`` key that cannot be found or edited;
            a result that does not load or does not bill as accepted. Files are then left unchanged.
    """
    chosen = _chosen(report, accept)
    files = _provider_files(catalog_dir)
    try:
        before = load_catalog(sorted(files.values()))
    except CatalogError as exc:
        raise SyncError(f"the catalog in {catalog_dir} does not load; fix it first: {exc}") from None
    matcher = Matcher(before)
    by_id = {(e.provider, e.model_id): e for e in before.entries}
    texts: dict[Path, str] = {}
    lines: list[str] = []
    planned: list[tuple[Addition | Disagreement, dt.date]] = []
    for item in chosen:
        path = files.get(item.provider)
        if path is None:
            raise SyncError(f"{item.key}: no catalog file in {catalog_dir} has provider {item.provider!r}")
        text = texts.get(path) or path.read_text(encoding="utf-8")
        if isinstance(item, Addition):
            if matcher.match(item.provider, item.model_id) is not None:
                lines.append(f"{path.name}: {item.model_id}: already in the catalog, not added")
                continue
            new = _new_entry(item, edit.file_source(text, path.name), report, checked)
            texts[path] = edit.append_entry(text, path.name, new)
            lines.append(f"{path.name}: added {item.model_id} ({_summary(item.current)}) from {report.source_label}")
            planned.append((item, checked))
            continue
        entry = by_id.get((item.provider, item.model_id))
        if entry is None:
            raise SyncError(f"{item.key}: the catalog has no entry {item.model_id!r} of provider {item.provider!r}")
        day = item.effective if item.upcoming and item.effective else checked
        if not field_diffs(entry.prices_at(_noon_ns(day)), item.theirs):
            lines.append(f"{path.name}: {item.model_id}: already priced as {report.source_label} on {day}")
            continue
        starts = _period_start(entry, item, checked)
        base = {f.field for f in item.fields if f.above_input_tokens is None}
        tiers = any(f.above_input_tokens is not None for f in item.fields)
        period = edit.new_period(edit.last_period(text, path.name, item.model_id), item.theirs, base, tiers, starts)
        texts[path] = edit.append_period(text, path.name, item.model_id, period)
        changes = ", ".join(f"{f.label} {plain(f.ours)} -> {plain(f.theirs)}" for f in item.fields)
        note = " (it is listed in disagreements.yaml: remove that item)" if item.reviewed else ""
        lines.append(f"{path.name}: {item.model_id}: appended a price period from {starts}: {changes}{note}")
        planned.append((item, starts))
    _write_checked(catalog_dir, files, texts, planned)
    return lines


def _chosen(report: Report, accept: Sequence[str] | str) -> list[Addition | Disagreement]:
    keys = [accept] if isinstance(accept, str) else list(accept)
    items: dict[str, Addition | Disagreement] = {d.key: d for d in report.disagreements}
    items.update({a.key: a for a in report.additions})
    chosen: dict[str, Addition | Disagreement] = {}
    for key in keys:
        if key == ALL_ADDITIONS:
            chosen.update({a.key: a for a in report.additions})
        elif key in items:
            chosen[key] = items[key]
        else:
            close = difflib.get_close_matches(key, list(items), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SyncError(f"{key!r} is not an addition or a disagreement of this report{hint}")
    return list(chosen.values())


def _provider_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise SyncError(f"catalog directory {directory} not found")
    found: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name.startswith("_") or path.name == "disagreements.yaml":
            continue
        head = re.search(r"^provider:\s*['\"]?([\w.-]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
        if head:
            found.setdefault(head.group(1), path)
    return found


def _period_start(entry: ModelEntry, item: Disagreement, checked: dt.date) -> dt.date:
    """The new period's ``from``; an error when it would not come after the entry's last period."""
    # an announced change starts on its own date: from *checked* it would bill the new price early
    starts = item.effective if item.upcoming and item.effective else checked
    last = entry.periods[-1].starts
    if last is not None and starts <= last:
        raise SyncError(
            f"{item.key}: the entry's last price period starts on {last}, not before {starts}; "
            "a new period must start after it"
        )
    return starts


def _new_entry(item: Addition, source: str, report: Report, checked: dt.date) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": item.model_id}
    if item.kind:
        entry["kind"] = item.kind
    entry.update(source=source, checked=checked, note=f"added from {report.source_label} by otel-llmcost pricing sync")
    periods = [p.to_yaml(with_start=True) for p in item.periods]
    entry["prices"] = periods if len(periods) > 1 else periods[0]
    return entry


def _write_checked(
    directory: Path,
    files: Mapping[str, Path],
    texts: Mapping[Path, str],
    planned: Sequence[tuple[Addition | Disagreement, dt.date]],
) -> None:
    """Write the new texts, reload the catalog and check each change took; restore every file if not."""
    originals = {path: path.read_text(encoding="utf-8") for path in texts}
    try:
        for path, text in texts.items():
            path.write_text(text, encoding="utf-8")
        after = load_catalog(sorted(files.values()))
        matcher = Matcher(after)
        by_id = {(e.provider, e.model_id): e for e in after.entries}
        for item, starts in planned:
            if isinstance(item, Addition):
                found = matcher.match(item.provider, item.model_id)
                if found is None or found.entry.model_id != item.model_id:
                    raise SyncError(f"{item.key}: the added entry does not match its own id")
                continue
            entry = by_id[(item.provider, item.model_id)]
            left = field_diffs(entry.prices_at(_noon_ns(starts)), item.theirs)
            if entry.periods[-1].starts != starts or left:
                raise SyncError(f"{item.key}: the appended period does not bill as {item.their_id}: {left}")
    except (CatalogError, SyncError, OSError) as exc:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        raise SyncError(f"{directory} left unchanged: the result did not load or check: {exc}") from None


def _summary(prices: PriceSet) -> str:
    return ", ".join(f"{k} {plain(v)}" for k, v in (*prices.base.items(), *prices.fees.items()))
