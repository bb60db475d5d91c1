"""The memoised rates of a price period: the usual call (token counts only) priced cheaply, exactly.

:func:`rates_of` keeps, per price period and tier, the constants :func:`~.compute.compute_cost`
would recompute for every call; :meth:`Rates.price_counts` then prices a call with the very same
Decimal operations, so results match the general path digit for digit, and gives the amounts as
floats from integers when that is exact. Pure module (no OpenTelemetry import).
"""

from __future__ import annotations

from decimal import Decimal

from .catalog import Prices
from .compute import CacheSavings, Usage, compute_cost, split_savings
from .extras import Extras, PriceOptions

_ZERO = Decimal(0)

__all__ = ["PricedCounts", "Rates", "price_usage", "rates_of"]


def price_usage(
    prices: Prices, usage: Usage, options: PriceOptions | None = None
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int | None]:
    """Price *usage* with *prices*, total included: ``(total, *compute_cost(prices, usage, options))``.

    The total is the sum of the components in the order ``input + output + cache_read +
    cache_write + request``. A call with only token counts and no option (the usual one) is priced
    with the period's constants memoised; the result is the same, digit for digit.
    """
    if options is None and not (
        usage.audio_input_tokens or usage.audio_output_tokens or usage.image_output_tokens
        or usage.images or usage.audio_seconds or usage.web_search_calls
    ):  # fmt: skip
        return rates_of(prices, usage.input_tokens).price(usage)
    inp, out, cread, cwrite, req, tier = compute_cost(prices, usage, options)
    return inp + out + cread + cwrite + req, inp, out, cread, cwrite, req, tier


_PLAIN_MAX = 4096
_EXACT_FLOAT = 2**53  # integers below it are exact doubles
PricedCounts = tuple[
    Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int | None, tuple[float, ...] | None, "CacheSavings | None"
]
"""Total, input, output, cache read, cache write, request (USD), the tier applied, the same
amounts as floats when they were known cheaply (``None`` otherwise), and the cache savings and
write premium (:func:`cache_savings`; ``None`` without cache tokens)."""


class _ZeroTerms:
    """The terms of :func:`_compute_extended` that are constant for a call with only token counts.

    With no option and no audio, image, search or per-unit usage, each modality term is a zero
    product (``0 * price``: a zero carrying the price's exponent) and the request fee is fixed.
    Computed once per price period and tier with the very operations of the general path, so that
    sums keep the same digits, not only the same value (zeros added in another order give the same
    exact sum: the smallest exponent).
    """

    __slots__ = ("audio_out", "cache_read", "cache_write", "image_out", "input", "output", "prices", "request")

    def __init__(self, prices: Prices, ex: Extras, token_prices: tuple[Decimal, ...]) -> None:
        p_in, p_out, p_cr, p_cw, p_cw1h, p_rs = token_prices
        self.prices = prices
        self.input = 0 * (ex.audio_input if ex.audio_input is not None else p_in)
        self.audio_out = 0 * (ex.audio_output if ex.audio_output is not None else p_out)
        self.image_out = 0 * (ex.image_output if ex.image_output is not None else p_out)
        self.output = 0 * p_rs + self.audio_out + self.image_out  # with no reasoning tokens
        self.cache_read = 0 * p_cr
        self.cache_write = 0 * p_cw + 0 * p_cw1h
        request_usd = prices.request
        if ex.per_image is not None:
            request_usd += 0 * ex.per_image
        if ex.web_search is not None:
            request_usd += 0 * ex.web_search
        if ex.search_context:
            request_usd += ex.search_context.get("low", _ZERO)
        self.request = request_usd


