"""configure(): one call that makes an existing application report LLM costs."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, start_http_server

from . import _state, config
from .export import PeriodicCostMetricReader, PrometheusCostMetricReader, cost_meter_provider
from .instrumentation import INSTRUMENTORS, instrument_installed
from .metrics import Recorder
from .pricing import Pricer
from .pricing.providers import canonical_provider
from .processor import CostSpanProcessor

if TYPE_CHECKING:
    from .budgets.guard import Guard
    from .budgets.spec import BudgetsFile

__all__ = ["LLMCostSetup", "configure"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_current: LLMCostSetup | None = None


@dataclass
class LLMCostSetup:
    """What :func:`configure` set up; keep it to read the endpoint or to shut down cleanly.

    Attributes:
        processor: the span processor added to the tracer provider.
        recorder: the metrics recorder.
        tracer_provider: the tracer provider the processor is on.
        meter_provider: the meter provider holding the cost metric readers (not made global).
        prometheus_address: ``(host, port)`` of the /metrics endpoint, or ``None`` when off or failed.
        prometheus_error: why the endpoint could not start, if it could not.
        instrumentors: the SDK instrumentors configure() turned on.
        registry: the Prometheus registry behind the endpoint.
        guard: the spend guard built from the budgets file and installed for the process, if any.
    """

    processor: CostSpanProcessor
    recorder: Recorder
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry
    prometheus_address: tuple[str, int] | None = None
    prometheus_error: str | None = None
    instrumentors: list[Any] = field(default_factory=list)
    guard: Guard | None = None
    _server: Any = field(default=None, repr=False)

    def shutdown(self) -> None:
        """Flush and stop everything :func:`configure` started."""
        global _current
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        self.instrumentors = []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.meter_provider.shutdown()
        self.processor.force_flush()
        if self.guard is not None:
            from .budgets import runtime

            if runtime.current_guard() is self.guard:
                runtime.install_guard(None)
            self.guard = None
        with _lock:
            if _current is self:
                _current = None


def _otlp_wanted(signal: str) -> bool:
    env = os.environ
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def _otlp_grpc(signal: str) -> bool:
    env = os.environ
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    )
    if protocol not in ("grpc", "http/protobuf"):
        raise config.ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "expected grpc or http/protobuf")
    return protocol == "grpc"


def _otlp_span_processor() -> SpanProcessor:
    if _otlp_grpc("TRACES"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return BatchSpanProcessor(GrpcSpanExporter())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return BatchSpanProcessor(HttpSpanExporter())


def _otlp_metric_exporter() -> Any:
    if _otlp_grpc("METRICS"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        return GrpcMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    return HttpMetricExporter()


def _sdks(instrument: bool | Sequence[str] | None) -> list[str]:
    if instrument is None:
        raw = config.env_str(config.OTEL_LLMCOST_INSTRUMENT).strip().lower()
        instrument = (
            True if raw == "all" else False if raw == "none" else [s.strip() for s in raw.split(",") if s.strip()]
        )
    if instrument is True:
        return list(INSTRUMENTORS)
    if instrument is False:
        return []
    return list(instrument)


def _catalog_labels(pricer: Pricer) -> Callable[[str | None, str | None], tuple[str | None, str | None]]:
    """The guard's label resolver: a call's provider and model as the metric labels spell them."""

    def resolve(provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        cost = pricer.price(provider or "", model or "", None)
        return cost.provider or canonical_provider(provider), cost.model

    return resolve


def _load_guard(
    budgets: str | Path | BudgetsFile | None,
    redis_url: str | None,
    failure_policy: str | None,
) -> tuple[BudgetsFile | None, dict[str, Any]]:
    """Load the budgets file and the guard's settings (argument, then environment); nothing started yet."""
    from .budgets.spec import BudgetsFile, load_budgets

    if budgets is None:
        budgets = config.env_str(config.OTEL_LLMCOST_BUDGETS) or None
    if budgets is None:
        return None, {}
    loaded = budgets if isinstance(budgets, BudgetsFile) else load_budgets(budgets)  # BudgetsError: file, line, key
    policy = (failure_policy or config.env_str(config.OTEL_LLMCOST_GUARD_FAILURE_POLICY)).strip().lower()
    if policy not in ("open", "closed"):
        key = "guard_failure_policy" if failure_policy else config.OTEL_LLMCOST_GUARD_FAILURE_POLICY.name
        raise config.ConfigError(key, policy, "expected open or closed")
    url = redis_url if redis_url is not None else config.env_str(config.OTEL_LLMCOST_BUDGETS_REDIS_URL)
    return loaded, {"failure_policy": policy, "redis_url": url}


