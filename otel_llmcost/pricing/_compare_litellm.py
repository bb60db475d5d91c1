"""Reader of LiteLLM's ``model_prices_and_context_window.json`` for ``pricing diff`` (pure, Decimal).

Keys are looked up by the catalog id (with or without LiteLLM's ``provider/`` prefix), then by the
catalog's own matching. Prices are read with ``Decimal`` (never through float) and rounded to
twelve significant digits to drop float artefacts of the source file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._compare_sources import (
    MILLION,
    TWELVE_DIGITS,
    CompareError,
    External,
    Found,
    PriceSet,
    Read,
    tiers,
    unaddable,
)
from .catalog import ANY_MODEL, ModelEntry
from .matching import Matcher
from .providers import canonical_provider

__all__ = ["read_litellm"]

_LL_TOKENS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
}
_LL_TOKEN_FIELD = {key: name for name, key in _LL_TOKENS.items()}
_LL_TIER = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost(?:_above_1hr)?)_above_(\d+)k_tokens$"
)
_LL_FEES = (  # (catalog field, LiteLLM key, scale to catalog units); first one present wins
    ("audio_input", "input_cost_per_audio_token", MILLION),
    ("audio_output", "output_cost_per_audio_token", MILLION),
    ("image_output", "output_cost_per_image_token", MILLION),
    ("per_image", "output_cost_per_image", Decimal(1)),
    ("per_minute", "input_cost_per_second", Decimal(60)),
    ("request", "input_cost_per_request", Decimal(1)),
    ("request", "input_cost_per_query", Decimal(1)),  # rerank: per search query
)
_LL_KINDS = {
    "chat": "chat",
    "responses": "chat",
    "realtime": "chat",
    "completion": "completion",
    "embedding": "embeddings",
    "image_generation": "image",
    "image_edit": "image",
    "audio_transcription": "audio",
    "audio_speech": "audio",
    "rerank": "rerank",
    "moderation": "moderation",
}
_LL_PROVIDERS = {
    "gemini": "google",
    "text-completion-openai": "openai",
    "cohere_chat": "cohere",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "azure_text": "azure",
}
_REGIONAL = ("azure", "bedrock")  # LiteLLM keys region or deployment-type variants as provider/region/model


def _ll_provider(name: str) -> str | None:
    """LiteLLM's ``litellm_provider`` (``vertex_ai-anthropic_models``) -> catalog provider id."""
    return _LL_PROVIDERS.get(name) or canonical_provider(name) or canonical_provider(name.split("-", 1)[0])


def _ll_model_id(key: str, name: str, provider: str) -> str | None:
    head, sep, tail = key.partition("/")
    if sep and (head == name or _ll_provider(head) == provider):
        key = tail
    return None if provider in _REGIONAL and "/" in key else key