class Rates:
    """One price period (and tier), ready to price calls with only token counts.

    The same arithmetic as :func:`compute_cost` (its plain or its schema-v2 branch, whichever the
    period takes) with the constant terms computed once: zero products keep the exponent of their
    price, so they are kept, not dropped. A sum of exact terms does not depend on their order (the
    result carries the smallest exponent), so constants are added up ahead; catalog prices have
    few digits, far from the 28 of the decimal context, so no sum here is rounded.
    """

    __slots__ = (
        "cache_read", "cache_write", "cache_write_1h", "extended", "full_scale", "full_units", "input", "input_units",
        "no_cache", "output", "output_units", "prices", "reasoning", "request", "request_float", "saved_read",
        "saved_write", "saved_write_1h", "scale", "tail_units", "tier_above", "usual_input", "usual_output",
        "usual_tail", "zero_cache_read", "zero_cache_write", "zero_input", "zero_output", "zero_output_modal",
    )  # fmt: skip

    def __init__(self, prices: Prices, token_prices: tuple[Decimal, ...], tier_above: int | None) -> None:
        """Prepare *prices* with *token_prices* (the base prices, or those of the tier above *tier_above*)."""
        self.prices = prices
        self.tier_above = tier_above
        self.input, self.output, self.cache_read, self.cache_write, self.cache_write_1h, self.reasoning = token_prices
        # what one cached token saves against the input price (cache_savings(), per token)
        self.saved_read = self.input - self.cache_read
        self.saved_write = self.input - self.cache_write
        self.saved_write_1h = self.input - self.cache_write_1h
        ex = prices.extras
        self.extended = ex is not None
        if ex is not None:
            zero = _ZeroTerms(prices, ex, token_prices)
            self.zero_input = zero.input
            self.zero_output = zero.output
            self.zero_output_modal = zero.audio_out + zero.image_out
            self.zero_cache_read, self.zero_cache_write, self.request = zero.cache_read, zero.cache_write, zero.request
        else:
            self.zero_input = self.zero_output = self.zero_output_modal = _ZERO
            self.zero_cache_read = self.zero_cache_write = _ZERO
            self.request = prices.request
        self.no_cache = self.zero_cache_read + self.zero_cache_write + self.request
        # The usual call (input and output tokens only): the constant terms that change its sums,
        # None for those that do not (a zero whose exponent is not below the sum's own leaves it
        # unchanged, digits included). The plain branch's zeros for no tokens are _ZERO, whose
        # exponent is 0: its usual call has input and output tokens.
        in_exp, out_exp = _exponent(self.input), _exponent(self.output)
        if ex is not None:
            self.usual_input = _changes(self.zero_input, in_exp)
            self.usual_output = _changes(self.zero_output, out_exp)
            in_exp, out_exp = min(in_exp, _exponent(self.zero_input)), min(out_exp, _exponent(self.zero_output))
        else:
            self.usual_input = self.usual_output = None
        self.usual_tail = _changes(self.no_cache, min(in_exp, out_exp))
        # The usual call's amounts as floats, from integers: each amount is a whole number of
        # 10**-k dollars; below 2**53 such a number and 10**k (k <= 22) are exact doubles, so one
        # division rounds it correctly, as float(Decimal) does: the same float, ~8x cheaper.
        self.request_float = float(self.request)
        k = max(0, -_exponent(self.input), -_exponent(self.output), -_exponent(self.no_cache))
        input_units, output_units, tail_units = (_units(value, k) for value in (self.input, self.output, self.no_cache))
        self.scale: float | None = None
        self.input_units = self.output_units = self.tail_units = 0
        if (
            k <= 22
            and input_units is not None
            and output_units is not None
            and tail_units is not None
            and min(input_units, output_units, tail_units) >= 0
        ):
            self.scale = float(10**k)
            self.input_units, self.output_units, self.tail_units = input_units, output_units, tail_units
        # The same for any call with token counts only (cache, reasoning: see _floats), in units of
        # every token price and of the request fee (the other terms are zeros).
        prices_in_order = (*token_prices, self.request)
        k = max(0, *(-_exponent(value) for value in prices_in_order))
        units = tuple(_units(value, k) for value in prices_in_order)
        self.full_scale: float | None = None
        self.full_units: tuple[int, ...] = ()
        if k <= 22 and all(u is not None and u >= 0 for u in units):
            self.full_scale = float(10**k)
            self.full_units = units  # type: ignore[assignment]  # no None, just checked

    def price(self, usage: Usage) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int | None]:
        """Return ``(total, input, output, cache_read, cache_write, request, tier_above)``."""
        return self.price_counts(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens,
            usage.reasoning_tokens,
        )[:7]

    def price_counts(
        self, inp: int, out: int, cache_read: int, cache_write: int, one_hour: int, reasoning: int
    ) -> PricedCounts:
        """:meth:`price` of the token counts of a :class:`Usage` (in its order), with the amounts as floats.

        Returns:
            ``(total, input, output, cache_read, cache_write, request, tier_above, floats, saved)``;
            *floats* is ``float()`` of the first six when it is known cheaply, else ``None``;
            *saved* is :meth:`savings`, ``None`` without cache tokens.
        """
        if not (cache_read or cache_write or one_hour or reasoning) and (self.extended or (inp and out)):
            input_usd = inp * self.input
            if self.usual_input is not None:
                input_usd += self.usual_input
            output_usd = out * self.output
            if self.usual_output is not None:
                output_usd += self.usual_output
            total = input_usd + output_usd
            if self.usual_tail is not None:
                total += self.usual_tail
            floats = None
            if self.scale is not None and inp >= 0 and out >= 0:
                units_in, units_out = inp * self.input_units, out * self.output_units
                units = units_in + units_out + self.tail_units
                if units < _EXACT_FLOAT:
                    scale = self.scale
                    floats = (units / scale, units_in / scale, units_out / scale, 0.0, 0.0, self.request_float)
            return (
                total, input_usd, output_usd, self.zero_cache_read, self.zero_cache_write, self.request,
                self.tier_above, floats, None,
            )  # fmt: skip
        uncached = inp - cache_read - cache_write
        if self.extended:  # _compute_extended with no option and no modality usage
            input_usd = uncached * self.input + self.zero_input
            if reasoning:
                output_usd = (out - reasoning) * self.output + reasoning * self.reasoning + self.zero_output_modal
            else:
                output_usd = out * self.output + self.zero_output
            if not (cache_read or cache_write or one_hour):
                total = input_usd + output_usd + self.no_cache
                return (
                    total, input_usd, output_usd, self.zero_cache_read, self.zero_cache_write, self.request,
                    self.tier_above, self._floats(uncached, out, reasoning, 0, 0, 0), None,
                )  # fmt: skip
            cache_read_usd = cache_read * self.cache_read if cache_read else self.zero_cache_read
            if cache_write or one_hour:
                cache_write_usd = (cache_write - one_hour) * self.cache_write + one_hour * self.cache_write_1h
            else:
                cache_write_usd = self.zero_cache_write
        else:  # compute_cost's own branch
            input_usd = uncached * self.input if uncached else _ZERO
            if reasoning and self.reasoning != self.output:
                output_usd = (out - reasoning) * self.output + reasoning * self.reasoning
            else:
                output_usd = out * self.output if out else _ZERO
            if not (cache_read or cache_write):
                total = input_usd + output_usd + self.no_cache
                as_floats = self._floats(uncached, out, reasoning, 0, 0, 0)
                return total, input_usd, output_usd, _ZERO, _ZERO, self.request, self.tier_above, as_floats, None
            cache_read_usd = cache_read * self.cache_read if cache_read else _ZERO
            if cache_write:
                cache_write_usd = (cache_write - one_hour) * self.cache_write + (
                    one_hour * self.cache_write_1h if one_hour else _ZERO
                )
            else:
                cache_write_usd = _ZERO
        total = input_usd + output_usd + cache_read_usd + cache_write_usd + self.request
        saved = self.savings(cache_read, cache_write, one_hour) if cache_read or cache_write else None
        as_floats = self._floats(uncached, out, reasoning, cache_read, cache_write, one_hour)
        return (
            total, input_usd, output_usd, cache_read_usd, cache_write_usd, self.request, self.tier_above, as_floats,
            saved,
        )  # fmt: skip

    def _floats(
        self, uncached: int, out: int, reasoning: int, cache_read: int, cache_write: int, one_hour: int
    ) -> tuple[float, ...] | None:
        """``float()`` of the amounts :meth:`price_counts` computes, from integers; ``None`` when not exact.

        Each amount is a whole number of 10**-k dollars (every price is); below 2**53 such a
        number and 10**k (k <= 22) are exact doubles, so one division rounds it correctly, as
        ``float(Decimal)`` does: the same float, several times cheaper. Zero products give 0.0,
        as :func:`~otel_llmcost._spans.amount_floats` gives for a zero.
        """
        scale = self.full_scale
        if scale is None or uncached < 0 or reasoning < 0 or out < reasoning or one_hour < 0 or cache_write < one_hour:
            return None
        p_in, p_out, p_cr, p_cw, p_cw1h, p_rs, request = self.full_units
        units_in = uncached * p_in
        units_out = (out - reasoning) * p_out + reasoning * p_rs
        units_cr = cache_read * p_cr
        units_cw = (cache_write - one_hour) * p_cw + one_hour * p_cw1h
        total = units_in + units_out + units_cr + units_cw + request
        if cache_read < 0 or total >= _EXACT_FLOAT:
            return None
        return total / scale, units_in / scale, units_out / scale, units_cr / scale, units_cw / scale, request / scale

    def savings(self, cache_read: int, cache_write: int, one_hour: int) -> CacheSavings:
        """:func:`cache_savings` of these cache token counts at these rates (no option)."""
        return split_savings(
            cache_read * self.saved_read,
            (cache_write - one_hour) * self.saved_write,
            one_hour * self.saved_write_1h,
        )


