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
from .compute import (
    STATUS_INVALID,
    STATUS_NO_USAGE,
    STATUS_PRICED,
    STATUS_UNPRICED,
    Cost,
    Usage,
    cache_savings,
)
from .extras import PriceOptions
from .matching import Match, Matcher
from .overrides import Overrides, load_overrides
from .rates import PricedCounts, Rates, price_usage, rates_of

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


Resolved = tuple[Match | None, str | None, str | None, Rates | None, int | None, int]
"""What :meth:`Pricer.resolve` says of a (provider, model, endpoint): the match, the model id, the
model named, and the rates of its latest prices with when they start (``None``: always) and the
most input tokens they are for (past it, a long-context tier)."""
Counts = tuple[int, int, int, int, int, int]


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
        self._cache_size = cache_size
        # (provider, model, address) -> (match, model the catalog bills, model named after deployments)
        self._resolved: dict[tuple[str | None, str | None, str | None], Resolved] = {}
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

    def _unpriced_reason(self, provider: str | None, model: str | None, server_address: str | None) -> str:
        """Why a call is unpriced, naming the catalog provider searched (where a price or override goes)."""
        if not model:
            return "the call names no model"
        billed = self.matcher.resolve_provider(provider, model, server_address)
        if billed is None:
            return f"no price for model {model!r}: provider {provider!r} is not in the catalog"
        if billed != provider:
            return f"no price for model {model!r} of catalog provider {billed!r} (the call's provider {provider!r})"
        return f"no price for model {model!r} of provider {billed!r}"

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
        resolved = self._resolved.get((provider, model, server_address))
        if resolved is None:
            resolved = self.resolve(provider, model, server_address)
        found, model_id, model = resolved[:3]
        if usage is None or (problem := usage_problem(usage)) is not None:
            # Not priced, but the catalog entry (when there is one) still names the model, so a
            # failed call and a priced call of one model share one metric series.
            code, reason = ("no_usage", "the call reported no token usage") if usage is None else problem  # type: ignore[misc]
            return Cost(
                STATUS_NO_USAGE if usage is None else STATUS_INVALID,
                provider=found.provider if found else None,
                model=model_id,
                catalog_version=version,
                reason_code=code,
                reason=reason,
            )
        if found is None:
            return Cost(
                STATUS_UNPRICED,
                catalog_version=version,
                reason_code="unknown_model",
                reason=self._unpriced_reason(provider, model, server_address),
            )
        entry = found.entry
        periods = entry.periods
        prices = periods[0].prices if len(periods) == 1 else entry.prices_at(at_ns)
        total, inp, out, cread, cwrite, req, tier = price_usage(prices, usage, options)
        saved = None
        if usage.cache_read_tokens or usage.cache_write_tokens:
            saved = (
                # with no option, the memoised rates hold the per-token savings: same operations, same digits
                rates_of(prices, usage.input_tokens).savings(
                    usage.cache_read_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens
                )
                if options is None
                else cache_savings(prices, usage, options)
            )
        if self._discounts is not None:
            factor = self._discounts.multiplier(found.provider, entry.model_id)
            if factor is not None:
                inp, out, cread, cwrite, req = (v * factor for v in (inp, out, cread, cwrite, req))
                total = inp + out + cread + cwrite + req
                if saved is not None:  # a discount applies to what the cached tokens would have cost too
                    saved = (saved[0] * factor, saved[1] * factor)
        # positional: this runs for every priced call
        cost = Cost(STATUS_PRICED, total, inp, out, cread, cwrite, req, found.provider, model_id, version, tier)
        if saved is not None:
            cost.cache_savings_usd, cost.cache_write_premium_usd = saved
        return cost

    def price_counts(self, resolved: Resolved, counts: Counts, at_ns: int | None) -> PricedCounts | None:
        """Price a call resolved by :meth:`resolve` from whole token counts (the usual call's part of :meth:`price`).

        For callers that read the counts as ``int`` values themselves (see
        :func:`otel_llmcost.calls.plain_counts`): no option, no modality usage.

        Args:
            resolved: from :meth:`resolve`.
            counts: input, output, cache read, cache write, one-hour cache write and reasoning
                tokens, in OpenTelemetry semantics.
            at_ns: when the call happened (Unix ns); ``None``: now.

        Returns:
            ``(total, input, output, cache_read, cache_write, request, tier_above, floats, saved)``:
            the amounts :meth:`price` gives (and ``float()`` of the first six when known cheaply, else
            ``None``; *saved*: its cache savings and write premium, ``None`` without cache tokens),
            or ``None`` when :meth:`price` must run instead: an unknown model, counts out of range
            or inconsistent (it says why), a discount to apply.
        """
        found = resolved[0]
        inp, out, cache_read, cache_write, one_hour, reasoning = counts
        if (
            found is None
            or self._discounts is not None
            # usage_problem()'s test, for whole numbers
            or not (cache_read >= 0 and cache_write >= 0 and cache_read + cache_write <= inp <= MAX_TOKENS
                    and 0 <= reasoning <= out <= MAX_TOKENS and 0 <= one_hour <= cache_write)
        ):  # fmt: skip
            return None
        rates, since_ns, most_input = resolved[3:]
        if rates is None or inp > most_input or (since_ns is not None and at_ns is not None and at_ns < since_ns):
            rates = rates_of(found.entry.prices_at(at_ns), inp)
        return rates.price_counts(inp, out, cache_read, cache_write, one_hour, reasoning)

    def resolve(self, provider: str | None, model: str | None, server_address: str | None = None) -> Resolved:
        """Return what prices a call of *model* at *provider*, memoised (unknown models too).

        Returns:
            ``(match, model_id, model, rates, since_ns, most_input)``: the catalog entry (``None``
            when unknown), the model id the cost is reported under (``None`` when unknown), the
            model the span names once deployment names (overrides) are applied, and for
            :meth:`price_counts` the rates of the entry's latest prices (``None`` when unknown),
            the time they start (``None``: always) and the most input tokens they are for.
        """
        key = (provider, model, server_address)
        if self._deployments and model:
            model = self._deployment_model(provider, model, server_address)
        found = self._match(provider, model, server_address)
        rates, since_ns, most_input = None, None, 0
        if found is not None:
            latest = found.entry.periods[-1]
            rates, since_ns = rates_of(latest.prices, 0), latest.starts_ns
            tiers = latest.prices.tiers
            most_input = min(tier.above_input_tokens for tier in tiers) if tiers else MAX_TOKENS
        resolved = (found, _model_id(found, model) if found else None, model, rates, since_ns, most_input)
        if len(self._resolved) < self._cache_size:
            self._resolved[key] = resolved
        return resolved

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
