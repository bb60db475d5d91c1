"""The pricing entry point: (provider, model, usage, time) -> :class:`Cost`.

Pure module (no OpenTelemetry import); the span processor, the instrumentation, the collector
and the CLI all price through :meth:`Pricer.price`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ..config import OTEL_LLMCOST_PRICING_OVERRIDES, env_str
from .catalog import ANY_MODEL, Catalog, default_catalog
from .compute import STATUS_INVALID, STATUS_NO_USAGE, STATUS_PRICED, STATUS_UNPRICED, Cost, Usage, compute_cost
from .extras import PriceOptions
from .matching import Match, Matcher
from .overrides import Overrides, load_overrides

__all__ = ["MAX_TOKENS", "Pricer", "default_pricer", "usage_problem"]

MAX_TOKENS = 1_000_000_000
"""Token counts above this are treated as corrupt data, not priced."""


def usage_problem(usage: Usage) -> tuple[str, str] | None:
    """Return ``(code, message)`` saying why *usage* cannot be priced, or ``None`` when it is consistent.

    Counts must be whole numbers from 0 to :data:`MAX_TOKENS`, and the subsets (cache reads and
    writes of input, reasoning of output, one-hour writes of cache writes) must fit their totals.
    """
    i, o, cr, cw = usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
    cw1, rs = usage.cache_write_1h_tokens, usage.reasoning_tokens
    # Fast path for the common, valid case: one expression instead of a loop of checks.
    if (
        type(i) is int and type(o) is int and type(cr) is int
        and type(cw) is int and type(cw1) is int and type(rs) is int
        and cr >= 0 and cw >= 0 and cr + cw <= i <= MAX_TOKENS
        and 0 <= rs <= o <= MAX_TOKENS and 0 <= cw1 <= cw
        and not (usage.audio_input_tokens or usage.audio_output_tokens or usage.image_output_tokens
                 or usage.images or usage.audio_seconds or usage.web_search_calls)
    ):  # fmt: skip
        return None
    for name in Usage.__slots__:
        value = getattr(usage, name)
        if isinstance(value, bool) or not isinstance(value, int):
            return "non_numeric_tokens", f"{name} is not a whole number: {value!r}"
        if value < 0:
            return "negative_tokens", f"{name} is negative: {value}"
        if value > MAX_TOKENS:
            return "absurd_tokens", f"{name} is absurdly large: {value} > {MAX_TOKENS}"
    if usage.cache_read_tokens + usage.cache_write_tokens > usage.input_tokens:
        return "inconsistent_tokens", (
            f"cache reads ({usage.cache_read_tokens}) and writes ({usage.cache_write_tokens}) exceed the input "
            f"tokens ({usage.input_tokens}); input tokens must include them"
        )
    if usage.reasoning_tokens > usage.output_tokens:
        return (
            "inconsistent_tokens",
            f"reasoning tokens ({usage.reasoning_tokens}) exceed the output tokens ({usage.output_tokens})",
        )
    if usage.cache_write_1h_tokens > usage.cache_write_tokens:
        return "inconsistent_tokens", "one-hour cache writes exceed all cache writes"
    if usage.audio_input_tokens > usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens:
        return "inconsistent_tokens", "audio input tokens exceed the uncached input tokens"
    if usage.audio_output_tokens + usage.image_output_tokens + usage.reasoning_tokens > usage.output_tokens:
        return "inconsistent_tokens", "audio, image and reasoning output tokens exceed the output tokens"
    return None


class Pricer:
    """Prices calls against one catalog, memoising model matches."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        overrides: Overrides | str | Path | None = None,
        cache_size: int = 16384,
    ) -> None:
        """Create a pricer.

        Args:
            catalog: the catalog to use; default the built-in one.
            overrides: user overrides (custom models, discounts, deployment names), or the path of
                an overrides file; they win over the catalog (see :mod:`.overrides`).
            cache_size: how many distinct (provider, model, address) matches to remember.

        Raises:
            CatalogError: the overrides file is malformed (file, entry and field named).
        """
        base = catalog if catalog is not None else default_catalog()
        if isinstance(overrides, (str, Path)):
            overrides = load_overrides(overrides)
        self.overrides = overrides
        if overrides is not None and overrides.entries:
            digest = hashlib.sha256(repr(overrides).encode()).hexdigest()[:6]
            base = Catalog(
                entries=base.entries,
                version=f"{base.version}.overrides-{digest}",
                display_names=base.display_names,
                overrides=overrides.entries,
            )
        self.catalog = base
        self._deployments = overrides.deployments if overrides is not None else {}
        self._discounts = overrides if overrides is not None and overrides.discounts else None
        self.matcher = Matcher(self.catalog, cache_size=cache_size)
        self._match = self.matcher.match
        self._version = self.catalog.version
        # whether any price depends on the region: callers skip the region lookup otherwise
        self.has_regional_prices = any(
            period.prices.extras is not None and period.prices.extras.regions
            for entry in self.catalog.entries
            for period in entry.periods
        )

    def match(self, provider: str | None, model: str | None, server_address: str | None = None) -> Match | None:
        """Return the catalog entry that bills *model* at *provider*, or ``None``."""
        return self.matcher.match(provider, model, server_address)

    def price(
        self,
        provider: str | None,
        model: str | None,
        usage: Usage | None,
        *,
        at_ns: int | None = None,
        server_address: str | None = None,
        options: PriceOptions | None = None,
    ) -> Cost:
        """Price one call.

        Args:
            provider: provider name as the span gives it (any spelling :mod:`.providers` knows).
            model: model name as the span gives it (response model preferred by callers).
            usage: token counts; ``None`` when the call reported none.
            at_ns: when the call happened (Unix ns); prices in force then are used. ``None``: now.
            server_address: the endpoint host, which can select the provider that bills.
            options: batch, service tier, region and search context of the call, where they change
                the price (schema v2).

        Returns:
            A :class:`Cost`; its status says ``priced``, ``unpriced``, ``no_usage`` or
            ``invalid_usage`` and amounts are set only when priced.
        """
        version = self._version
        if self._deployments and model:
            model = self._deployment_model(provider, model, server_address)
        found = self._match(provider, model, server_address)
        if usage is None or (problem := usage_problem(usage)) is not None:
            # Not priced, but the catalog entry (when there is one) still names the model, so a
            # failed call and a priced call of one model share one metric series.
            code, reason = ("no_usage", "the call reported no token usage") if usage is None else problem  # type: ignore[misc]
            return Cost(
                STATUS_NO_USAGE if usage is None else STATUS_INVALID,
                provider=found.provider if found else None,
                model=_model_id(found, model) if found else None,
                catalog_version=version,
                reason_code=code,
                reason=reason,
            )
        if found is None:
            return Cost(
                STATUS_UNPRICED,
                catalog_version=version,
                reason_code="unknown_model",
                reason=f"no price for model {model!r} of provider {provider!r}" if model else "the call names no model",
            )
        entry = found.entry
        inp, out, cread, cwrite, req, tier = compute_cost(entry.prices_at(at_ns), usage, options)
        if self._discounts is not None:
            factor = self._discounts.multiplier(found.provider, entry.model_id)
            if factor is not None:
                inp, out, cread, cwrite, req = (v * factor for v in (inp, out, cread, cwrite, req))
        # positional: this runs for every priced call
        return Cost(
            STATUS_PRICED, inp + out + cread + cwrite + req, inp, out, cread, cwrite, req,
            found.provider, _model_id(found, model), version, tier,
        )  # fmt: skip

    def _deployment_model(self, provider: str | None, model: str, server_address: str | None) -> str:
        """Return the model a deployment name stands for (Azure deployments are named by users)."""
        pid = self.matcher.resolve_provider(provider, model, server_address)
        names = self._deployments.get(pid) if pid else None
        return names.get(model.lower(), model) if names else model


def _model_id(found: Match, asked: str | None) -> str:
    """The catalog id that priced a call; for a provider-wide price, the model the call named."""
    entry_id = found.entry.model_id
    return (asked or "").lower() if entry_id == ANY_MODEL else entry_id


@functools.lru_cache(maxsize=1)
def default_pricer() -> Pricer:
    """Return the process-wide pricer: the built-in catalog, with the overrides file named by
    ``OTEL_LLMCOST_PRICING_OVERRIDES`` if set (created on first use).

    Raises:
        CatalogError: the overrides file is malformed.
    """
    path = env_str(OTEL_LLMCOST_PRICING_OVERRIDES)
    return Pricer(overrides=path or None)