def _units(value: Decimal, k: int) -> int | None:
    """Return *value* in units of 10**-k, or ``None`` when it is not a whole number of them."""
    units = int(value.scaleb(k))
    return units if Decimal(units).scaleb(-k) == value else None


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def _changes(zero: Decimal, exponent: int) -> Decimal | None:
    """Return *zero* if adding it to a number of *exponent* changes the result, else ``None``."""
    return zero if zero or _exponent(zero) < exponent else None


# (id(prices), tier) -> its rates (which keep the prices alive, so the id is not reused meanwhile)
_RATES: dict[tuple[int, int | None], Rates] = {}


def rates_of(prices: Prices, input_tokens: int) -> Rates:
    """Return the rates of *prices* for a call of *input_tokens* (past a threshold, the tier's).

    Their :meth:`~Rates.price` gives what :func:`price_usage` gives for a usage of token counts
    only, with no option.
    """
    tier_above = None
    if prices.tiers:
        token_prices: tuple[Decimal, ...] = ()
        for tier in prices.tiers:
            if input_tokens > tier.above_input_tokens:
                token_prices = (
                    tier.input, tier.output, tier.cache_read, tier.cache_write, tier.cache_write_1h, tier.reasoning,
                )  # fmt: skip
                tier_above = tier.above_input_tokens
    rates = _RATES.get((id(prices), tier_above))
    if rates is None or rates.prices is not prices:
        if tier_above is None:
            token_prices = (
                prices.input, prices.output, prices.cache_read, prices.cache_write, prices.cache_write_1h,
                prices.reasoning,
            )  # fmt: skip
        if len(_RATES) >= _PLAIN_MAX:
            _RATES.clear()
        rates = _RATES[(id(prices), tier_above)] = Rates(prices, token_prices, tier_above)
    return rates
