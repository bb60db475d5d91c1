"""The collector's pipeline: receivers hand it OTLP trace batches; it prices, counts and forwards them.

One piece of plumbing around the processing step (:func:`~.enrich.enrich`): back-pressure when the
exporters cannot take more, drop counting by reason, error isolation. Receivers call
:meth:`Pipeline.submit` with a parsed request; the call returns once every exporter has accepted the
batch (an exporter with an on-disk queue has persisted it), so a receiver acknowledges only what
will be delivered.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..metrics import Recorder
from ..pricing import Pricer
from ..processor import FastPath
from .enrich import Deduplicator, EnrichStats, enrich

__all__ = ["Backpressure", "Exporter", "Pipeline", "SelfMetrics", "SubmitResult"]

_log = logging.getLogger(__name__)
# what the collector did with spans, each an outcome label of llm_collector_spans_total
_OUTCOMES = tuple(f.name for f in dataclasses.fields(EnrichStats))


class Backpressure(Exception):
    """The exporters are full: the client should retry later (HTTP 429/503, gRPC UNAVAILABLE)."""

    def __init__(self, retry_after_s: float = 1.0) -> None:
        """Create the signal, with how long the client should wait."""
        super().__init__(f"pipeline full; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class Exporter(Protocol):
    """Where priced batches go (OTLP forwarding, a file, memory)."""

    name: str

    def has_room(self) -> bool:
        """Whether one more batch can be accepted now."""

    def export(self, request: ExportTraceServiceRequest) -> None:
        """Accept one batch: queue it (persisting it first if the exporter is durable). Never blocks long."""

    def depth(self) -> int:
        """Batches waiting to be delivered."""

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Deliver what can be delivered within *timeout_s*, then stop."""


@dataclass(slots=True)
class SubmitResult:
    """What happened to one request: spans accepted, spans rejected and why (OTLP partial success)."""

    accepted: int
    rejected: int = 0
    message: str = ""


class SelfMetrics:
    """The collector's own counters: received, priced, unpriced, duplicates, covered, dropped by reason."""

    def __init__(self) -> None:
        """Start every counter at zero."""
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.export_failures: dict[str, int] = {}

    def add(self, stats: EnrichStats) -> None:
        """Count a processed batch."""
        with self._lock:
            for name in _OUTCOMES:
                self.counts[name] = self.counts.get(name, 0) + getattr(stats, name)

    def drop(self, reason: str, spans: int) -> None:
        """Count spans refused or lost, by reason (``backpressure``, ``too_large``, ``malformed``...)."""
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + spans

    def export_failed(self, exporter: str) -> None:
        """Count one failed export attempt of *exporter*."""
        with self._lock:
            self.export_failures[exporter] = self.export_failures.get(exporter, 0) + 1


def span_count(request: ExportTraceServiceRequest) -> int:
    """Return how many spans *request* holds."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class Pipeline:
    """Prices, counts and forwards OTLP trace batches; thread-safe."""

    def __init__(
        self,
        pricer: Pricer,
        recorder: Recorder,
        exporters: Sequence[Exporter],
        *,
        dedup: Deduplicator | None = None,
        retry_after_s: float = 1.0,
    ) -> None:
        """Create the pipeline.

        Args:
            pricer: the pricer (the same core as in-process).
            recorder: where money, requests and tokens are counted.
            exporters: where priced batches go.
            dedup: the redelivery window; ``None`` counts every delivery.
            retry_after_s: what back-pressure asks clients to wait.
        """
        self.pricer = pricer
        self.recorder = recorder
        self.exporters = list(exporters)
        self.dedup = dedup
        self.retry_after_s = retry_after_s
        self.metrics = SelfMetrics()
        self._fast = FastPath(pricer, recorder)  # what pricing learns of each kind of call, kept across batches
        # one batch at a time through pricing and into the exporters: the dedup window and the
        # order of batches in durable queues stay consistent (pricing holds the GIL anyway)
        self._lock = threading.Lock()

    def submit(self, request: ExportTraceServiceRequest) -> SubmitResult:
        """Price, count and hand *request* to every exporter.

        Raises:
            Backpressure: an exporter has no room; nothing was counted or queued.
        """
        spans = span_count(request)
        with self._lock:
            if not all(exporter.has_room() for exporter in self.exporters):
                self.metrics.drop("backpressure", spans)
                raise Backpressure(self.retry_after_s)
            try:
                if self._fast.pricer is not self.pricer or self._fast.recorder is not self.recorder:
                    self._fast = FastPath(self.pricer, self.recorder)
                stats = enrich(request, self.pricer, self.recorder, self.dedup, self._fast)
            except Exception as exc:  # noqa: BLE001 - one bad batch never stops the collector
                _log.warning("otel-llmcost collector: pricing a batch failed (%s: %s)", type(exc).__name__, exc)
                self.recorder.record_skip("internal_error")
                stats = EnrichStats(spans=spans)
            self.metrics.add(stats)
            for exporter in self.exporters:
                exporter.export(request)
        return SubmitResult(accepted=spans)

    def queue_depth(self) -> dict[str, int]:
        """Return the batches waiting in each exporter."""
        return {exporter.name: exporter.depth() for exporter in self.exporters}

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop every exporter, delivering what it can within *timeout_s*."""
        for exporter in self.exporters:
            exporter.shutdown(timeout_s)
