"""The PromQL vocabulary of the dashboard: series names from the probe, filter matchers, helpers."""

from __future__ import annotations

from .. import semconv as sc
from ._names import MetricNames

__all__ = [
    "ENVIRONMENT",
    "FEATURE",
    "FILTER_DIMENSIONS",
    "SESSION_NAME",
    "Names",
    "filter_variables",
    "inc",
]

# The conventional dimensions (the default of OTEL_LLMCOST_DIMENSIONS; a test keeps them equal):
# each is a label of the cost, request and token counters when enabled.
ENVIRONMENT = "environment"
FEATURE = "feature"
SESSION_NAME = "session_name"
FILTER_DIMENSIONS = (ENVIRONMENT, FEATURE)


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
        self.sessions = names.counter(sc.METRIC_LLM_SESSIONS)
        self.savings = names.counter(sc.METRIC_LLM_COST_CACHE_SAVINGS_USD)
        self.premium = names.counter(sc.METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD)
        self.user_utilization = names.gauge(sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO)
        self.users_over = names.gauge(sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD)
        self.breaches = names.counter(sc.METRIC_LLM_BUDGET_GUARD_BREACHES)
        self.guard_errors = names.counter(sc.METRIC_LLM_BUDGET_GUARD_ERRORS)
        self.filters = filter_variables(names.dimensions)

    def f(self, *extra: str, only: tuple[str, ...] | None = None) -> str:
        """Label matchers of the template variables (all, or *only* those), plus *extra* matchers."""
        parts = [f'{v}=~"${v}"' for v in self.filters if only is None or v in only]
        return "{" + ",".join([*parts, *extra]) + "}"


def inc(series: str, window: str = "$__range") -> str:
    """``increase(series[window])``; the window defaults to the dashboard's range."""
    return f"increase({series}[{window}])"
