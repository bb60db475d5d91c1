"""CostSpanProcessor: prices GenAI spans on their way to the processor it wraps.

The SDK freezes a span's attributes before any processor's ``on_end`` runs, so a span that needs
a price is handed on as a rebuilt :class:`ReadableSpan` carrying its original attributes plus
the ``llm.cost.*`` ones. A span that already carries a cost (priced by our instrumentation or by
another hop) is passed through unchanged and not counted again, and so is a span another
instrumentation made of a call ours traced too: :meth:`CostSpanProcessor.on_start` marks the
spans that start inside one of our calls with ``llm.cost.covered_by`` (one call, one cost).
Nothing here raises into the application: failures are logged once and counted in
``llm_cost_spans_skipped_total``.

This runs for every span the application ends, so the usual GenAI span goes through
:class:`FastPath`: what depends only on its provider, models and labels is worked out once per
kind of call, and each span only reads its token counts, prices them and counts them. Anything
unusual takes the general path (:func:`~otel_llmcost.calls.extract_call`, :func:`price_call`,
:meth:`Recorder.record`), which gives the same result; the collector uses both too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from . import semconv as sc
from ._spans import (
    Plan,
    add_amount_attributes,
    add_cost_attributes,
    amount_floats,
    cost_attributes,
    plan_of,
    record_priced,
    span_attributes,
)
from ._state import IN_LLM_CALL, stamp_covered
from .calls import (
    ANY_VARIANT_NAMES,
    NOT_PLAIN_NAMES,
    PLAIN_TOKEN_NAMES,
    PLAN_NAMES,
    PLAN_NAMES_ALL,
    Counts,
    LLMCall,
    extract_call,
    plain_counts,
)
from .context import current_attributes
from .metrics import Recorder
from .pricing import (
    STATUS_INVALID,
    STATUS_PRICED,
    Cost,
    PriceOptions,
    Pricer,
    default_pricer,
    region_from_address,
)
from .pricing.rates import PricedCounts

__all__ = ["CostSpanProcessor", "cost_attributes", "session_of"]

_log = logging.getLogger(__name__)
_COST_STATUS = sc.LLM_COST_STATUS
_COST_TOTAL = sc.LLM_COST_TOTAL_USD
_COVERED_BY = sc.LLM_COST_COVERED_BY
_ERROR = StatusCode.ERROR
_MAX_PLANS = 4096
_OK_PRICED = (sc.STATUS_OK, STATUS_PRICED)
_ERROR_PRICED = (sc.STATUS_ERROR, STATUS_PRICED)
_SESSION_ID = sc.SESSION_ID
_CONVERSATION_ID = sc.GEN_AI_CONVERSATION_ID


def session_of(attrs: Mapping[str, Any]) -> Any:
    """The session id :func:`~otel_llmcost.calls.extract_call` reads (``session.id``, else the conversation id)."""
    session = attrs.get(_SESSION_ID)
    if session is None or session == "":
        session = attrs.get(_CONVERSATION_ID)
    return session


def price_call(pricer: Pricer, call: LLMCall, at_ns: int | None) -> Cost:
    """Price an extracted call, turning unreadable token counts into an ``invalid_usage`` cost."""
    if call.usage_error is not None:
        found = pricer.match(call.provider, call.model, call.server_address)
        return Cost(
            STATUS_INVALID,
            provider=found.provider if found else None,
            model=found.entry.model_id if found else None,
            catalog_version=pricer.catalog.version,
            reason=call.usage_error,
            reason_code=call.usage_error_code,
        )
    return pricer.price(
        call.provider,
        call.model,
        call.usage,
        at_ns=at_ns,
        server_address=call.server_address,
        options=_options(pricer, call),
    )


def _options(pricer: Pricer, call: LLMCall) -> PriceOptions | None:
    """The call's billing options, with the region its endpoint names when prices depend on it."""
    options = call.options
    if options is not None and options.region is None and call.server_address:
        options = dataclasses.replace(options, region=region_from_address(call.server_address))
    elif options is None and call.server_address and pricer.has_regional_prices:
        region = region_from_address(call.server_address)
        options = PriceOptions(region=region) if region else None
    return options