def _ll_number(value: Any, scale: Decimal) -> Decimal:
    """A LiteLLM price in catalog units; float artefacts (``1.6000000000000001e-06``) rounded off."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not Decimal(value).is_finite():
        raise ValueError(value)
    if value < 0:
        raise ValueError(value)
    return TWELVE_DIGITS.plus(Decimal(value) * scale).normalize()


def _ll_prices(record: Mapping[str, Any]) -> PriceSet:
    base = {name: _ll_number(record[key], MILLION) for name, key in _LL_TOKENS.items() if record.get(key) is not None}
    per_field: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for key, value in record.items():
        tier = _LL_TIER.match(key)
        if tier and value is not None:
            per_field[_LL_TOKEN_FIELD[tier[1]]].append((int(tier[2]) * 1000, _ll_number(value, MILLION)))
    ranges = record.get("tiered_pricing")
    if not base and isinstance(ranges, list):  # [{range: [from, to], input_cost_per_token: ...}, ...]
        for step in ranges:
            if not isinstance(step, Mapping) or not isinstance(step.get("range"), list) or not step["range"]:
                raise ValueError(step)
            start = int(_ll_number(step["range"][0], Decimal(1)))
            for name, key in _LL_TOKENS.items():
                if step.get(key) is not None:
                    price = _ll_number(step[key], MILLION)
                    if start == 0:
                        base[name] = price
                    else:
                        per_field[name].append((start, price))
    fees: dict[str, Decimal] = {}
    for name, key, scale in _LL_FEES:
        if name not in fees and record.get(key) is not None:
            fees[name] = _ll_number(record[key], scale)
    return PriceSet(base, tiers(per_field), fees)


def _ll_label(path: Path, raw: bytes) -> str:
    version = re.search(r"litellm[-_]v?(\d+\.\d+(?:\.\d+)*)", str(path.resolve()), re.IGNORECASE)
    if version:
        return f"LiteLLM {version[1]}"
    return f"LiteLLM {path.name} (sha256 {hashlib.sha256(raw).hexdigest()[:12]})"


def _ll_load(path: Path) -> tuple[str, dict[str, Mapping[str, Any]]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CompareError(f"LiteLLM price file {path} not found") from None
    except OSError as exc:
        raise CompareError(f"LiteLLM price file {path} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=Decimal)  # exact prices, never through float
    except UnicodeDecodeError:
        raise CompareError(f"{path}: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise CompareError(f"{path}: expected a JSON object of model name -> prices (LiteLLM's format)")
    records: dict[str, Mapping[str, Any]] = {
        k: v for k, v in data.items() if isinstance(v, dict) and "litellm_provider" in v and k != "sample_spec"
    }
    if not records:
        raise CompareError(
            f"{path}: no entry has a 'litellm_provider' field: is this LiteLLM's model_prices_and_context_window.json?"
        )
    return _ll_label(path, raw), records


def read_litellm(path: Path, entries: Sequence[ModelEntry], wanted: set[str], matcher: Matcher, day: dt.date) -> Read:
    """Pair catalog entries with LiteLLM keys; list the keys of covered providers we lack.

    Raises:
        CompareError: the file is missing, not JSON, or not in LiteLLM's format.
    """
    label, records = _ll_load(path)
    index: dict[str, dict[str, External]] = defaultdict(dict)
    skipped: Counter[str] = Counter()
    for key, record in records.items():
        name = str(record["litellm_provider"])
        provider = _ll_provider(name)
        if provider not in wanted:
            continue
        model_id = _ll_model_id(key, name, provider)
        if model_id is None:
            skipped["region- or deployment-type keys (provider/region/model)"] += 1
            continue
        try:
            prices = _ll_prices(record)
        except ValueError:
            skipped["entries with a malformed price"] += 1
            continue
        gone = str(record.get("deprecation_date") or "9999")
        kind = _LL_KINDS.get(str(record.get("mode", "chat")))
        index[provider].setdefault(
            model_id.lower(), External(provider, model_id, key, (prices,), kind, gone <= str(day))
        )
    found: Found = []
    done: set[tuple[str, str]] = set()
    compared = {(e.provider, e.model_id) for e in entries}
    for entry in entries:
        keys = index.get(entry.provider, {})
        ext = next((keys[r.lower()] for r in (entry.model_id, *entry.aliases) if r.lower() in keys), None)
        if ext is not None:
            found.append((entry, ext))
            done.add((entry.provider, entry.model_id))
    extra: list[External] = []
    for provider in sorted(index):
        for _lower, ext in sorted(index[provider].items(), key=lambda kv: (len(kv[0]), kv[0])):
            match = matcher.match(provider, ext.model_id)
            if match is not None:
                # a key the catalog prices through a snapshot or prefix rule: compare it if no exact key was
                ours = (match.provider, match.entry.model_id)
                if ours not in done and ours in compared and match.entry.model_id != ANY_MODEL:
                    found.append((match.entry, ext))
                    done.add(ours)
                continue
            why = "entries of a kind the catalog does not price (video, OCR, search...)" if ext.kind is None else None
            why = why or unaddable(ext.periods[0], ext.kind)
            if why:
                skipped[why] += 1
            else:
                extra.append(ext)
    return label, found, extra, skipped
