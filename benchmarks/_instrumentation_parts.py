"""Parts of the instrumentation benchmark: its floor arm, and its per-operation profile.

The floor: the SDK span alone, with our span's attributes.

What no instrumentation that ends one span per call can go below: ``tracer.start_span(name,
kind=CLIENT, attributes=<the attributes ours gives at the start>)``, the SDK call, then
``span.set_attributes(<the rest of ours>)`` and ``span.end()``, on the same provider and batch
processor as the instrumented arm. The attributes are those of a span our instrumentation ended
for the same request, so the floor carries exactly as many, of the same types.

For scale, another instrumentation on the same provider: the official OpenTelemetry OpenAI
instrumentation (``opentelemetry-instrumentation-genai-openai``), its metrics recorded into a
``MeterProvider`` of their own and its log records into a ``LoggerProvider`` with no processor
(message content off, its default) — alone, and with our :class:`CostSpanProcessor` on the
provider, the way a user of that instrumentation gets cost from us.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import sysconfig
from collections.abc import Callable
from typing import Any

import openai
import wrapt
from openai.resources.chat.completions import Completions
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OfficialInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_llmcost import CostSpanProcessor
from otel_llmcost import semconv as sc
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

from ._common import _PREFIXES

__all__ = ["OfficialArm", "SpanFloor", "print_per_op", "span_of_one_call"]

_WHERE_PREFIXES = (*_PREFIXES, sysconfig.get_paths()["stdlib"] + "/")

# What our instrumentation passes to start_span (the conventions' sampling-relevant attributes).
_AT_START = (
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)


def span_of_one_call(client: openai.OpenAI, request: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Make one instrumented call; return its span's name, start attributes and the others."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client.chat.completions.create(**request)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    start = {key: attrs.pop(key) for key in _AT_START if key in attrs}
    return span.name, start, attrs


class SpanFloor:
    """``Completions.create`` wrapped in a bare SDK span with our span's attributes; on and off like an arm."""

    def __init__(self, instr: Any, name: str, start: dict[str, Any], end: dict[str, Any]) -> None:
        """Use *instr*'s provider and batch processor; count the spans in *instr* so its check still holds."""
        self.instr = instr
        self.attributes = {**start, **end}
        tracer = instr.provider.get_tracer("benchmarks.floor")

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start)
            result = wrapped(*args, **kwargs)
            span.set_attributes(end)
            span.end()
            return result

        self._wrapper = wrapper

    def on(self) -> None:
        """Wrap the SDK method."""
        wrapt.wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", self._wrapper)

    def off(self, calls: int) -> None:
        """Unwrap it after *calls* calls, and flush their spans."""
        unwrap(Completions, "create")
        self.instr.calls += calls
        self.instr.batch.force_flush()


class OfficialArm:
    """The official OpenAI instrumentation on *instr*'s provider, with or without our processor; on and off like an arm."""

    def __init__(self, instr: Any, *, with_processor: bool) -> None:
        """Share *instr*'s provider and batch processor; count the spans in *instr* so its check still holds.

        With *with_processor*, a provider of its own carries :class:`CostSpanProcessor` (recording
        into *instr*'s recorder) around *instr*'s batch processor, as ``configure()`` sets it up.
        """
        self.instr = instr
        self.instrumentor = OfficialInstrumentor()
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        self.logger_provider = LoggerProvider()
        self.tracer_provider = instr.provider
        if with_processor:
            self.tracer_provider = TracerProvider()
            self.tracer_provider.add_span_processor(CostSpanProcessor(instr.batch, recorder=instr.recorder))

    def on(self) -> None:
        """Instrument the ``openai`` package."""
        self.instrumentor.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
        )

    def off(self, calls: int) -> None:
        """Uninstrument it after *calls* calls, and flush their spans."""
        self.instrumentor.uninstrument()
        self.instr.calls += calls
        self.instr.batch.force_flush()

    def close(self) -> None:
        """Shut the meter and logger providers down (the span processors belong to *instr*)."""
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


# --- profiles -------------------------------------------------------------------------------------


def _where(func: tuple[str, int, str]) -> str:
    where = pstats.func_std_string(func)
    for prefix in _WHERE_PREFIXES:
        where = where.replace(prefix, "")
    return where


def print_per_op(title: str, work: Callable[[], object], ops: int, unit: str, measured: float, top: int = 20) -> None:
    """Run *work* under cProfile and print the *top* functions by own time, in us per *unit*.

    *measured* is the same work's figure without the profiler, printed beside the profiled total
    for scale: the profiler's own cost per function call inflates small functions most.
    """
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values()) / ops * 1e6
    print(
        f"\n--- cProfile: {title} (top {top} by own time, in us per {unit}: {total:.1f} us under the profiler, "
        f"{measured:.1f} us without it) ---"
    )
    print(f"  {'own us':>7}  {'cum us':>7}  {'calls':>6}  function")
    for func, (_cc, nc, tt, ct, _callers) in sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]:
        print(f"  {tt / ops * 1e6:7.2f}  {ct / ops * 1e6:7.2f}  {nc / ops:6.2f}  {_where(func)}")
