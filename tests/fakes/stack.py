"""Fresh in-memory pipelines around one instrumentor, for the instrumentation tests.

:func:`instrumented_stack` builds them for a block: a tracer provider whose spans reach an
:class:`InMemorySpanExporter` (through a :class:`CostSpanProcessor` if asked), a :class:`Recorder`
read by an :class:`InMemoryCostMetricReader`, the built-in catalog's :class:`Pricer`; it installs the
recorder and pricer for our instrumentation, instruments, and undoes all of it after. A test file
subclasses :class:`InstrumentedStack` with its fake server and its SDK's clients.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_llmcost import _state
from otel_llmcost.export import InMemoryCostMetricReader, cost_meter_provider
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer, default_pricer
from otel_llmcost.processor import CostSpanProcessor

__all__ = [
    "CATALOG_INFO",
    "InstrumentedStack",
    "installed",
    "instrumented_stack",
    "metric_points",
    "strings",
    "usd",
]

CATALOG_INFO = "llm.cost.catalog.info"
"""The catalog info gauge, which the cost metric readers always report."""

S = TypeVar("S", bound="InstrumentedStack")


def metric_points(reader: Any, skip: Collection[str] = ()) -> dict[str, list[Any]]:
    """{metric name: data points} of one collection from the metric *reader*, the names in *skip* left out."""
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in skip:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def strings(value: Any) -> Iterator[str]:
    """Every string in an attribute value or mapping: keys, values, items of sequences (``None`` left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings(v)
    elif value is not None:
        yield str(value)


def usd(value: object) -> Decimal:
    """The exact decimal a float attribute stands for (its shortest repr)."""
    assert isinstance(value, float), value
    return Decimal(repr(value))


@contextmanager
def installed(recorder: Recorder, pricer: Pricer | None = None) -> Iterator[None]:
    """Make our instrumentation record into *recorder* for the block (process-wide state), then restore it."""
    before = (_state._recorder, _state._pricer)
    _state.install(recorder, pricer)
    try:
        yield
    finally:
        _state._recorder, _state._pricer = before


@dataclass
class InstrumentedStack:
    """One instrumented process in memory: the instrumentor, its span pipeline and its cost metrics."""

    instrumentor: BaseInstrumentor
    exporter: InMemorySpanExporter
    provider: TracerProvider
    processor: CostSpanProcessor | None
    """The span processor that prices the spans (``None``: the spans go to the exporter unpriced)."""
    recorder: Recorder
    reader: InMemoryCostMetricReader
    pricer: Pricer

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        (span,) = self.spans()
        return span

    def metrics(self) -> dict[str, list[Any]]:
        """{metric name: data points} of one collection of the cost metrics (the catalog info gauge left out)."""
        return metric_points(self.reader, skip=(CATALOG_INFO,))


@contextmanager
def instrumented_stack(
    make: Callable[..., S],
    instrumentor: BaseInstrumentor,
    *,
    sampler: Sampler | None = None,
    price_spans: bool = False,
    install: bool = True,
    **instrument_kwargs: Any,
) -> Iterator[S]:
    """Instrument with *instrumentor* into fresh pipelines for the block; uninstrument and shut down after.

    Args:
        make: builds the test's stack from the :class:`InstrumentedStack` fields, passed by keyword
            (a subclass, or a ``functools.partial`` of one that names the other fields).
        sampler: the tracer provider's sampler (default: the SDK's).
        price_spans: spans go through a :class:`CostSpanProcessor` into the recorder on their way.
        install: the recorder and pricer are the ones our instrumentation records into
            (:func:`installed`) for the block.
        instrument_kwargs: passed to ``instrument()`` beside the tracer provider.
    """
    exporter = InMemorySpanExporter()
    recorder = Recorder()
    pricer = default_pricer()
    provider = TracerProvider(sampler=sampler)
    processor = None
    inner: SpanProcessor = SimpleSpanProcessor(exporter)
    if price_spans:
        inner = processor = CostSpanProcessor(inner, pricer=pricer, recorder=recorder)
    provider.add_span_processor(inner)
    reader = InMemoryCostMetricReader(recorder)
    meters = cost_meter_provider([reader], catalog_version=lambda: pricer.catalog.version)
    stack = make(
        instrumentor=instrumentor,
        exporter=exporter,
        provider=provider,
        processor=processor,
        recorder=recorder,
        reader=reader,
        pricer=pricer,
    )
    assert not instrumentor.is_instrumented_by_opentelemetry, "a previous test leaked its instrumentation"
    with installed(recorder, pricer) if install else nullcontext():
        instrumentor.instrument(tracer_provider=provider, **instrument_kwargs)
        try:
            yield stack
        finally:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            meters.shutdown()
            provider.shutdown()
