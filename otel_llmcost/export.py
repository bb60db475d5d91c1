"""Hands the recorder's series to OpenTelemetry metric readers (Prometheus, OTLP, in-memory).

The recorder aggregates on its own (see :mod:`otel_llmcost.metrics` for why); at collection time
these readers append its series, as OpenTelemetry ``Metric`` data, to whatever the meter
provider collected. Everything downstream (the Prometheus text format, OTLP encoding) is the
OpenTelemetry SDK's own.

The spend guard's series (:func:`guard_metrics`) ride along the same way: the per-user gauges
``llm_budget_user_utilization_ratio{budget,user}`` (capped) and
``llm_budget_users_over_threshold{budget,threshold}``, and the counters
``llm_budget_guard_breaches_total{budget,action}`` and ``llm_budget_guard_errors_total{policy,reason}``.
A reader reports the guard it was given, else the process's installed guard (``configure(budgets=...)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import semconv as sc
from .metrics import HistogramPoint, Recorder
from .version import __version__

if TYPE_CHECKING:
    from .budgets.guard import Guard

__all__ = [
    "InMemoryCostMetricReader",
    "PeriodicCostMetricReader",
    "PrometheusCostMetricReader",
    "cost_meter_provider",
    "guard_metrics",
    "recorder_metrics",
]

SCOPE = InstrumentationScope("otel_llmcost", __version__)
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def _sum(
    name: str, unit: str, description: str, points: list[tuple[dict[str, str], Any]], start: int, now: int
) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit=unit,
        data=Sum(
            data_points=[
                NumberDataPoint(
                    attributes=labels,
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    value=float(value) if isinstance(value, Decimal) else value,
                )
                for labels, value in points
            ],
            aggregation_temporality=_CUMULATIVE,
            is_monotonic=True,
        ),
    )


def _gauge(
    name: str, unit: str, description: str, points: list[tuple[dict[str, str], Any]], start: int, now: int
) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit=unit,
        data=Gauge(
            data_points=[
                NumberDataPoint(attributes=labels, start_time_unix_nano=start, time_unix_nano=now, value=value)
                for labels, value in points
            ]
        ),
    )


def _histogram(
    name: str, unit: str, description: str, points: list[tuple[dict[str, str], HistogramPoint]], start: int, now: int
) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit=unit,
        data=Histogram(
            data_points=[
                HistogramDataPoint(
                    attributes=labels,
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=h.count,
                    sum=h.total,
                    bucket_counts=list(h.counts),
                    explicit_bounds=list(h.bounds),
                    min=h.minimum,
                    max=h.maximum,
                )
                for labels, h in points
            ],
            aggregation_temporality=_CUMULATIVE,
        ),
    )


def recorder_metrics(recorder: Recorder, start_time_ns: int) -> list[Metric]:
    """Return the recorder's series as OpenTelemetry ``Metric`` data (cumulative since *start_time_ns*).

    Metrics without any series are left out, as the SDK does for instruments with no points.
    """
    snap = recorder.snapshot()
    now = time.time_ns()
    candidates: list[tuple[str, str, str, list[Any], Callable[..., Metric]]] = [
        (sc.METRIC_LLM_COST_USD, sc.METRIC_LLM_COST_USD_UNIT, "Money spent on LLM calls (USD).", snap.cost_usd, _sum),
        (
            sc.METRIC_LLM_REQUESTS,
            sc.METRIC_LLM_REQUESTS_UNIT,
            "LLM calls by outcome and cost status.",
            snap.requests,
            _sum,
        ),
        (sc.METRIC_LLM_TOKENS, sc.METRIC_LLM_TOKENS_UNIT, "Tokens used by LLM calls, by type.", snap.tokens, _sum),
        (
            sc.METRIC_LLM_COST_CACHE_SAVINGS_USD,
            sc.METRIC_LLM_COST_CACHE_SAVINGS_USD_UNIT,
            "What prompt caching saved: cache-read tokens x (input price - cache-read price) (USD; gross,"
            " the cache-write premium is counted apart).",
            snap.cache_savings,
            _sum,
        ),
        (
            sc.METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD,
            sc.METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD_UNIT,
            "What cache writes cost above the input price (USD); net cache savings = savings - premium.",
            snap.cache_write_premium,
            _sum,
        ),
        (
            sc.METRIC_LLM_SESSIONS,
            sc.METRIC_LLM_SESSIONS_UNIT,
            "Sessions started, counted the first time a session id is seen (approximate: a bounded window of"
            " recent ids per process; a forgotten id counts again, each process counts the sessions it sees).",
            snap.sessions,
            _sum,
        ),
        (
            sc.METRIC_LLM_REQUEST_COST_USD,
            sc.METRIC_LLM_REQUEST_COST_USD_UNIT,
            "Cost of one LLM call (USD).",
            snap.request_cost,
            _histogram,
        ),
        (
            sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
            sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE_UNIT,
            "Number of input and output tokens used.",
            snap.token_usage,
            _histogram,
        ),
        (
            sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
            sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION_UNIT,
            "GenAI operation duration.",
            snap.duration,
            _histogram,
        ),
        (
            sc.METRIC_LLM_COST_SPANS_SKIPPED,
            sc.METRIC_LLM_COST_SPANS_SKIPPED_UNIT,
            "GenAI spans not priced because their data was bad or pricing failed, by reason.",
            snap.skipped,
            _sum,
        ),
        (
            sc.METRIC_LLM_COST_DIMENSION_OVERFLOW,
            sc.METRIC_LLM_COST_DIMENSION_OVERFLOW_UNIT,
            "Label values folded into 'other' because a label reached its cap.",
            snap.overflow,
            _sum,
        ),
    ]
    return [
        build(name, unit, desc, points, start_time_ns, now) for name, unit, desc, points, build in candidates if points
    ]  # type: ignore[operator]


def guard_metrics(guard: Guard, start_time_ns: int) -> list[Metric]:
    """Return the spend guard's series as OpenTelemetry ``Metric`` data (counters cumulative).

    The per-user gauges are reported whenever the guard has per-user budgets (zeros included for
    the threshold counts); the counters once they have counted something.
    """
    now = time.time_ns()
    candidates: list[tuple[str, str, str, list[Any], Callable[..., Metric]]] = [
        (
            sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO,
            sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO_UNIT,
            "Spend / limit of the users closest to a per-user budget (at most a capped number of users).",
            guard.user_utilization(),
            _gauge,
        ),
        (
            sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD,
            sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD_UNIT,
            "Users of a per-user budget over each threshold in the current window (this process's count).",
            guard.users_over_threshold(),
            _gauge,
        ),
        (
            sc.METRIC_LLM_BUDGET_GUARD_BREACHES,
            sc.METRIC_LLM_BUDGET_GUARD_BREACHES_UNIT,
            "Guard checks that found a budget or rate limit breached, by action (raise: refused, log: allowed).",
            guard.breaches(),
            _sum,
        ),
        (
            sc.METRIC_LLM_BUDGET_GUARD_ERRORS,
            sc.METRIC_LLM_BUDGET_GUARD_ERRORS_UNIT,
            "Guard checks that could not use the guard state, by failure policy and reason.",
            guard.errors(),
            _sum,
        ),
    ]
    return [
        build(name, unit, desc, points, start_time_ns, now) for name, unit, desc, points, build in candidates if points
    ]  # type: ignore[operator]


def _merge(metrics_data: MetricsData, extra: list[Metric], resource: Resource) -> MetricsData:
    if not extra:
        return metrics_data
    ours = ScopeMetrics(scope=SCOPE, metrics=extra, schema_url="")
    if not metrics_data.resource_metrics:
        return MetricsData(resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[ours], schema_url="")])
    first, *rest = metrics_data.resource_metrics
    merged = ResourceMetrics(
        resource=first.resource, scope_metrics=[*first.scope_metrics, ours], schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=[merged, *rest])


class _RecorderReader(MetricReader):
    """Mixin: every collection of this reader also carries the recorder's series (and the guard's).

    ``_receive_metrics`` is the SDK's documented hook for reader subclasses (the SDK has no
    MetricProducer yet). It runs only when the meter provider collected something, so
    :func:`cost_meter_provider` registers one always-present gauge.
    """

    _recorder: Recorder
    _resource: Resource
    _start_ns: int
    _guard: Guard | None

    def _attach(self, recorder: Recorder, resource: Resource | None, guard: Guard | None = None) -> None:
        self._recorder = recorder
        self._resource = resource if resource is not None else Resource.create()
        self._start_ns = time.time_ns()
        self._guard = guard

    def _extra(self) -> list[Metric]:
        extra = recorder_metrics(self._recorder, self._start_ns)
        guard = self._guard
        if guard is None:
            from .budgets.runtime import current_guard  # budgets load only when metrics are collected

            guard = current_guard()
        if guard is not None:
            extra += guard_metrics(guard, self._start_ns)
        return extra

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        merged = _merge(metrics_data, self._extra(), self._resource)
        super()._receive_metrics(merged, timeout_millis, **kwargs)  # type: ignore[safe-super]


def cost_meter_provider(
    readers: Sequence[MetricReader], *, catalog_version: Callable[[], str], resource: Resource | None = None
) -> MeterProvider:
    """Return a meter provider for cost metric readers, with the ``llm_cost_catalog_info`` gauge.

    Args:
        readers: the readers (:class:`PrometheusCostMetricReader` and friends).
        catalog_version: returns the price catalog version to report.
        resource: the resource of the metrics.
    """
    provider = MeterProvider(
        resource=resource if resource is not None else Resource.create(), metric_readers=list(readers)
    )
    meter = provider.get_meter(SCOPE.name, SCOPE.version)

    def info(_options: CallbackOptions) -> list[Observation]:
        return [Observation(1, {sc.LLM_COST_PRICING_VERSION: catalog_version()})]

    meter.create_observable_gauge(
        sc.METRIC_LLM_COST_CATALOG_INFO,
        callbacks=[info],
        unit=sc.METRIC_LLM_COST_CATALOG_INFO_UNIT,
        description="Version of the price catalog in use (always 1).",
    )
    return provider


class PrometheusCostMetricReader(_RecorderReader, PrometheusMetricReader):
    """A :class:`PrometheusMetricReader` that also exposes the recorder's and the guard's series.

    *guard*: the spend guard whose series to add; default the installed one, if any.
    """

    def __init__(
        self, recorder: Recorder, *, resource: Resource | None = None, guard: Guard | None = None, **kwargs: Any
    ) -> None:
        """Create the reader; *kwargs* go to :class:`PrometheusMetricReader`; *guard*: see the class."""
        PrometheusMetricReader.__init__(self, **kwargs)
        self._attach(recorder, resource, guard)


class InMemoryCostMetricReader(_RecorderReader, InMemoryMetricReader):
    """An :class:`InMemoryMetricReader` that also returns the recorder's and the guard's series (for tests).

    *guard*: the spend guard whose series to add; default the installed one, if any.
    """

    def __init__(
        self, recorder: Recorder, *, resource: Resource | None = None, guard: Guard | None = None, **kwargs: Any
    ) -> None:
        """Create the reader; *kwargs* go to :class:`InMemoryMetricReader`; *guard*: see the class."""
        InMemoryMetricReader.__init__(self, **kwargs)
        self._attach(recorder, resource, guard)


class PeriodicCostMetricReader(_RecorderReader, PeriodicExportingMetricReader):
    """A :class:`PeriodicExportingMetricReader` (e.g. OTLP) that also exports the recorder's series."""

    def __init__(
        self,
        recorder: Recorder,
        exporter: Any,
        *,
        resource: Resource | None = None,
        guard: Guard | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the reader; *exporter* and *kwargs* go to :class:`PeriodicExportingMetricReader`.

        *guard*: whose series to add (default the installed one).
        """
        self._attach(recorder, resource, guard)
        PeriodicExportingMetricReader.__init__(self, exporter, **kwargs)
