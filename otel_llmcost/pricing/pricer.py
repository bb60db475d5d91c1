"""The pricing entry point: (provider, model, usage, time) -> :class:`Cost`.

Pure module (no OpenTelemetry import); the span processor, the instrumentation, the collector
and the CLI all price through :meth:`Pricer.price`.
"""

from __future__ import annotations

import threading

from .catalog import Catalog, default_catalog
from .compute import STATUS_INVALID, STATUS_NO_USAGE, STATUS_PRICED, STATUS_UNPRICED, Cost, Usage, compute_cost
from .matching import Match, Matcher

__all__ = ["MAX_TOKENS", "Pricer", "default_pricer", "usage_problem"]

MAX_TOKENS = 1_000_000_000
"""Token counts above this are treated as corrupt data, not priced."""


def usage_problem(usage: Usage) -> tuple[str, str] | None:
    """Return ``(code, message)`` saying why *usage* cannot be priced, or ``None`` when it is consistent.

    Counts must be whole numbers from 0 to :data:`MAX_TOKENS`, and the subsets (cache reads and
    writes of input, reasoning of output, one-hour writes of cache writes) must fit their totals.
    """
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
    return None


class Pricer:
    """Prices calls against one catalog, memoising model matches."""

    def __init__(self, catalog: Catalog | None = None, *, cache_size: int = 16384) -> None:
        """Create a pricer.

        Args:
            catalog: the catalog to use; default the built-in one.
            cache_size: how many distinct (provider, model, address) matches to remember.
        """
        self.catalog = catalog if catalog is not None else default_catalog()
        self.matcher = Matcher(self.catalog, cache_size=cache_size)

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
    ) -> Cost:
        """Price one call.

        Args:
            provider: provider name as the span gives it (any spelling :mod:`.providers` knows).
            model: model name as the span gives it (response model preferred by callers).
            usage: token counts; ``None`` when the call reported none.
            at_ns: when the call happened (Unix ns); prices in force then are used. ``None``: now.
            server_address: the endpoint host, which can select the provider that bills.

        Returns:
            A :class:`Cost`; its status says ``priced``, ``unpriced``, ``no_usage`` or
            ``invalid_usage`` and amounts are set only when priced.
        """
        version = self.catalog.version
        if usage is None:
            return Cost(STATUS_NO_USAGE, catalog_version=version, reason="the call reported no token usage")
        problem = usage_problem(usage)
        if problem is not None:
            return Cost(STATUS_INVALID, catalog_version=version, reason_code=problem[0], reason=problem[1])
        found = self.matcher.match(provider, model, server_address)
        if found is None:
            return Cost(
                STATUS_UNPRICED,
                catalog_version=version,
                reason_code="unknown_model",
                reason=f"no price for model {model!r} of provider {provider!r}" if model else "the call names no model",
            )
        entry = found.entry
        inp, out, cread, cwrite, req, tier = compute_cost(entry.prices_at(at_ns), usage)
        return Cost(
            STATUS_PRICED,
            total_usd=inp + out + cread + cwrite + req,
            input_usd=inp,
            output_usd=out,
            cache_read_usd=cread,
            cache_write_usd=cwrite,
            request_usd=req,
            provider=found.provider,
            model=entry.model_id,
            catalog_version=version,
            tier_above=tier,
        )


_default: Pricer | None = None
_lock = threading.Lock()


def default_pricer() -> Pricer:
    """Return the process-wide pricer over the built-in catalog (created on first use)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = Pricer()
    return _default
