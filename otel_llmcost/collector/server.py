"""``otel-llmcost collector``: receivers, pipeline, exporters and endpoints, wired from a config."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry, start_http_server

from .. import semconv as sc
from ..export import PrometheusCostMetricReader, cost_meter_provider
from ..metrics import Recorder
from ..pricing import Pricer
from .config import CollectorConfig, ExporterConfig
from .enrich import Deduplicator
from .pipeline import Exporter, Pipeline

__all__ = ["Collector", "DebugExporter", "run"]

_log = logging.getLogger("otel_llmcost.collector")


class DebugExporter:
    """Logs one line per priced batch (spans, LLM spans, money): the default when nothing else is set."""

    name = "debug"

    def __init__(self) -> None:
        """Create the exporter."""
        self.batches = 0

    def has_room(self) -> bool:
        """Always: it only logs."""
        return True

    def export(self, request: ExportTraceServiceRequest) -> None:
        """Log a summary of the batch."""
        self.batches += 1
        spans = total = 0
        money = Decimal(0)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    spans += 1
                    for kv in span.attributes:
                        if kv.key == sc.LLM_COST_TOTAL_USD:
                            total += 1
                            money += Decimal(repr(kv.value.double_value))
        _log.info("batch %d: %d spans, %d priced, $%s", self.batches, spans, total, money)

    def depth(self) -> int:
        """Nothing waits."""
        return 0

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Nothing to flush."""


def _exporter(config: ExporterConfig, pipeline_failure: Any, pipeline_drop: Any) -> Exporter:
    if config.kind == "debug":
        return DebugExporter()
    if config.kind == "file":
        from .exporters.file import FileExporter

        return FileExporter(str(config.path))
    from .exporters.disk_queue import DiskQueue
    from .exporters.otlp import OtlpForwarder

    queue = DiskQueue(Path(config.storage) / config.kind) if config.storage else None
    return OtlpForwarder(
        str(config.endpoint),
        protocol="grpc" if config.kind == "otlp" else "http",
        headers=config.headers,
        max_queue_batches=config.queue_size,
        queue=queue,
        on_failure=pipeline_failure,
        on_drop=pipeline_drop,
        insecure=config.insecure,
    )


