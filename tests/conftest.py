"""Shared fixtures: a fixed test catalog, in-memory span and metric pipelines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost.export import InMemoryCostMetricReader, cost_meter_provider
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Catalog, Pricer, load_catalog
from otel_llmcost.processor import CostSpanProcessor

from .fakes.stack import CATALOG_INFO, metric_points

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture(scope="session")
def test_catalog() -> Catalog:
    return load_catalog(sorted((TESTDATA / "catalog").glob("*.yaml")))


@pytest.fixture()
def pricer(test_catalog: Catalog) -> Pricer:
    return Pricer(test_catalog)


class Pipeline:
    """A tracer provider whose spans go through CostSpanProcessor into memory, with a metric reader."""

    def __init__(self, pricer: Pricer, dimensions: tuple[str, ...] = ("feature", "environment"), cap: int = 50) -> None:
        self.exporter = InMemorySpanExporter()
        self.recorder = Recorder(dimensions, max_values_per_dimension=cap)
        self.processor = CostSpanProcessor(SimpleSpanProcessor(self.exporter), pricer=pricer, recorder=self.recorder)
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("test")
        self.reader = InMemoryCostMetricReader(self.recorder)
        self.meter_provider = cost_meter_provider([self.reader], catalog_version=lambda: pricer.catalog.version)

    def spans(self):  # type: ignore[no-untyped-def]
        return list(self.exporter.get_finished_spans())

    def metrics(self, *, with_info: bool = False) -> dict[str, list]:  # type: ignore[type-arg]
        """Return {metric name: [data points]} from one collection (the catalog info gauge left out)."""
        return metric_points(self.reader, skip=() if with_info else (CATALOG_INFO,))

    def close(self) -> None:
        self.meter_provider.shutdown()
        self.provider.shutdown()


@pytest.fixture()
def pipeline(pricer: Pricer) -> Iterator[Pipeline]:
    p = Pipeline(pricer)
    yield p
    p.close()
