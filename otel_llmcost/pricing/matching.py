"""Model matching: a provider name and a model string as spans carry them -> one catalog entry.

Rules, in order, with no loose prefix or substring matching (see ``pricing/SCHEMA.md``):

1. exact id or alias (case-insensitive);
2. the same after removing a wrapper that says nothing about the price: a Bedrock ARN or
   region prefix (``us.``/``eu.``/``apac.``/``global.``...), a Vertex resource path, a
   provider prefix (``openai/gpt-4o``), a Bedrock context-window suffix (``:200k``);
3. at every step, an entry with ``snapshots: true`` also matches its id followed by a dated
   snapshot or version suffix (``-2024-08-06``, ``-20250929``, ``@20250929``, ``@002``).

Results are memoised, unknown models included, in a bounded cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from .catalog import Catalog, ModelEntry
from .providers import canonical_provider, provider_from_address

__all__ = ["Match", "Matcher"]

# Providers whose model ids are unique to them: a span that names no provider is matched here.
_FIRST_PARTY = ("openai", "anthropic", "google", "mistral", "deepseek", "xai", "cohere")

_SNAPSHOT = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|@\d{3}|-\d{3}|[@-]latest|@default)$")
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|ap|global|us-gov|jp|au|ca|sa|mx|in)\.(?=[a-z0-9-]+\.)")
_BEDROCK_CONTEXT = re.compile(r":(?:\d+k|mm)$")
_RESOURCE_PATH = re.compile(r"^(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?models/")
_MAX_MODEL_LEN = 256


@dataclass(frozen=True, slots=True)
class Match:
    """The catalog entry a (provider, model) pair matched."""

    entry: ModelEntry
    provider: str


def _unwrapped(model: str) -> Iterator[str]:
    """Yield the lower-cased model string, then each form with one more wrapper removed."""
    m = model.strip().lower()
    yield m
    if m.startswith("arn:"):
        # arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-... or .../inference-profile/us.x
        m = m.rsplit("/", 1)[-1]
        yield m
    path = _RESOURCE_PATH.sub("", m)
    if path != m:
        m = path
        yield m
    region = _BEDROCK_REGION.sub("", m)
    if region != m:
        m = region
        yield m
    context = _BEDROCK_CONTEXT.sub("", m)
    if context != m:
        m = context
        yield m


class Matcher:
    """Matches (provider, model, server address) to catalog entries, memoising every answer."""

    def __init__(self, catalog: Catalog, cache_size: int = 16384) -> None:
        """Build a matcher over *catalog*.

        Args:
            catalog: the loaded catalog.
            cache_size: how many distinct (provider, model, address) answers to remember.
        """
        self.catalog = catalog
        self.match = lru_cache(maxsize=cache_size)(self._match)

    def resolve_provider(self, provider: str | None, model: str | None, address: str | None) -> str | None:
        """Return the catalog provider id that bills a call, or ``None`` when it is unknown.

        A known endpoint host (``*.openai.azure.com``) wins over the provider name, because an
        OpenAI-compatible client calls every endpoint "openai". With neither, a provider prefix
        on the model (``anthropic/claude-...``) names it.
        """
        by_host = provider_from_address(address)
        if by_host is not None:
            return by_host
        if provider:
            return canonical_provider(provider)
        if model and "/" in model:
            return canonical_provider(model.split("/", 1)[0])
        return None

    def _lookup(self, provider: str, model: str) -> ModelEntry | None:
        exact = self.catalog.exact.get(provider)
        if not exact:
            return None
        snap = self.catalog.snapshot[provider]
        for form in _unwrapped(model):
            forms = [form]
            if "/" in form:
                head, tail = form.split("/", 1)
                if canonical_provider(head) is not None:
                    forms.append(tail)
            for candidate in forms:
                entry = exact.get(candidate)
                if entry is not None:
                    return entry
                base = _SNAPSHOT.sub("", candidate)
                if base != candidate:
                    entry = snap.get(base)
                    if entry is not None:
                        return entry
        return None

    def _match(self, provider: str | None, model: str | None, address: str | None = None) -> Match | None:
        if not model or len(model) > _MAX_MODEL_LEN:
            return None
        pid = self.resolve_provider(provider, model, address)
        if pid is not None:
            entry = self._lookup(pid, model) or self.catalog.any_model.get(pid)
            return Match(entry, pid) if entry is not None else None
        if provider:  # a provider we do not know: never guess
            return None
        for candidate in _FIRST_PARTY:
            entry = self._lookup(candidate, model)
            if entry is not None:
                return Match(entry, candidate)
        return None

    def close_matches(self, provider: str | None, model: str, limit: int = 5) -> list[str]:
        """Return catalog ids that look like *model* (for error messages only, never for pricing)."""
        import difflib

        pid = self.resolve_provider(provider, model, None)
        pool = (
            self.catalog.exact.get(pid, {})
            if pid
            else {k: v for p in self.catalog.exact.values() for k, v in p.items()}
        )
        return difflib.get_close_matches(model.lower(), list(pool), n=limit, cutoff=0.6)