def _build_guard(loaded: BudgetsFile, settings: dict[str, Any], pricer: Pricer) -> Guard:
    from .budgets.guard import Guard

    state = None
    if settings["redis_url"]:
        from .budgets.redis_state import RedisState

        state = RedisState(url=settings["redis_url"])
    return Guard.from_budgets(
        loaded, state=state, failure_policy=settings["failure_policy"], labels=_catalog_labels(pricer)
    )


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    service_name: str | None = None,
    prometheus_port: int | None = None,
    prometheus_host: str | None = None,
    dimensions: Sequence[str] | None = None,
    max_dimension_values: int | None = None,
    max_sessions: int | None = None,
    pricer: Pricer | None = None,
    pricing_overrides: str | Path | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    instrument: bool | Sequence[str] | None = None,
    export_traces: bool = True,
    budgets: str | Path | BudgetsFile | None = None,
    budgets_redis_url: str | None = None,
    guard_failure_policy: str | None = None,
) -> LLMCostSetup:
    """Make this process report LLM costs: priced spans, cost metrics, a Prometheus endpoint.

    - Tracer provider: *tracer_provider*, else the global one if the application already set an
      SDK provider, else a new one that becomes global. The :class:`CostSpanProcessor` is added to it.
    - OTLP: when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_/_METRICS_ENDPOINT``)
      variables are set, priced spans and cost metrics are exported by OTLP too
      (``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``, the default, or ``grpc``).
    - Prometheus: ``/metrics`` on *prometheus_host*:*prometheus_port* (env
      ``OTEL_LLMCOST_PROMETHEUS_HOST``/``_PORT``, default 127.0.0.1:9464; port 0 turns it off).
      A port already in use is logged and reported in the result; it never stops the application.
    - Spend guards: with a budgets file (*budgets*, env ``OTEL_LLMCOST_BUDGETS``), every
      instrumented call is checked before it is sent against the file's budgets that have an
      ``action`` and its rate limits (``BudgetExceededError`` when refused), and the guard's
      metrics join the others. The file's ``dimensions`` are the metric labels unless *dimensions*
      is given, so its rules and this process agree.

    Calling it again returns the first setup unchanged.

    Args:
        tracer_provider: the provider to add the processor to.
        service_name: ``service.name`` of the resource for a new provider.
        prometheus_port: port of the /metrics endpoint.
        prometheus_host: listen address of the endpoint.
        dimensions: the metric label allow-list (env ``OTEL_LLMCOST_DIMENSIONS``).
        max_dimension_values: cap of distinct values per dimension (env ``OTEL_LLMCOST_MAX_DIMENSION_VALUES``).
        max_sessions: recent session ids remembered to count each session once (env
            ``OTEL_LLMCOST_MAX_SESSIONS``, default 100,000).
        pricer: the pricer to use; default the built-in catalog.
        pricing_overrides: a pricing overrides file applied over the built-in catalog (env
            ``OTEL_LLMCOST_PRICING_OVERRIDES``); ignored when *pricer* is given.
        span_processors: processors (e.g. ``BatchSpanProcessor(your_exporter)``) that receive every
            span with its cost attributes, in addition to the OTLP exporter.
        instrument: which installed provider SDKs to instrument: ``True`` all, ``False`` none, or
            names (``openai``, ``anthropic``, ``google.genai``, ``botocore``); env ``OTEL_LLMCOST_INSTRUMENT``.
        export_traces: export priced spans by OTLP when the OTLP variables are set. ``False`` when
            something else (e.g. the ``opentelemetry-instrument`` distro) already exports the spans.
        budgets: a budgets file (path, or one loaded with ``otel_llmcost.budgets.load_budgets``)
            whose guards to enforce (env ``OTEL_LLMCOST_BUDGETS``); ``None``: no guard.
        budgets_redis_url: Redis URL where the guard's spend is shared by every process using it
            (env ``OTEL_LLMCOST_BUDGETS_REDIS_URL``); unset: this process's memory.
        guard_failure_policy: ``open`` (default) or ``closed``: whether calls go ahead or are
            refused while Redis is unreachable (env ``OTEL_LLMCOST_GUARD_FAILURE_POLICY``).

    Returns:
        The :class:`LLMCostSetup`.

    Raises:
        ConfigError: a setting is invalid (named with its value); a bad budgets file raises its
            subclass ``BudgetsError`` naming the file, line and key.
    """
    global _current
    with _lock:
        if _current is not None:
            return _current
        port = (
            prometheus_port
            if prometheus_port is not None
            else config.env_int(config.OTEL_LLMCOST_PROMETHEUS_PORT, maximum=65535)
        )
        if not 0 <= port <= 65535:
            raise config.ConfigError("prometheus_port", port, "expected a port from 0 to 65535")
        host = prometheus_host or config.env_str(config.OTEL_LLMCOST_PROMETHEUS_HOST)
        loaded, guard_settings = _load_guard(budgets, budgets_redis_url, guard_failure_policy)
        if dimensions is not None:
            dims = tuple(dimensions)
        elif loaded is not None:  # its dimensions default to the environment's
            dims = loaded.dimensions
        else:
            dims = config.env_list(config.OTEL_LLMCOST_DIMENSIONS)
        cap = (
            max_dimension_values
            if max_dimension_values is not None
            else config.env_int(config.OTEL_LLMCOST_MAX_DIMENSION_VALUES, minimum=1)
        )
        sessions = (
            max_sessions if max_sessions is not None else config.env_int(config.OTEL_LLMCOST_MAX_SESSIONS, minimum=1)
        )
        recorder = Recorder(dims, max_values_per_dimension=cap, max_sessions=sessions)
        if pricer is None and pricing_overrides is not None:
            pricer = Pricer(overrides=pricing_overrides)

        resource = Resource.create({"service.name": service_name} if service_name else {})
        provider = tracer_provider
        if provider is None:
            existing = trace.get_tracer_provider()
            if isinstance(existing, TracerProvider):
                provider = existing
            else:
                provider = TracerProvider(resource=resource)
                trace.set_tracer_provider(provider)
        inners = list(span_processors)
        if export_traces and _otlp_wanted("TRACES"):
            inners.append(_otlp_span_processor())
        inner: SpanProcessor | None = None
        if len(inners) == 1:
            inner = inners[0]
        elif inners:
            fan_out = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
            for each in inners:
                fan_out.add_span_processor(each)
            inner = fan_out
        processor = CostSpanProcessor(inner, pricer=pricer, recorder=recorder)
        guard = _build_guard(loaded, guard_settings, processor.pricer) if loaded is not None else None
        _state.install(recorder, pricer)
        provider.add_span_processor(processor)

        registry = CollectorRegistry(auto_describe=True)
        readers: list[MetricReader] = [
            PrometheusCostMetricReader(recorder, resource=resource, registry=registry, guard=guard)
        ]
        if _otlp_wanted("METRICS"):
            readers.append(PeriodicCostMetricReader(recorder, _otlp_metric_exporter(), resource=resource, guard=guard))
        meter_provider = cost_meter_provider(
            readers, catalog_version=lambda: processor.pricer.catalog.version, resource=resource
        )

        setup = LLMCostSetup(processor, recorder, provider, meter_provider, registry, guard=guard)
        if guard is not None:
            from .budgets import runtime

            runtime.install_guard(guard)
        if port:
            try:
                server, _thread = start_http_server(port, addr=host, registry=registry)
                setup._server = server
                setup.prometheus_address = (host, server.server_address[1])
            except OSError as exc:
                setup.prometheus_error = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                _log.warning("otel-llmcost: Prometheus endpoint not started: %s", setup.prometheus_error)
        setup.instrumentors = instrument_installed(_sdks(instrument), tracer_provider=provider)
        _current = setup
        return setup
