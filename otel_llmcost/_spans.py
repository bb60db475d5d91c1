"""Span attribute helpers shared by the span processor and our instrumentation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import semconv as sc
from .pricing import Cost

__all__ = ["add_cost_attributes", "cost_attributes", "span_attributes"]


def cost_attributes(cost: Cost) -> dict[str, Any]:
    """Return the ``llm.cost.*`` span attributes for *cost* (amounts only when there is a total)."""
    attrs: dict[str, Any] = {}
    add_cost_attributes(attrs, cost)
    return attrs


def add_cost_attributes(attrs: dict[str, Any], cost: Cost) -> None:
    """Add the ``llm.cost.*`` attributes of *cost* to *attrs* (amounts whenever there is a total)."""
    total = cost.total_usd
    if total is not None:  # priced, estimated or provider-reported
        attrs[sc.LLM_COST_STATUS] = cost.status
        attrs[sc.LLM_COST_PRICING_VERSION] = cost.catalog_version
        attrs[sc.LLM_COST_TOTAL_USD] = float(total)
        if cost.input_usd is not None:  # a catalog price has every component; a reported cost none
            attrs.update(
                {
                    sc.LLM_COST_INPUT_USD: float(cost.input_usd),
                    sc.LLM_COST_OUTPUT_USD: float(cost.output_usd or 0),
                    sc.LLM_COST_CACHE_READ_USD: float(cost.cache_read_usd or 0),
                    sc.LLM_COST_CACHE_WRITE_USD: float(cost.cache_write_usd or 0),
                    sc.LLM_COST_REQUEST_USD: float(cost.request_usd or 0),
                }
            )
        if cost.model:
            attrs[sc.LLM_COST_PRICING_MODEL] = cost.model
        if cost.provider:
            attrs[sc.LLM_COST_PRICING_PROVIDER] = cost.provider
        return
    attrs[sc.LLM_COST_STATUS] = cost.status
    if cost.catalog_version:
        attrs[sc.LLM_COST_PRICING_VERSION] = cost.catalog_version
    if cost.reason:
        attrs[sc.LLM_COST_REASON] = cost.reason


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
