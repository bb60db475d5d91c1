"""Process-wide state shared by configure(), the span processor and our instrumentation.

- The recorder and pricer that instrumentation records into (configure() installs its own; without
  it, a private default so instrumented calls are still priced on their spans).
- The "one call, one cost" guard. When our instrumentation wraps a call that another GenAI
  instrumentation also wraps, the other one's span is *covered*: our span carries the cost and the
  metrics, and the span processor passes the covered span on untouched and uncounted. A covered
  span is one that starts while our call is in progress (the other wrapper is inside ours) or the
  GenAI span that is current when our call starts (the other wrapper is outside ours).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from opentelemetry.context import create_key

from .metrics import Recorder
from .pricing import Pricer, default_pricer

__all__ = [
    "IN_LLM_CALL",
    "configure_if_needed",
    "cover",
    "current_pricer",
    "current_recorder",
    "install",
    "is_covered",
]

IN_LLM_CALL = create_key("otel_llmcost.in_llm_call")
"""Context key set while one of our instrumented calls is in progress."""

_MAX_COVERED = 4096
_covered: OrderedDict[int, None] = OrderedDict()
_lock = threading.Lock()
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


def cover(span_id: int) -> None:
    """Mark another instrumentation's span of a call we price, so it is not priced again."""
    with _lock:
        _covered[span_id] = None
        if len(_covered) > _MAX_COVERED:
            _covered.popitem(last=False)


def is_covered(span_id: int) -> bool:
    """Return (and forget) whether *span_id* was covered by one of our calls."""
    if not _covered:
        return False
    with _lock:
        return _covered.pop(span_id, False) is None
