"""Cost arithmetic: token usage x catalog prices -> an exact Decimal cost per component.

Pure module (no OpenTelemetry import). Token semantics are OpenTelemetry's: ``input_tokens``
includes cache reads and cache writes, ``output_tokens`` includes reasoning tokens. The memoised
rates of the usual call (token counts only) are in :mod:`.rates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .. import semconv
from .catalog import Prices
from .extras import Extras, PriceOptions

__all__ = [
    "STATUS_ESTIMATED",
    "STATUS_INVALID",
    "STATUS_NO_USAGE",
    "STATUS_PRICED",
    "STATUS_PROVIDER_REPORTED",
    "STATUS_UNPRICED",
    "CacheSavings",
    "Cost",
    "Usage",
    "cache_savings",
    "compute_cost",
    "split_savings",
]

STATUS_PRICED = semconv.LLM_COST_STATUS_PRICED
STATUS_UNPRICED = semconv.LLM_COST_STATUS_UNPRICED
STATUS_NO_USAGE = semconv.LLM_COST_STATUS_NO_USAGE
STATUS_INVALID = semconv.LLM_COST_STATUS_INVALID_USAGE
STATUS_ESTIMATED = semconv.LLM_COST_STATUS_ESTIMATED
STATUS_PROVIDER_REPORTED = semconv.LLM_COST_STATUS_PROVIDER_REPORTED

_ZERO = Decimal(0)


@dataclass(slots=True)
class Usage:
    """Token counts of one call, in OpenTelemetry semantics (subsets are included in their totals).

    Attributes:
        input_tokens: all input tokens, cache reads and writes included.
        output_tokens: all output tokens, reasoning included.
        cache_read_tokens: input tokens read from the prompt cache.
        cache_write_tokens: input tokens written to the prompt cache (any TTL).
        cache_write_1h_tokens: the part of ``cache_write_tokens`` written with a one-hour TTL.
        reasoning_tokens: output tokens spent on reasoning.
        audio_input_tokens: the part of the uncached input that is audio.
        audio_output_tokens: the part of the output that is audio.
        image_output_tokens: the part of the output that is image tokens.
        images: images generated (billed per image where the catalog says so).
        audio_seconds: seconds of audio processed (billed per minute where the catalog says so).
        web_search_calls: web-search tool calls made.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_output_tokens: int = 0
    images: int = 0
    audio_seconds: int = 0
    web_search_calls: int = 0


@dataclass(slots=True)
class Cost:
    """The price of one call. Amounts are ``None`` unless ``status`` is priced (never a made-up 0).

    Attributes:
        status: ``priced``, ``unpriced``, ``no_usage`` or ``invalid_usage``.
        total_usd: the sum of the components.
        input_usd: uncached input tokens.
        output_usd: output tokens, reasoning included.
        cache_read_usd: cached input read.
        cache_write_usd: cache writes, 5 minute and 1 hour together.
        request_usd: per-request fees.
        provider: catalog provider id that matched.
        model: catalog model id that matched.
        catalog_version: version of the catalog used.
        tier_above: the long-context threshold applied, if any.
        reason: why the call was not priced, in words.
        reason_code: a short code for ``reason`` (``unknown_model``, ``negative_tokens``...).
        cache_savings_usd: what prompt caching saved (see :func:`cache_savings`); ``None`` when
            the call has no cache tokens or is not priced from the catalog. Not a component of the total.
        cache_write_premium_usd: what its cache writes cost above the input price (same rules).
    """

    status: str
    total_usd: Decimal | None = None
    input_usd: Decimal | None = None
    output_usd: Decimal | None = None
    cache_read_usd: Decimal | None = None
    cache_write_usd: Decimal | None = None
    request_usd: Decimal | None = None
    provider: str | None = None
    model: str | None = None
    catalog_version: str | None = None
    tier_above: int | None = None
    reason: str | None = None
    reason_code: str | None = None
    cache_savings_usd: Decimal | None = None
    cache_write_premium_usd: Decimal | None = None

    def breakdown(self) -> dict[str, Decimal]:
        """Return the non-total components that are set, by name."""
        names = ("input_usd", "output_usd", "cache_read_usd", "cache_write_usd", "request_usd")
        return {n: v for n in names if (v := getattr(self, n)) is not None}


