"""Conservative edits of catalog YAML text: append a price period, append a model entry (pure).

The files are edited as text, by inserting blocks, so comments, key order and number formatting of
everything already there survive; a YAML library dump would lose them. Only the ``prices:`` key of an
entry whose value is a single mapping is reshaped: it becomes the first item of a list of periods.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import yaml

from ._compare_sources import FIELDS, PriceSet, SyncError, effective
from .catalog import _Loader

__all__ = ["append_entry", "append_period", "file_source", "last_period", "new_period"]

_ITEM_ID = re.compile(r"^(?P<indent> *)- id: *(?P<value>.+?)(?: +#.*)? *$")
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+\-]*$")
_ORDER = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning", "request")


def _load(text: str, name: str) -> Mapping[str, Any]:
    data = yaml.load(text, Loader=_Loader)  # Decimal-exact, as the catalog loader reads it
    if not isinstance(data, Mapping):
        raise SyncError(f"{name}: not a catalog file (expected a mapping with 'models')")
    return data


def file_source(text: str, name: str) -> str:
    """Return the file's top-level ``source`` URL.

    Raises:
        SyncError: the file has none.
    """
    source = _load(text, name).get("source")
    if not isinstance(source, str):
        raise SyncError(f"{name}: no top-level 'source' URL to give a new entry")
    return source


def last_period(text: str, name: str, model_id: str) -> Mapping[str, Any]:
    """Return the raw mapping of the last price period of entry *model_id*.

    Raises:
        SyncError: no such entry.
    """
    models = _load(text, name).get("models") or []
    raw = next((m for m in models if isinstance(m, Mapping) and m.get("id") == model_id), None)
    if raw is None:
        raise SyncError(f"{name}: model {model_id!r} not found")
    prices = raw["prices"]
    chosen = prices[-1] if isinstance(prices, list) else prices
    return dict(chosen)


def new_period(
    raw_last: Mapping[str, Any], theirs: PriceSet, base_fields: set[str], tiers_differ: bool, starts: dt.date
) -> dict[str, Any]:
    """Our last period with the differing prices replaced by theirs, from *starts*.

    Prices that agree keep their text, and fields the other data set does not compare (batch,
    service tiers, audio, fees) are kept; the result bills exactly as *theirs* for the compared fields.
    """
    period = {k: v for k, v in raw_last.items() if k != "from"}
    for name in FIELDS:
        if name in base_fields:
            if name in theirs.base:
                period[name] = theirs.base[name]
            else:
                period.pop(name, None)
    want = theirs.effective(None)
    period.setdefault("input", want["input"])  # the catalog needs both in every period
    period.setdefault("output", want["output"])
    for name in FIELDS:  # a removed price may default differently than theirs does: write it out
        if effective({k: Decimal(str(period[k])) for k in FIELDS if k in period}, None)[name] != want[name]:
            period[name] = want[name]
    if tiers_differ:
        tiers = theirs.to_yaml().get("tiers")
        if tiers:
            period["tiers"] = tiers
        else:
            period.pop("tiers", None)
    ordered: dict[str, Any] = {"from": starts}
    ordered.update({k: period[k] for k in _ORDER if k in period})
    ordered.update({k: v for k, v in period.items() if k not in _ORDER and k != "tiers"})
    if "tiers" in period:
        ordered["tiers"] = period["tiers"]
    return ordered


def append_period(text: str, name: str, model_id: str, period: Mapping[str, Any]) -> str:
    """Append *period* to the ``prices`` of entry *model_id*; a single mapping becomes a list first.

    Raises:
        SyncError: the entry or its ``prices:`` key cannot be found, or is written as a flow list.
    """
    lines = text.splitlines()
    start = next((i for i, s in enumerate(lines) if (m := _ITEM_ID.match(s)) and _str(m["value"]) == model_id), None)
    if start is None:
        raise SyncError(f"{name}: no '- id: {model_id}' line to append a price period to")
    dash = _indent(lines[start])
    end = _block_end(lines, start, dash)
    key = next((i for i in range(start + 1, end) if re.match(rf"^ {{{dash + 2}}}prices:", lines[i])), None)
    if key is None:
        raise SyncError(f"{name}: model {model_id!r}: no 'prices:' key at the entry's indentation")
    rest = lines[key].split(":", 1)[1].strip()
    if rest and not rest.startswith("#"):  # flow style: prices: {input: 1, output: 2}
        if not rest.startswith("{"):
            raise SyncError(f"{name}: model {model_id!r}: 'prices: {rest}' is a flow list; append the period by hand")
        lines[key] = lines[key][: dash + 2] + "prices:"
        block = [" " * (dash + 4) + "- " + rest, *_emit_item(period, dash + 4)]
        return _join([*lines[: key + 1], *block, *lines[key + 1 :]])
    block_end = _block_end(lines, key, dash + 2, same_indent_items=True)
    content = [i for i in range(key + 1, block_end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    if not content:
        raise SyncError(f"{name}: model {model_id!r}: 'prices:' has no value")
    first = content[0]
    indent = _indent(lines[first])
    body = lines[key + 1 : block_end]
    if not lines[first].lstrip().startswith("-"):  # one mapping: it becomes the first period of a list
        body = [
            " " * indent + "- " + s.lstrip() if i == first else ("  " + s if s.strip() else s)
            for i, s in enumerate(body, start=key + 1)
        ]
    return _join([*lines[: key + 1], *body, *_emit_item(period, indent), *lines[block_end:]])


def append_entry(text: str, name: str, entry: Mapping[str, Any]) -> str:
    """Append *entry* at the end of the file's block ``models:`` list.

    Raises:
        SyncError: the file has no block-style ``models:`` list.
    """
    lines = text.splitlines()
    top = next((i for i, s in enumerate(lines) if re.match(r"^models:\s*(#.*)?$", s)), None)
    if top is None:
        raise SyncError(f"{name}: no block 'models:' list to append {entry.get('id')!r} to")
    end = _block_end(lines, top, 0, same_indent_items=True)
    first = next((i for i in range(top + 1, end) if lines[i].lstrip().startswith("- ")), None)
    indent = _indent(lines[first]) if first is not None else 2
    return _join([*lines[:end], *_emit_item(entry, indent), *lines[end:]])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: Sequence[str], start: int, indent: int, *, same_indent_items: bool = False) -> int:
    """Index after the last non-blank line of the block after line *start* that is deeper than *indent*."""
    end = last = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip():
            deeper = _indent(line) > indent
            item = same_indent_items and _indent(line) == indent and line.lstrip().startswith("-")
            if not (deeper or item):
                break
            last = end + 1
        end += 1
    return last


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


def _str(value: str) -> str:
    try:
        return str(yaml.safe_load(value))
    except yaml.YAMLError:
        return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # as written: a copied 15.00 stays 15.00
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid double-quoted YAML scalar


def _emit(mapping: Mapping[str, Any], indent: int) -> list[str]:
    pad, out = " " * indent, []
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            out += [f"{pad}{_scalar(key)}:", *_emit(value, indent + 2)]
        elif isinstance(value, list) and value:
            out.append(f"{pad}{_scalar(key)}:")
            for element in value:
                out += _emit_item(element, indent + 2)
        else:
            empty = "{}" if isinstance(value, Mapping) else "[]" if isinstance(value, list) else _scalar(value)
            out.append(f"{pad}{_scalar(key)}: {empty}")
    return out


def _emit_item(element: Any, indent: int) -> list[str]:
    if isinstance(element, Mapping) and element:
        body = _emit(element, indent + 2)
        return [" " * indent + "- " + body[0].lstrip(), *body[1:]]
    return [" " * indent + "- " + ("{}" if isinstance(element, Mapping) else _scalar(element))]
