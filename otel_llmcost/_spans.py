"""Span attribute helpers, and the memoised plan of a kind of call, shared by the span processor,
the collector and our instrumentation.

A :class:`Plan` holds what prices and counts every call that shares a provider, model, endpoint,
operation, error type and metric labels: the pricer's resolution of its model and its metric
series. The processor's fast path (:class:`~otel_llmcost.processor.FastPath`, keyed by span
attributes) and our instrumentation's (:class:`CallPlans`,
keyed by the call's own facts) both build plans with :func:`plan_of` and count priced calls with
:func:`record_priced`, so both give what the general path (:meth:`Pricer.price`,
:meth:`Recorder.record`) gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from . import semconv as sc
from .calls import LLMCall
from .metrics import Recorder, Route
from .pricing import STATUS_PRICED, Cost, Pricer
from .pricing.pricer import Counts, Resolved
from .pricing.rates import PricedCounts

__all__ = [
    "CallPlans",
    "Plan",
    "add_amount_attributes",
    "add_cost_attributes",
    "amount_floats",
    "call_plans",
    "cost_attributes",
    "plan_of",
    "record_priced",
    "span_attributes",
]

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


# --- the plan of a kind of call -------------------------------------------------------------------

_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_MAX_PLANS = 4096
_OK_PRICED = (sc.STATUS_OK, STATUS_PRICED)
_ERROR_PRICED = (sc.STATUS_ERROR, STATUS_PRICED)


class Plan:
    """What prices and counts every call that shares a call's pricing facts (see :func:`plan_of`).

    Attributes:
        call: the call the plan was made from (its usage and ids are not used).
        resolved: what :meth:`Pricer.resolve` says of its provider, model and endpoint.
        route: its metric series.
        provider: the catalog provider that bills it.
        model_id: the catalog model it is billed as.
        error_type: the ``error.type`` label of its duration when it succeeds, and when it fails.
        failed: whether the call says it failed (an ``error.type``, whatever the span status).
    """

    __slots__ = ("call", "error_type", "failed", "model_id", "provider", "resolved", "route")

    def __init__(self, call: LLMCall, resolved: Resolved, route: Route) -> None:
        """Hold the parts."""
        self.call = call
        self.resolved = resolved
        self.route = route
        self.provider = resolved[0].provider if resolved[0] is not None else None
        self.model_id = resolved[1]
        # what Recorder.record() labels the duration with: call.error_type or ("_OTHER" if error else "")
        self.error_type = (call.error_type or "", call.error_type or "_OTHER")
        self.failed = call.error_type is not None


def plan_of(pricer: Pricer, recorder: Recorder, call: LLMCall) -> Plan | None:
    """Return the plan of *call*, or ``None`` when the fast paths must leave it to the general path.

    Only calls of a model the catalog knows, under a catalog provider and model id, have one: the
    series of an unknown model depends on more than the facts plans are kept by. Callers check
    what else their general path depends on (billing options, the region of the endpoint).
    """
    resolved = pricer.resolve(call.provider, call.model, call.server_address)
    found, model_id = resolved[:2]
    if found is None or not found.provider or not model_id:
        return None
    # the series Recorder.record() counts a call priced from the catalog in: cost.provider, cost.model
    return Plan(call, resolved, recorder.route(recorder.label_key(found.provider, model_id, call)))


def record_priced(
    recorder: Recorder,
    plan: Plan,
    counts: Counts,
    priced: PricedCounts,
    duration_s: float | None,
    error: bool,
    session: Any = None,
    request_key: tuple[str, str] | None = None,
) -> tuple[float, ...]:
    """Count one call of *plan* priced at *priced* (what :meth:`Recorder.record` counts for its cost).

    Args:
        recorder: the recorder the plan's series belongs to.
        plan: from :func:`plan_of`.
        counts: its token counts (:meth:`Pricer.price_counts`'s order).
        priced: what :meth:`Pricer.price_counts` priced them at.
        duration_s: its duration.
        error: whether it failed.
        session: its session id (``None`` or ``""``: none).
        request_key: ``(status, cost status)`` of ``llm_requests_total``; default the call's
            status with cost status ``priced``.

    Returns:
        The amounts as floats (total, input, output, cache read, cache write, request).
    """
    amounts = priced[7]
    if amounts is None:
        amounts = amount_floats(*priced[:6])
    recorder.add(
        plan.route,
        request_key or (_ERROR_PRICED if error else _OK_PRICED),
        priced[0],
        amounts[0],
        counts,
        duration_s,
        plan.error_type[error],
        priced[8],
        session,
    )
    return amounts


class CallPlans:
    """The :class:`Plan` of each kind of instrumented call, for one pricer and one recorder.

    What a call costs and which series count it depends on its provider, model (the response's,
    else the request's), endpoint, operation, error type, the labels its baggage gives (session
    name, dimension properties: the baggage keys :meth:`Recorder.label_key` reads through the
    :class:`LLMCall`), and its token counts. The first call of given values of those facts is
    planned from the call the general path builds (:func:`plan_of`: its model
    resolved, its series found); later ones only price their counts with the plan's memoised
    rates and count them. Calls with anything unusual -- an unknown model, no usage, counts that
    are not whole ``int`` values or are inconsistent, modality usage, a provider-reported cost, a
    pricer with discounts -- take the general path, which gives the same result.
    """

    __slots__ = ("labels", "plans", "pricer", "recorder", "version")

    def __init__(self, pricer: Pricer, recorder: Recorder) -> None:
        """Create the (empty) plans of *pricer* and *recorder*."""
        self.pricer = pricer
        self.recorder = recorder
        self.version = pricer.catalog.version
        dims = recorder.dimensions
        # every baggage key the series can depend on (a recorder without dimensions reads none)
        self.labels = (sc.LLM_SESSION_NAME, *(_PROPERTY_PREFIX + dim for dim in dims)) if dims else ()
        self.plans: dict[tuple[Any, ...], Plan | None] = {}

    def plan(self, key: tuple[Any, ...], call: LLMCall) -> Plan | None:
        """Make, keep and return the plan of *call*, whose facts are *key*."""
        plan = plan_of(self.pricer, self.recorder, call)
        plans = self.plans
        if len(plans) >= _MAX_PLANS:
            plans.clear()
        plans[key] = plan
        return plan


_plans: CallPlans | None = None  # those of the pricer and recorder in use


def call_plans(pricer: Pricer, recorder: Recorder) -> CallPlans:
    """Return the plans of *pricer* and *recorder* (new ones when either was replaced since)."""
    global _plans
    plans = _plans
    if plans is None or plans.pricer is not pricer or plans.recorder is not recorder:
        plans = _plans = CallPlans(pricer, recorder)
    return plans
