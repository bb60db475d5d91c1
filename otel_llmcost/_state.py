"""Process-wide state shared by configure(), the span processor and our instrumentation.

- The recorder and pricer that instrumentation records into (configure() installs its own; without
  it, a private default so instrumented calls are still priced on their spans).
- The "one call, one cost" key. When our instrumentation wraps a call that another GenAI
  instrumentation also wraps, the other one's span is *covered*: our span carries the cost and the
  metrics, and the other span carries ``llm.cost.covered_by`` (our span's id), which tells the span
  processor and the collector, in this process or another, to pass it on unpriced and uncounted.
  A covered span is one that starts while our call is in progress (the other wrapper is inside
  ours: :data:`IN_LLM_CALL` is in its parent context, and a span processor stamps it at start, see
  :mod:`otel_llmcost.processor`) or the GenAI span that is current when our call starts (the other
  wrapper is outside ours: our call stamps it, as it is still open).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, create_key, get_current
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider

from . import semconv as sc
from .metrics import Recorder
from .pricing import Pricer, default_pricer

__all__ = [
    "IN_LLM_CALL",
    "CoveredSpanStamp",
    "configure_if_needed",
    "current_pricer",
    "current_recorder",
    "ensure_covered_stamp",
    "install",
    "span_hex",
    "stamp_covered",
]

IN_LLM_CALL = create_key("otel_llmcost.in_llm_call")
"""Context key set while one of our instrumented calls is in progress; its value is that call's span."""

_COVERED_BY = sc.LLM_COST_COVERED_BY
_lock = threading.Lock()
_stamped: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
_recorder: Recorder | None = None
_pricer: Pricer | None = None


def install(recorder: Recorder, pricer: Pricer | None = None) -> None:
    """Make *recorder* (and *pricer*) the ones instrumented calls record into."""
    global _recorder, _pricer
    _recorder = recorder
    _pricer = pricer


def configure_if_needed() -> None:
    """Run :func:`otel_llmcost.configure` with its defaults unless something installed a recorder.

    This is the ``opentelemetry-instrument`` path: the distro has set up the SDK and then loads our
    instrumentors by entry point, with no call to configure(). Without this, their metrics would
    go to a private recorder that nothing exports. A bad setting is logged, never raised.
    """
    if _recorder is not None:
        return
    from ._configure import configure  # configure imports this module

    try:
        # the distro exports the spans already; ours only adds pricing and the metrics
        configure(instrument=False, export_traces=False)
    except ValueError as exc:
        logging.getLogger(__name__).warning("otel-llmcost: not configured: %s", exc)


def current_recorder() -> Recorder:
    """Return the recorder instrumented calls record into (a private default until configure())."""
    global _recorder
    if _recorder is None:
        with _lock:
            if _recorder is None:
                _recorder = Recorder()
    return _recorder


def current_pricer() -> Pricer:
    """Return the pricer instrumented calls are priced with."""
    return _pricer if _pricer is not None else default_pricer()


def span_hex(span: trace.Span) -> str:
    """Return a span's id as ``llm.cost.covered_by`` writes it: 16 lowercase hex digits."""
    return format(span.get_span_context().span_id, "016x")


def stamp_covered(span: Span, owner: Any, ctx: Context) -> None:
    """Mark *span*, starting inside one of our calls, as covered by that call's span.

    *owner* is the :data:`IN_LLM_CALL` value of the span's parent context *ctx*: our call's span
    (any other true value: the current span of *ctx*). A span that has the mark already keeps it.
    """
    ours = owner if isinstance(owner, trace.Span) else trace.get_current_span(ctx)
    attrs = getattr(getattr(span, "_attributes", None), "_dict", None)  # as _spans.span_attributes reads it
    if attrs is not None and _COVERED_BY in attrs:
        return
    if ours is not span:
        span.set_attribute(_COVERED_BY, span_hex(ours))


class CoveredSpanStamp(SpanProcessor):
    """Stamps ``llm.cost.covered_by`` on spans that start inside one of our calls; does nothing else.

    For a tracer provider our instrumentation uses without a
    :class:`~otel_llmcost.processor.CostSpanProcessor` (which stamps them too), so that a collector
    downstream does not price a call twice. Costs one context lookup for any other span.
    """

    stamps_covered = True
    """Stamps covered spans (what :func:`ensure_covered_stamp` looks for on a provider)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Stamp the span if it starts inside one of our calls."""
        ctx = parent_context if parent_context is not None else get_current()
        if ctx:
            owner = ctx.get(IN_LLM_CALL)
            if owner:
                try:
                    stamp_covered(span, owner, ctx)
                except Exception:  # telemetry never breaks the application
                    logging.getLogger(__name__).debug("otel-llmcost: stamping a covered span failed", exc_info=True)


def ensure_covered_stamp(provider: object) -> None:
    """Give an SDK tracer provider our instrumentation traces with a :class:`CoveredSpanStamp`.

    Once per provider, and not when one of its processors stamps covered spans already (a
    :class:`~otel_llmcost.processor.CostSpanProcessor` or a stamp). Other providers (the API's
    proxy or no-op provider, another SDK) are left alone.
    """
    if not isinstance(provider, TracerProvider):
        return
    with _lock:
        if provider in _stamped:
            return
        _stamped.add(provider)
        processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
        if any(getattr(p, "stamps_covered", False) for p in processors):
            return
        provider.add_span_processor(CoveredSpanStamp())