def compute_cost(
    prices: Prices, usage: Usage, options: PriceOptions | None = None
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int | None]:
    """Price *usage* with *prices*.

    Past a long-context threshold the whole request is billed at the tier's prices, as providers
    bill it (not only the tokens above the threshold).

    Returns:
        ``(input, output, cache_read, cache_write, request, tier_above)`` in USD.
    """
    (p_in, p_out, p_cr, p_cw, p_cw1h, p_rs), tier_above = _tier_prices(prices, usage.input_tokens)
    if prices.extras is not None or options is not None:
        return _compute_extended(
            prices, usage, options or _NO_OPTIONS, (p_in, p_out, p_cr, p_cw, p_cw1h, p_rs), tier_above
        )
    cache_read = usage.cache_read_tokens
    cache_write = usage.cache_write_tokens
    uncached = usage.input_tokens - cache_read - cache_write
    input_usd = uncached * p_in if uncached else _ZERO
    cache_read_usd = cache_read * p_cr if cache_read else _ZERO
    if cache_write:
        one_hour = usage.cache_write_1h_tokens
        cache_write_usd = (cache_write - one_hour) * p_cw + (one_hour * p_cw1h if one_hour else _ZERO)
    else:
        cache_write_usd = _ZERO
    reasoning = usage.reasoning_tokens
    if reasoning and p_rs != p_out:
        output_usd = (usage.output_tokens - reasoning) * p_out + reasoning * p_rs
    else:
        output_usd = usage.output_tokens * p_out if usage.output_tokens else _ZERO
    return input_usd, output_usd, cache_read_usd, cache_write_usd, prices.request, tier_above


_NO_OPTIONS = PriceOptions()
_ONE = Decimal(1)
_TOKEN_PRICE_NAMES = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")

CacheSavings = tuple[Decimal, Decimal]
"""``(savings, premium)`` of a call's cache tokens, in USD, both >= 0 (see :func:`cache_savings`)."""


def split_savings(read: Decimal, write: Decimal, write_1h: Decimal) -> CacheSavings:
    """Sort the cache deltas (input price - cache price, x tokens) into savings and premium."""
    savings = premium = _ZERO
    for delta in (read, write, write_1h):
        if delta > 0:
            savings += delta
        elif delta < 0:
            premium -= delta
    return savings, premium


def cache_savings(prices: Prices, usage: Usage, options: PriceOptions | None = None) -> CacheSavings | None:
    """Return what caching saved on *usage*, and what its cache writes cost above the input price.

    Each cached token is compared with the input price it would have had uncached, at the prices
    :func:`compute_cost` uses for the call (its long-context tier, service tier, batch and region):
    a cache read saves ``input - cache_read`` per token; a cache write (5-minute or 1-hour) usually
    costs more than input (Anthropic: 1.25x and 2x), ``cache_write - input`` per token, the premium.
    A delta of the other sign goes to the other figure, so both are >= 0 (counters) and the net
    saving is exactly ``savings - premium``.

    Returns:
        ``(savings, premium)`` in USD, or ``None`` when the call has no cache tokens.
    """
    cache_read, cache_write = usage.cache_read_tokens, usage.cache_write_tokens
    if not (cache_read or cache_write):
        return None
    token_prices = _tier_prices(prices, usage.input_tokens)[0]
    scale = _ONE
    if options is not None and prices.extras is not None:
        token_prices, scale = _option_prices(prices.extras, options, token_prices)
    p_in, _, p_cr, p_cw, p_cw1h, _ = token_prices
    one_hour = usage.cache_write_1h_tokens
    read, write, write_1h = (
        cache_read * (p_in - p_cr),
        (cache_write - one_hour) * (p_in - p_cw),
        one_hour * (p_in - p_cw1h),
    )
    if scale != _ONE:
        read, write, write_1h = read * scale, write * scale, write_1h * scale
    return split_savings(read, write, write_1h)