class FastPath:
    """Prices the usual GenAI span with the work that only depends on its pricing facts done once.

    A span's price and metric series depend on its provider, models, operation, endpoint, error
    type, session name and dimension properties, and on its token counts. The first span with
    given values of those facts is read by :func:`~otel_llmcost.calls.extract_call`, its model
    matched and its series found, and the result is kept as a :class:`Plan` keyed by the values;
    a later span with the same values only reads its token counts. The key holds the values under
    every name :func:`extract_call` reads for those facts (only the current names when the span
    has no other convention's name at all, which is also when ``extract_call`` takes its own fast
    path), so a plan gives what the general path gives. Spans of unknown models, with other names
    for token counts, with schema-v2 facts, or with counts that are not whole ``int`` values take
    the general path (:meth:`prepare` and :meth:`price` return ``None``).
    """

    def __init__(self, pricer: Pricer, recorder: Recorder) -> None:
        """Create the fast path of one pricer and one recorder."""
        self.pricer = pricer
        self.recorder = recorder
        self.version = pricer.catalog.version
        self._dimensions = recorder.dimensions
        properties = tuple(f"{sc.LLM_PROPERTY}.{dim}" for dim in recorder.dimensions)
        self._names = PLAN_NAMES + properties
        self._names_all = PLAN_NAMES_ALL + properties
        self._plans: dict[tuple[Any, ...], Plan | None] = {}

    def prepare(self, attrs: Mapping[str, Any]) -> tuple[Plan, Counts] | None:
        """Return the span's plan and token counts, or ``None`` when it takes the general path."""
        get = attrs.get
        if ANY_VARIANT_NAMES.isdisjoint(attrs):
            key = tuple(map(get, self._names))
        elif NOT_PLAIN_NAMES.isdisjoint(attrs):
            key = tuple(map(get, self._names_all))  # longer: never equal to a key of the line above
        else:
            return None
        inp, out, cache_read, cache_write, one_hour, reasoning = map(get, PLAIN_TOKEN_NAMES)
        if (
            type(inp) is int and type(out) is int
            and cache_read is None and cache_write is None and one_hour is None and reasoning is None
        ):  # fmt: skip
            counts: Counts = (inp, out, 0, 0, 0, 0)  # what plain_counts() gives for these
        else:
            plain = plain_counts(inp, out, cache_read, cache_write, one_hour, reasoning)
            if plain is None:
                return None
            counts = plain
        try:
            plan = self._plans[key]
        except KeyError:
            plan = self._plan(key, attrs)
        except TypeError:  # a value that cannot be a key (a list from a hand-made mapping)
            return None
        return None if plan is None else (plan, counts)

    def _plan(self, key: tuple[Any, ...], attrs: Mapping[str, Any]) -> Plan | None:
        plan = None
        call = extract_call(attrs, property_keys=self._dimensions)
        # No option, and no region to price (when the catalog has regional prices, the endpoint may
        # name one); plan_of() takes known models only.
        pricer = self.pricer
        if call is not None and call.usage_error is None and call.options is None and _options(pricer, call) is None:
            plan = plan_of(pricer, self.recorder, call)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def end(
        self, attrs: Mapping[str, Any], start_ns: int | None, duration_s: float | None, failed: bool
    ) -> dict[str, Any] | None:
        """Price and count an ended span: :meth:`prepare`, :meth:`price` and :meth:`record` in one.

        Written out (a call costs ~0.1 us, and this runs for every GenAI span the processor sees);
        what it does must stay what those three do (tests compare both with the general path;
        :func:`~otel_llmcost._spans.record_priced` is the counting written out here).

        Args:
            attrs: the span's attributes.
            start_ns: its start time.
            duration_s: its duration.
            failed: whether its status is an error.

        Returns:
            A copy of *attrs* with the ``llm.cost.*`` attributes, or ``None`` when nothing was
            counted and the general path must price the span.
        """
        get = attrs.get
        if ANY_VARIANT_NAMES.isdisjoint(attrs):
            key = tuple(map(get, self._names))
        elif NOT_PLAIN_NAMES.isdisjoint(attrs):
            key = tuple(map(get, self._names_all))
        else:
            return None
        inp, out, cache_read, cache_write, one_hour, reasoning = map(get, PLAIN_TOKEN_NAMES)
        if (
            type(inp) is int and type(out) is int
            and cache_read is None and cache_write is None and one_hour is None and reasoning is None
        ):  # fmt: skip
            counts: Counts = (inp, out, 0, 0, 0, 0)
        else:
            plain = plain_counts(inp, out, cache_read, cache_write, one_hour, reasoning)
            if plain is None:
                return None
            counts = plain
        try:
            plan = self._plans[key]
        except KeyError:
            plan = self._plan(key, attrs)
        except TypeError:
            return None
        if plan is None:
            return None
        priced = self.pricer.price_counts(plan.resolved, counts, start_ns)
        if priced is None:
            return None
        amounts = priced[7]
        if amounts is None:
            amounts = amount_floats(*priced[:6])
        failed = failed or plan.failed
        session = get(_SESSION_ID)
        if (session is None or session == "") and len(key) != len(self._names):  # the key of every name
            session = get(_CONVERSATION_ID)
        self.recorder.add(
            plan.route,
            _ERROR_PRICED if failed else _OK_PRICED,
            priced[0],
            amounts[0],
            counts,
            duration_s,
            plan.error_type[failed],
            priced[8],
            session,
        )
        merged = dict(attrs)
        add_amount_attributes(merged, STATUS_PRICED, self.version, amounts, plan.model_id, plan.provider)
        return merged

    def price(self, plan: Plan, counts: Counts, at_ns: int | None) -> PricedCounts | None:
        """Return what :func:`price_call` prices the call at, or ``None`` when it must price it."""
        return self.pricer.price_counts(plan.resolved, counts, at_ns)

    def record(
        self,
        plan: Plan,
        counts: Counts,
        priced: PricedCounts,
        duration_s: float | None,
        error: bool,
        session: Any = None,
    ) -> tuple[float, ...]:
        """Count one priced call of *plan* (what :meth:`Recorder.record` counts); *session*: :func:`session_of`.

        Returns:
            The amounts as floats (total, input, output, cache read, cache write, request).
        """
        return record_priced(self.recorder, plan, counts, priced, duration_s, error, session)


