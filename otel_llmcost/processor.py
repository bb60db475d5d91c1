"""CostSpanProcessor: prices GenAI spans on their way to the processor it wraps.

The SDK freezes a span's attributes before any processor's ``on_end`` runs, so a span that needs
a price is handed on as a rebuilt :class:`ReadableSpan` carrying its original attributes plus
the ``llm.cost.*`` ones. A span that already carries a cost (priced by our instrumentation or by
another hop) is passed through unchanged and not counted again. Nothing here raises into the
application: failures are logged once and counted in ``llm_cost_spans_skipped_total``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from ._spans import add_cost_attributes, cost_attributes, span_attributes
from ._state import IN_LLM_CALL, cover, is_covered
from .calls import LLMCall, extract_call, is_priced
from .context import current_attributes
from .metrics import Recorder
from .pricing import STATUS_INVALID, Cost, PriceOptions, Pricer, default_pricer, region_from_address

__all__ = ["CostSpanProcessor", "cost_attributes"]

_log = logging.getLogger(__name__)


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
    options = call.options
    if options is not None and options.region is None and call.server_address:
        options = dataclasses.replace(options, region=region_from_address(call.server_address))
    elif options is None and call.server_address and pricer.has_regional_prices:
        region = region_from_address(call.server_address)
        options = PriceOptions(region=region) if region else None
    return pricer.price(
        call.provider, call.model, call.usage, at_ns=at_ns, server_address=call.server_address, options=options
    )


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
        """Stamp session, user and custom properties from the context's baggage onto the span."""
        if get_value(IN_LLM_CALL, parent_context):
            # another instrumentation's span inside one of our priced calls: ours carries the cost
            cover(span.context.span_id)
        if self.stamp_context:
            try:
                values = current_attributes(parent_context)
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
        """Price the span if it is an unpriced GenAI call, count it, and hand it on."""
        out = span
        try:
            attrs = span_attributes(span)
            if not is_priced(attrs) and not is_covered(span.context.span_id):
                call = extract_call(attrs, property_keys=self._dimensions)
                if call is not None:
                    out = self._priced(span, attrs, call)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
            self.recorder.record_skip("internal_error")
            self._log_once("pricing a span", exc)
        if self.inner is not None:
            self.inner.on_end(out)

    def _priced(self, span: ReadableSpan, attrs: Mapping[str, Any], call: LLMCall) -> ReadableSpan:
        cost = price_call(self.pricer, call, span.start_time)
        if cost.status == STATUS_INVALID:
            self.recorder.record_skip(cost.reason_code or "invalid_usage")
        start, end = span.start_time, span.end_time
        duration = (end - start) / 1e9 if start is not None and end is not None else None
        error = call.error_type is not None or span.status.status_code is StatusCode.ERROR
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
    clone.__dict__.update(span.__dict__)
    dropped = span.dropped_attributes
    if dropped:
        bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
        bounded.dropped = dropped
        clone._attributes = bounded
    else:
        clone._attributes = attributes
    return clone