def _tier_prices(prices: Prices, input_tokens: int) -> tuple[tuple[Decimal, ...], int | None]:
    """The token prices of a call of *input_tokens* (past a threshold, the tier's) and the threshold."""
    token_prices = (
        prices.input, prices.output, prices.cache_read, prices.cache_write, prices.cache_write_1h, prices.reasoning,
    )  # fmt: skip
    tier_above = None
    for tier in prices.tiers or ():
        if input_tokens > tier.above_input_tokens:
            token_prices = (
                tier.input, tier.output, tier.cache_read, tier.cache_write, tier.cache_write_1h, tier.reasoning,
            )  # fmt: skip
            tier_above = tier.above_input_tokens
    return token_prices, tier_above


def _option_prices(
    ex: Extras, options: PriceOptions, token_prices: tuple[Decimal, ...]
) -> tuple[tuple[Decimal, ...], Decimal]:
    """The token prices under a service tier with its own prices, and the multiplier of the options."""
    scale = _ONE
    current = dict(zip(_TOKEN_PRICE_NAMES, token_prices, strict=True))
    tier = ex.service_tiers.get(options.service_tier) if options.service_tier else None
    if isinstance(tier, Decimal):
        scale *= tier
    elif tier is not None:
        current.update(tier)
    if options.batch and ex.batch is not None:
        scale *= ex.batch
    if options.region and options.region in ex.regions:
        scale *= ex.regions[options.region]
    return tuple(current[name] for name in _TOKEN_PRICE_NAMES), scale


def _compute_extended(
    prices: Prices,
    usage: Usage,
    options: PriceOptions,
    token_prices: tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal],
    tier_above: int | None,
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int | None]:
    """The schema-v2 path: audio and image tokens, per-unit fees, batch, service tier, region."""
    ex = prices.extras or Extras()
    (p_in, p_out, p_cr, p_cw, p_cw1h, p_rs), scale = _option_prices(ex, options, token_prices)
    cache_read, cache_write = usage.cache_read_tokens, usage.cache_write_tokens
    audio_in = usage.audio_input_tokens
    uncached_text = usage.input_tokens - cache_read - cache_write - audio_in
    input_usd = uncached_text * p_in + audio_in * (ex.audio_input if ex.audio_input is not None else p_in)
    cache_read_usd = cache_read * p_cr
    one_hour = usage.cache_write_1h_tokens
    cache_write_usd = (cache_write - one_hour) * p_cw + one_hour * p_cw1h
    reasoning, audio_out, image_out = usage.reasoning_tokens, usage.audio_output_tokens, usage.image_output_tokens
    text_out = usage.output_tokens - reasoning - audio_out - image_out
    output_usd = (
        text_out * p_out
        + reasoning * p_rs
        + audio_out * (ex.audio_output if ex.audio_output is not None else p_out)
        + image_out * (ex.image_output if ex.image_output is not None else p_out)
    )
    request_usd = prices.request
    if ex.per_image is not None:
        request_usd += usage.images * ex.per_image
    if ex.per_minute is not None and usage.audio_seconds:
        request_usd += ex.per_minute * usage.audio_seconds / 60
    if ex.web_search is not None:
        request_usd += usage.web_search_calls * ex.web_search
    if ex.search_context:
        # the API's default search context size is "low" when the request names none
        request_usd += ex.search_context.get(options.search_context or "low", _ZERO)
    if scale != _ONE:
        input_usd, output_usd, cache_read_usd, cache_write_usd, request_usd = (
            v * scale for v in (input_usd, output_usd, cache_read_usd, cache_write_usd, request_usd)
        )
    return input_usd, output_usd, cache_read_usd, cache_write_usd, request_usd, tier_above
