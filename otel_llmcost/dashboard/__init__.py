"""The Grafana dashboard of otel-llmcost, generated from the metric definitions in code.

``otel-llmcost dashboard`` writes it; ``examples/grafana/otel-llmcost.json`` is its output for
the default dimensions, and the test suite fails when that file is stale. Metric names come from
a probe of the real export path (see :mod:`._names`), so the dashboard cannot ask for a series
the application does not export: every expression is checked, and an unknown metric, label or
variable is refused with its name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import config
from .. import semconv as sc
from ..budgets._promql import quote
from ._grafana import DATASOURCE, Panel, Row, layout
from ._names import DashboardError, MetricNames, label_name, probe_names
from ._panels import FILTER_DIMENSIONS, dashboard_items, filter_variables
from ._validate import validate_expression

__all__ = [
    "DIMENSIONS_VARIABLE",
    "FILTER_DIMENSIONS",
    "DashboardError",
    "MetricNames",
    "Panel",
    "Row",
    "build_dashboard",
    "dashboard_items",
    "default_dimensions",
    "label_name",
    "probe_names",
    "recorded_dimensions",
    "render_dashboard",
    "validate_expression",
    "variable_expression",
]

TITLE = "LLM costs (otel-llmcost)"
UID = "otel-llmcost"
DIMENSIONS_VARIABLE = "llmcost_dimensions"
"""A hidden constant variable recording the dimensions the dashboard was generated for."""
_SCHEMA_VERSION = 39


def default_dimensions() -> tuple[str, ...]:
    """The dimensions the application records by default: ``OTEL_LLMCOST_DIMENSIONS`` or its default."""
    return config.env_list(config.OTEL_LLMCOST_DIMENSIONS)


def _not_enabled(panel: Panel, missing: Sequence[str]) -> Panel:
    names = ", ".join(f"`{d}`" for d in missing)
    text = (
        f"### Not enabled: add {names} to OTEL_LLMCOST_DIMENSIONS\n\n"
        f"This panel groups by {names}, which the application does not record as a metric label.\n\n"
        f"1. Add {names} to `OTEL_LLMCOST_DIMENSIONS` (or `configure(dimensions=...)`).\n"
        "2. Set the value on the calls: `otel_llmcost.properties(feature=...)`, or the session's name:"
        " `otel_llmcost.session(id, name=...)` for `session_name`.\n"
        "3. Regenerate this dashboard: `otel-llmcost dashboard --dimensions ... --out otel-llmcost.json`."
    )
    return Panel(panel.title, panel.question, "text", text=text, width=panel.width, height=panel.height)


def _variables(names: MetricNames) -> list[dict[str, Any]]:
    requests = names.counter(sc.METRIC_LLM_REQUESTS)  # every call, priced or not
    out: list[dict[str, Any]] = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        }
    ]
    previous: list[str] = []
    for var in filter_variables(names.dimensions):
        # Each variable lists the values left by the ones before it (model within provider...).
        matchers = ",".join(f'{p}=~"${p}"' for p in previous)
        selector = f"{requests}{{{matchers}}}" if matchers else requests
        definition = f"label_values({selector}, {var})"
        out.append(
            {
                "type": "query",
                "name": var,
                "label": var.replace("_", " ").capitalize(),
                "datasource": dict(DATASOURCE),
                "query": definition,
                "definition": definition,
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "refresh": 2,
                "sort": 1,
                "regex": "",
                "hide": 0,
                "options": [],
            }
        )
        previous.append(var)
    dims = ",".join(names.dimensions)
    out.append(
        {
            "type": "constant",
            "name": DIMENSIONS_VARIABLE,
            "label": "Dimensions this dashboard was generated for",
            "query": dims,
            "current": {"text": dims, "value": dims},
            "hide": 2,
            "options": [{"selected": True, "text": dims, "value": dims}],
        }
    )
    return out


def variable_expression(definition: str) -> str:
    """The PromQL a ``label_values(selector, label)`` variable query amounts to (for checks and tests)."""
    inner = definition.removeprefix("label_values(").removesuffix(")")
    selector, _, label = inner.rpartition(",")
    return f"group by ({label.strip()}) ({selector.strip()})"


def build_dashboard(
    dimensions: Sequence[str] | None = None,
    *,
    names: MetricNames | None = None,
    items: Sequence[Panel | Row] | None = None,
) -> dict[str, Any]:
    """Return the dashboard as a JSON-ready dict.

    Args:
        dimensions: the dimensions the application records (default :func:`default_dimensions`).
        names: the exported series (default: probed from the export path for *dimensions*).
        items: rows and panels (default: :func:`dashboard_items` for *names*).

    Raises:
        DashboardError: an expression names a metric, label, function or variable that does not exist.
        ConfigError: a dimension is invalid.
    """
    dims = tuple(dimensions) if dimensions is not None else default_dimensions()
    if names is None:
        names = probe_names(dims)
    spec = list(items) if items is not None else dashboard_items(names)
    titles = [i.title for i in spec if isinstance(i, Panel)]
    if len(set(titles)) != len(titles):
        raise DashboardError(f"two panels have the same title: {sorted(t for t in titles if titles.count(t) > 1)}")
    variables = _variables(names)
    var_names = [v["name"] for v in variables]
    known = names.known()

    def render(panel: Panel) -> Panel:
        missing = [d for d in panel.needs if d not in dims]
        return _not_enabled(panel, missing) if missing else panel

    panels = layout(spec, render)
    for panel in panels:
        for target in panel.get("targets", ()):
            validate_expression(target["expr"], known, var_names, where=f"panel {panel['title']!r}")
    for var in variables:
        if var["type"] == "query":
            expr = variable_expression(var["definition"])
            validate_expression(expr, known, var_names, where=f"variable {var['name']!r}")
    dims_text = ", ".join(dims) or "(none)"
    filters = ", ".join(quote(v) for v in filter_variables(dims))
    return {
        "id": None,
        "uid": UID,
        "title": TITLE,
        "description": (
            "What LLM calls cost: spend, its drivers, sessions, tokens and caching, peaks, unpriced calls,"
            f" budgets, errors and latency. Dimensions: {dims_text}; filters: {filters}. GENERATED by"
            " `otel-llmcost dashboard` from the metric definitions of otel-llmcost: do not edit, regenerate."
        ),
        "tags": ["llm", "cost", "otel-llmcost", "opentelemetry"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "schemaVersion": _SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }


def render_dashboard(dashboard: dict[str, Any]) -> str:
    """Serialise the dashboard as the committed file has it (stable, indented, newline-terminated)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def recorded_dimensions(dashboard: dict[str, Any]) -> tuple[str, ...] | None:
    """The dimensions a generated dashboard was made for (its hidden constant variable), if any."""
    for var in dashboard.get("templating", {}).get("list", ()):
        if var.get("name") == DIMENSIONS_VARIABLE:
            return tuple(d for d in str(var.get("query", "")).split(",") if d)
    return None
