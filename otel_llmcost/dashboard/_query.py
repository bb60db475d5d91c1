"""The PromQL vocabulary of the dashboard: series names from the probe, filter matchers, helpers."""

from __future__ import annotations

from .. import semconv as sc
from ._names import MetricNames

__all__ = [
    "ENVIRONMENT",
    "FEATURE",
    "FILTER_DIMENSIONS",
    "METRIC_CACHE_SAVINGS",
    "METRIC_SESSIONS",
    "SESSION_NAME",
    "Names",
    "filter_variables",
    "inc",
    "pending",
]

# The conventional dimensions (the default of OTEL_LLMCOST_DIMENSIONS; a test keeps them equal):
# each is a label of the cost, request and token counters when enabled.
ENVIRONMENT = "environment"
FEATURE = "feature"
SESSION_NAME = "session_name"
FILTER_DIMENSIONS = (ENVIRONMENT, FEATURE)

# Metrics the recorder does not export yet. Their panels fill in by themselves once it does (the
# generator probes the recorder), until then each is a text panel saying what is missing.
METRIC_SESSIONS: str | None = getattr(sc, "METRIC_LLM_SESSIONS", None)
METRIC_CACHE_SAVINGS: str | None = getattr(sc, "METRIC_LLM_COST_CACHE_SAVINGS_USD", None)


def filter_variables(dimensions: tuple[str, ...]) -> tuple[str, ...]:
    """The template variables (= label names) money panels filter by, for the enabled dimensions."""
    return (sc.PROVIDER, sc.MODEL, *(d for d in FILTER_DIMENSIONS if d in dimensions))


class Names:
    """The PromQL names of one dashboard: series names and the filter matchers."""

    def __init__(self, names: MetricNames) -> None:
        self.cost = names.counter(sc.METRIC_LLM_COST_USD)
        self.requests = names.counter(sc.METRIC_LLM_REQUESTS)
        self.tokens = names.counter(sc.METRIC_LLM_TOKENS)
        self.request_cost = names.histogram(sc.METRIC_LLM_REQUEST_COST_USD)
        self.duration = names.histogram(sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
        self.skipped = names.counter(sc.METRIC_LLM_COST_SPANS_SKIPPED)
        self.overflow = names.counter(sc.METRIC_LLM_COST_DIMENSION_OVERFLOW)
        self.catalog = names.gauge(sc.METRIC_LLM_COST_CATALOG_INFO)
        self.sessions = self._optional(names, METRIC_SESSIONS)
        self.savings = self._optional(names, METRIC_CACHE_SAVINGS)
        self.filters = filter_variables(names.dimensions)

    @staticmethod
    def _optional(names: MetricNames, otel_name: str | None) -> str | None:
        return names.counter(otel_name) if otel_name is not None and names.exposes(otel_name) else None

    def f(self, *extra: str, only: tuple[str, ...] | None = None) -> str:
        """Label matchers of the template variables (all, or *only* those), plus *extra* matchers."""
        parts = [f'{v}=~"${v}"' for v in self.filters if only is None or v in only]
        return "{" + ",".join([*parts, *extra]) + "}"


def inc(series: str, window: str = "$__range") -> str:
    """``increase(series[window])``; the window defaults to the dashboard's range."""
    return f"increase({series}[{window}])"


def pending(what: str, metric: str, how: str) -> str:
    """The Markdown of a panel waiting for a metric the recorder does not export yet."""
    return (
        f"### Pending: {what} needs the `{metric}` metric\n\n"
        f"The recorder does not export it yet. {how}\n\n"
        "Regenerate the dashboard (`otel-llmcost dashboard`) once it does: this panel then fills in."
    )
