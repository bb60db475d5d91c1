"""The panels of the otel-llmcost dashboard, each with the question it answers.

Every metric name comes from :class:`~otel_llmcost.dashboard._names.MetricNames` (what the
recorder really exports) and every label from :mod:`otel_llmcost.semconv` or the budget rules;
nothing here spells a metric name. Money panels filter by the template variables provider,
model, environment and feature (the last two when those dimensions are enabled).
"""

from __future__ import annotations

from .. import semconv as sc
from ._grafana import Panel, Query, Row
from ._names import MetricNames, label_name
from ._panels_usage import usage_panels
from ._query import ENVIRONMENT, FEATURE, FILTER_DIMENSIONS, SESSION_NAME, Names, filter_variables, inc

__all__ = ["ENVIRONMENT", "FEATURE", "FILTER_DIMENSIONS", "SESSION_NAME", "dashboard_items", "filter_variables"]


def _money(n: Names) -> list[Panel | Row]:
    spend = f"sum({inc(n.cost + n.f())})"
    version = label_name(sc.LLM_COST_PRICING_VERSION)
    return [
        Row("Spend"),
        Panel(
            "Spend today",
            "What did we spend today (UTC, since midnight)? Ignores the dashboard's time range.",
            "stat",
            (Query(spend, "today", instant=True),),
            width=5,
            height=5,
            time_from="now/d",
        ),
        Panel(
            "Spend this month",
            "What did we spend this calendar month so far (UTC)? Needs Prometheus retention of a month.",
            "stat",
            (Query(spend, "this month", instant=True),),
            width=5,
            height=5,
            time_from="now/M",
        ),
        Panel(
            "Projected month-end spend",
            "At this month's pace so far, what will the whole month cost? (month-to-date / elapsed x month length)",
            "stat",
            (Query(f"{spend} / ${{__range_s}} * scalar(days_in_month()) * 86400", "projected", instant=True),),
            width=5,
            height=5,
            time_from="now/M",
        ),
        Panel(
            "Spend in the selected range",
            "What did the calls matching the filters cost over the dashboard's time range?",
            "stat",
            (Query(spend, "selected range", instant=True),),
            width=5,
            height=5,
        ),
        Panel(
            "Price catalog",
            "Which price catalog version prices the calls (one value per version in use)?",
            "stat",
            (Query(f"count by ({version}) ({n.catalog})", "{{" + version + "}}", instant=True),),
            unit="none",
            width=4,
            height=5,
            options={"textMode": "name", "colorMode": "none"},
        ),
        Panel(
            "Daily spend",
            "How much did we spend each day (UTC)? Each bar is the 24 hours ending at its timestamp.",
            "timeseries",
            (Query(f"sum({inc(n.cost + n.f(), '$__interval')})", "spend"),),
            width=24,
            height=7,
            interval="1d",
            options={"legend": {"showLegend": False}},
        ),
    ]


