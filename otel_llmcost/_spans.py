"""Span attribute helpers shared by the span processor and our instrumentation."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from . import semconv as sc
from .pricing import Cost

__all__ = ["add_amount_attributes", "add_cost_attributes", "amount_floats", "cost_attributes", "span_attributes"]

_STATUS = sc.LLM_COST_STATUS
_VERSION = sc.LLM_COST_PRICING_VERSION
_TOTAL = sc.LLM_COST_TOTAL_USD
_INPUT = sc.LLM_COST_INPUT_USD
_OUTPUT = sc.LLM_COST_OUTPUT_USD
_CACHE_READ = sc.LLM_COST_CACHE_READ_USD
_CACHE_WRITE = sc.LLM_COST_CACHE_WRITE_USD
_REQUEST = sc.LLM_COST_REQUEST_USD
_MODEL = sc.LLM_COST_PRICING_MODEL
_PROVIDER = sc.LLM_COST_PRICING_PROVIDER
_REASON = sc.LLM_COST_REASON


def cost_attributes(cost: Cost) -> dict[str, Any]:
    """Return the ``llm.cost.*`` span attributes for *cost* (amounts only when there is a total)."""
    attrs: dict[str, Any] = {}
    add_cost_attributes(attrs, cost)
    return attrs


def add_cost_attributes(attrs: dict[str, Any], cost: Cost, total_float: float | None = None) -> None:
    """Add the ``llm.cost.*`` attributes of *cost* to *attrs* (amounts whenever there is a total).

    *total_float* is ``float(cost.total_usd)`` when the caller has it already.
    """
    total = cost.total_usd
    if total is not None:  # priced, estimated or provider-reported
        if cost.input_usd is not None:  # a catalog price has every component; a reported cost none
            amounts = amount_floats(
                total, cost.input_usd, cost.output_usd, cost.cache_read_usd, cost.cache_write_usd, cost.request_usd
            )
            if total_float is not None:
                amounts = (total_float, *amounts[1:])
            add_amount_attributes(attrs, cost.status, cost.catalog_version, amounts, cost.model, cost.provider)
            return
        attrs[_STATUS] = cost.status
        attrs[_VERSION] = cost.catalog_version
        attrs[_TOTAL] = float(total) if total_float is None else total_float
        if cost.model:
            attrs[_MODEL] = cost.model
        if cost.provider:
            attrs[_PROVIDER] = cost.provider
        return
    attrs[_STATUS] = cost.status
    if cost.catalog_version:
        attrs[_VERSION] = cost.catalog_version
    if cost.reason:
        attrs[_REASON] = cost.reason


def amount_floats(*amounts: Decimal | None) -> tuple[float, ...]:
    """Return ``float()`` of each amount, ``0.0`` for a zero or a missing one."""
    # float(Decimal) costs ~0.2 us, and most components are zero
    return tuple(float(amount) if amount else 0.0 for amount in amounts)


def add_amount_attributes(
    attrs: dict[str, Any],
    status: str,
    version: str | None,
    amounts: tuple[float, ...],
    model: str | None,
    provider: str | None,
) -> None:
    """Add the ``llm.cost.*`` attributes of a cost with every component (what a catalog price has).

    Args:
        attrs: where to add them.
        status: the cost status.
        version: the catalog version.
        amounts: total, input, output, cache read, cache write and request amounts, as floats
            (see :func:`amount_floats`).
        model: the catalog model id, left out when empty.
        provider: the catalog provider id, left out when empty.
    """
    attrs[_STATUS] = status
    attrs[_VERSION] = version
    attrs[_TOTAL], attrs[_INPUT], attrs[_OUTPUT], attrs[_CACHE_READ], attrs[_CACHE_WRITE], attrs[_REQUEST] = amounts
    if model:
        attrs[_MODEL] = model
    if provider:
        attrs[_PROVIDER] = provider


def span_attributes(span: Any) -> Mapping[str, Any]:
    """Return the span's attributes as a plain mapping, to be read only.

    ``ReadableSpan.attributes`` is a read-only proxy over ``BoundedAttributes``; each lookup through
    it costs ~0.7 us, and pricing does ~30. The SDK keeps the values in a plain dict, already
    validated, which we read directly when it is there.
    """
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(inner) is dict:
        return inner
    return dict(span.attributes or {})