class _Health(BaseHTTPRequestHandler):
    collector: Collector

    def do_GET(self) -> None:
        ok = self.path.rstrip("/") in ("", "/health", "/healthz")
        body = json.dumps(self.collector.status() if ok else {"error": "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Collector:
    """The running collector: start(), status(), stop()."""

    def __init__(self, config: CollectorConfig, *, pricer: Pricer | None = None) -> None:
        """Build everything the config names (nothing listens until :meth:`start`).

        Raises:
            ConfigError: a setting is invalid.
            CatalogError: the pricing overrides file is malformed.
        """
        self.config = config
        self.pricer = pricer or Pricer(overrides=config.pricing_overrides)
        self.recorder = Recorder(
            config.dimensions, max_values_per_dimension=config.max_dimension_values, max_sessions=config.max_sessions
        )
        self.pipeline = Pipeline(
            self.pricer,
            self.recorder,
            [],
            dedup=Deduplicator(config.dedup_window) if config.dedup_window else None,
        )
        metrics = self.pipeline.metrics
        self.pipeline.exporters = [_exporter(e, metrics.export_failed, metrics.drop) for e in config.exporters]
        self.receivers: list[Any] = []
        self.addresses: dict[str, tuple[str, int]] = {}
        self._servers: list[Any] = []
        self._meters: Any = None

    def _self_metrics(self, meter: Any) -> None:
        metrics = self.pipeline.metrics

        def spans(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(n, {sc.OUTCOME: name}) for name, n in dict(metrics.counts).items()]

        def dropped(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(n, {sc.REASON: reason}) for reason, n in dict(metrics.dropped).items()]

        def failures(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(n, {sc.EXPORTER: name}) for name, n in dict(metrics.export_failures).items()]

        def depth(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(n, {sc.EXPORTER: name}) for name, n in self.pipeline.queue_depth().items()]

        meter.create_observable_counter(sc.METRIC_LLM_COLLECTOR_SPANS, [spans], unit=sc.METRIC_LLM_COLLECTOR_SPANS_UNIT)
        meter.create_observable_counter(
            sc.METRIC_LLM_COLLECTOR_DROPPED, [dropped], unit=sc.METRIC_LLM_COLLECTOR_DROPPED_UNIT
        )
        meter.create_observable_counter(
            sc.METRIC_LLM_COLLECTOR_EXPORT_FAILURES, [failures], unit=sc.METRIC_LLM_COLLECTOR_EXPORT_FAILURES_UNIT
        )
        meter.create_observable_up_down_counter(
            sc.METRIC_LLM_COLLECTOR_QUEUE_DEPTH, [depth], unit=sc.METRIC_LLM_COLLECTOR_QUEUE_DEPTH_UNIT
        )

    def start(self) -> None:
        """Open the endpoints and start receiving."""
        from .receivers.grpc import GrpcReceiver
        from .receivers.http import HttpReceiver

        cfg = self.config
        if cfg.prometheus is not None:
            registry = CollectorRegistry(auto_describe=True)
            self._meters = cost_meter_provider(
                [PrometheusCostMetricReader(self.recorder, registry=registry)],
                catalog_version=lambda: self.pricer.catalog.version,
            )
            self._self_metrics(self._meters.get_meter("otel_llmcost.collector"))
            server, _ = start_http_server(cfg.prometheus[1], addr=cfg.prometheus[0], registry=registry)
            self._servers.append(server)
            self.addresses["prometheus"] = (cfg.prometheus[0], server.server_address[1])
        if cfg.health is not None:
            handler = type("Health", (_Health,), {"collector": self})
            health = ThreadingHTTPServer(cfg.health, handler)
            threading.Thread(target=health.serve_forever, daemon=True, name="llmcost-health").start()
            self._servers.append(health)
            self.addresses["health"] = (cfg.health[0], health.server_address[1])
        if cfg.grpc is not None:
            grpc_receiver = GrpcReceiver(
                self.pipeline, cfg.grpc.host, cfg.grpc.port, tls=cfg.grpc.tls,
                bearer_token=cfg.grpc.bearer_token, max_message_bytes=cfg.grpc.max_bytes,
            )  # fmt: skip
            grpc_receiver.start()
            self.receivers.append(grpc_receiver)
            self.addresses["otlp_grpc"] = (cfg.grpc.host, grpc_receiver.port)
        if cfg.http is not None:
            http_receiver = HttpReceiver(
                self.pipeline, cfg.http.host, cfg.http.port, tls=cfg.http.tls,
                bearer_token=cfg.http.bearer_token, max_body_bytes=cfg.http.max_bytes,
            )  # fmt: skip
            http_receiver.start()
            self.receivers.append(http_receiver)
            self.addresses["otlp_http"] = (cfg.http.host, http_receiver.port)

    def status(self) -> dict[str, Any]:
        """Health: receivers up, queue depths, counters."""
        return {
            "status": "ok",
            "queue_depth": self.pipeline.queue_depth(),
            "spans": dict(self.pipeline.metrics.counts),
            "dropped": dict(self.pipeline.metrics.dropped),
            "catalog_version": self.pricer.catalog.version,
        }

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop receiving, deliver what can be delivered within *timeout_s*, close the endpoints."""
        for receiver in self.receivers:
            receiver.stop(min(timeout_s, 5.0))
        self.pipeline.shutdown(timeout_s)
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self._meters is not None:
            self._meters.shutdown()


def run(config: CollectorConfig) -> int:
    """Run a collector until SIGTERM or SIGINT; returns the exit code."""
    collector = Collector(config)
    collector.start()
    for name, (host, port) in collector.addresses.items():
        print(f"otel-llmcost collector: {name} on {host}:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("otel-llmcost collector: stopping, delivering queued batches", flush=True)
    collector.stop()
    return 0