def _drivers(n: Names) -> list[Panel | Row]:
    def over_time(title: str, question: str, by: str, legend: str, needs: tuple[str, ...] = ()) -> Panel:
        expr = f"sum by ({by}) ({inc(n.cost + n.f(), '$__interval')})"
        return Panel(title, question, "timeseries", (Query(expr, legend),), needs=needs, interval="5m")

    top_features = f"topk(10, sum by ({FEATURE}) ({inc(n.cost + n.f())}))"
    top_models = f"topk(10, sum by ({sc.PROVIDER}, {sc.MODEL}) ({inc(n.cost + n.f())}))"
    buckets = f"{n.request_cost}_bucket{n.f(only=(sc.PROVIDER, sc.MODEL))}"

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by (le, {sc.MODEL}) (rate({buckets}[$__rate_interval])))"

    return [
        Row("What drives the spend"),
        over_time(
            "Spend by model",
            "Which models does the money go to, and since when?",
            f"{sc.PROVIDER}, {sc.MODEL}",
            "{{provider}} {{model}}",
        ),
        over_time("Spend by provider", "Which providers does the money go to?", sc.PROVIDER, "{{provider}}"),
        over_time(
            "Spend by feature",
            "Which product features drive the spend (the `feature` property of the calls)?",
            FEATURE,
            "{{feature}}",
            (FEATURE,),
        ),
        over_time(
            "Spend by environment",
            "How is the spend split between environments (production, staging...)?",
            ENVIRONMENT,
            "{{environment}}",
            (ENVIRONMENT,),
        ),
        Panel(
            "Most expensive features",
            "Which features cost the most over the selected range (top 10)?",
            "bargauge",
            (Query(top_features, "{{feature}}", instant=True),),
            needs=(FEATURE,),
        ),
        Panel(
            "Most expensive models",
            "Which models cost the most over the selected range (top 10)?",
            "bargauge",
            (Query(top_models, "{{provider}} {{model}}", instant=True),),
        ),
        Panel(
            "Cost of one call (p50, p95) by model",
            "What does a typical call cost, and an expensive one, per model? (priced calls only)",
            "timeseries",
            (
                Query(quantile("0.5"), "p50 {{model}}"),
                Query(quantile("0.95"), "p95 {{model}}"),
            ),
            width=24,
            defaults={"custom": {"drawStyle": "line", "stacking": {"mode": "none"}, "fillOpacity": 0}},
            options={"legend": {"calcs": ["mean", "max"]}},
        ),
    ]


def _sessions(n: Names) -> list[Panel | Row]:
    per = f"sum by ({SESSION_NAME})"
    cost = f"{per} ({inc(n.cost + n.f())})"
    calls = f"{per} ({inc(n.requests + n.f())})"
    # llm_sessions_total has the dimensions only (no provider, model): only their filters apply.
    sessions = f"{per} ({inc(n.sessions + n.f(only=FILTER_DIMENSIONS))})"
    return [
        Row("Sessions"),
        Panel(
            "Spend by session type",
            "Which kinds of session (the name given to otel_llmcost.session) cost the most in the selected range?",
            "bargauge",
            (Query(cost, "{{session_name}}", instant=True),),
            width=8,
            needs=(SESSION_NAME,),
        ),
        Panel(
            "Average cost per call by session type",
            "What does one LLM call cost on average in each kind of session? (all calls, unpriced ones included)",
            "bargauge",
            (Query(f"{cost} / {calls}", "{{session_name}}", instant=True),),
            width=8,
            needs=(SESSION_NAME,),
        ),
        Panel(
            "Calls by session type",
            "How many LLM calls does each kind of session make in the selected range?",
            "bargauge",
            (Query(calls, "{{session_name}}", instant=True),),
            unit="short",
            width=8,
            needs=(SESSION_NAME,),
        ),
        Panel(
            "Average cost per session by session type",
            "What does one session of each kind cost on average? (spend / sessions started in the range;"
            " a session is counted once per process, at its first call)",
            "bargauge",
            (Query(f"{cost} / {sessions}", "{{session_name}}", instant=True),),
            width=8,
            needs=(SESSION_NAME,),
        ),
        Panel(
            "Calls per session by session type",
            "How many LLM calls does one session of each kind make on average?",
            "bargauge",
            (Query(f"{calls} / {sessions}", "{{session_name}}", instant=True),),
            unit="short",
            width=8,
            needs=(SESSION_NAME,),
        ),
        Panel(
            "Sessions by session type",
            "How many sessions of each kind started in the selected range?",
            "bargauge",
            (Query(sessions, "{{session_name}}", instant=True),),
            unit="short",
            width=8,
            needs=(SESSION_NAME,),
        ),
    ]


def dashboard_items(names: MetricNames) -> list[Panel | Row]:
    """Return the dashboard's rows and panels, in reading order, for the exported *names*."""
    n = Names(names)
    return [
        *_money(n),
        *_drivers(n),
        *_sessions(n),
        *usage_panels(n),
    ]