class CostSpanProcessor(SpanProcessor):
    """Prices GenAI spans and hands them, with ``llm.cost.*`` attributes, to an inner processor.

    Example::

        provider.add_span_processor(CostSpanProcessor(BatchSpanProcessor(OTLPSpanExporter())))
    """

    def __init__(
        self,
        inner: SpanProcessor | None = None,
        *,
        pricer: Pricer | None = None,
        recorder: Recorder | None = None,
        stamp_context: bool = True,
    ) -> None:
        """Create the processor.

        Args:
            inner: the processor that receives every span (priced ones rebuilt); may be ``None``
                when only metrics are wanted.
            pricer: the pricer; default the built-in catalog (loaded on the first priced span).
            recorder: where metrics are counted; default a private :class:`Recorder`.
            stamp_context: copy session, user and properties from baggage onto spans at start.
        """
        self.inner = inner
        self._pricer = pricer
        self.recorder = recorder if recorder is not None else Recorder()
        self._dimensions = self.recorder.dimensions
        self.stamp_context = stamp_context
        self._logged: set[str] = set()
        self._fast: FastPath | None = None

    stamps_covered = True
    """Marks spans that start inside one of our calls with ``llm.cost.covered_by`` (see :mod:`otel_llmcost._state`)."""

    fast_path = True
    """Price the usual span through :class:`FastPath` (the general path gives the same result)."""

    @property
    def pricer(self) -> Pricer:
        """The pricer in use (the default one is created on first use)."""
        if self._pricer is None:
            self._pricer = default_pricer()
        return self._pricer

    def _log_once(self, what: str, exc: BaseException) -> None:
        if what not in self._logged:
            self._logged.add(what)
            _log.warning(
                "otel-llmcost: %s failed (%s: %s); counted in llm_cost_spans_skipped_total",
                what,
                type(exc).__name__,
                exc,
            )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Mark a span that starts inside one of our calls as covered; stamp baggage's session, user, properties."""
        ctx = parent_context if parent_context is not None else get_current()
        if ctx:  # an empty context (no parent span, no baggage, no call of ours) has nothing for us
            owner = ctx.get(IN_LLM_CALL)
            if owner:
                # another instrumentation's span inside one of our priced calls: ours carries the cost
                try:
                    stamp_covered(span, owner, ctx)
                except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
                    self.recorder.record_skip("internal_error")
                    self._log_once("marking a covered span", exc)
            if self.stamp_context:
                try:
                    values = current_attributes(ctx)
                    if values:
                        existing = span_attributes(span)
                        missing = {k: v for k, v in values.items() if k not in existing}
                        if missing:
                            span.set_attributes(missing)
                except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
                    self.recorder.record_skip("context_error")
                    self._log_once("stamping session context", exc)
        if self.inner is not None:
            self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Price the span if it is an unpriced, uncovered GenAI call, count it, and hand it on."""
        out = span
        try:
            attrs = span_attributes(span)
            if _COST_STATUS not in attrs and _COST_TOTAL not in attrs and _COVERED_BY not in attrs:
                out = self._price(span, attrs)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
            self.recorder.record_skip("internal_error")
            self._log_once("pricing a span", exc)
        if self.inner is not None:
            self.inner.on_end(out)

    def _price(self, span: ReadableSpan, attrs: Mapping[str, Any]) -> ReadableSpan:
        """Return the span priced, or itself when it is not a GenAI call."""
        # the fields behind the public properties (read for every span: a property costs ~70 ns)
        start, end = span._start_time, span._end_time
        duration = (end - start) / 1e9 if start is not None and end is not None else None
        if self.fast_path:
            fast = self._fast
            if fast is None or fast.pricer is not self._pricer or fast.recorder is not self.recorder:
                fast = self._fast = FastPath(self.pricer, self.recorder)
            merged = fast.end(attrs, start, duration, span._status.status_code is _ERROR)
            if merged is not None:
                return _rebuild(span, merged)
        call = extract_call(attrs, property_keys=self._dimensions)
        if call is None:
            return span
        cost = price_call(self.pricer, call, start)
        if cost.status == STATUS_INVALID:
            self.recorder.record_skip(cost.reason_code or "invalid_usage")
        error = call.error_type is not None or span.status.status_code is _ERROR
        self.recorder.record(call, cost, duration_s=duration, error=error)
        merged = dict(attrs)
        add_cost_attributes(merged, cost)
        return _rebuild(span, merged)

    def shutdown(self) -> None:
        """Shut the inner processor down."""
        if self.inner is not None:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner processor."""
        return self.inner.force_flush(timeout_millis) if self.inner is not None else True


def _rebuild(span: ReadableSpan, attributes: dict[str, Any]) -> ReadableSpan:
    """Return a copy of the ended span that carries *attributes* instead of its own.

    The copy shares everything else (context, events, links, status, timing, resource) with the
    original, which the SDK never changes once ended. Copying the instance dictionary keeps every
    field the SDK has or will add, at a fraction of the constructor's cost.
    """
    clone = object.__new__(type(span))
    fields = span.__dict__.copy()
    dropped = getattr(fields.get("_attributes"), "dropped", 0)
    if dropped:
        bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
        bounded.dropped = dropped
        fields["_attributes"] = bounded
    else:
        fields["_attributes"] = attributes
    clone.__dict__ = fields
    return clone
