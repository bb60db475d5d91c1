"""Grafana dashboard JSON: panel specs and their rendering (schema version 39, Grafana 10 and 11).

A :class:`Panel` says what a panel shows and which question it answers; :func:`panel_json` turns
it into Grafana's JSON with the datasource as the ``${datasource}`` variable. Layout is a simple
flow: panels fill 24 columns left to right and wrap; a :class:`Row` starts a new band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DATASOURCE", "Panel", "Query", "Row", "layout", "panel_json"]

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
_GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel.

    Attributes:
        expr: the PromQL (Grafana variables allowed).
        legend: the legend template (``{{model}}``).
        instant: evaluate once at the end of the range (tables, bar gauges, stats of a total).
        table: return a table (label columns and a value) instead of time series.
    """

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass(frozen=True)
class Panel:
    """One dashboard panel.

    Attributes:
        title: the panel title.
        question: the question the panel answers (its description in Grafana).
        kind: the Grafana panel type: ``stat``, ``timeseries``, ``bargauge``, ``barchart``, ``table``, ``text``.
        queries: its queries (none for text panels).
        unit: the Grafana unit of the values.
        width: columns out of 24.
        height: grid rows.
        needs: the dimensions (labels) the panel groups or filters by; when one is not enabled the
            panel is replaced by a text panel saying how to enable it.
        empty_for_demo: why the panel has no data for ``otel-llmcost demo`` (``None``: it has data).
        text: the Markdown of a text panel.
        time_from: a panel-level relative time (``now/d``: today so far).
        interval: the minimum query interval (``1d`` for daily bars).
        options: panel options merged over the defaults of its kind.
        defaults: field config defaults merged over the unit.
        overrides: field config overrides.
        transformations: Grafana transformations.
        max_data_points: the panel's ``maxDataPoints`` (sets ``$__interval`` for instant queries).
    """

    title: str
    question: str
    kind: str
    queries: tuple[Query, ...] = ()
    unit: str = "currencyUSD"
    width: int = 12
    height: int = 8
    needs: tuple[str, ...] = ()
    empty_for_demo: str | None = None
    text: str = ""
    time_from: str | None = None
    interval: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[Mapping[str, Any], ...] = ()
    transformations: tuple[Mapping[str, Any], ...] = ()
    max_data_points: int | None = None


@dataclass(frozen=True)
class Row:
    """A collapsible section heading."""

    title: str


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


_LEGEND = {"displayMode": "table", "placement": "right", "showLegend": True}
_REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "stat": {
        "reduceOptions": _REDUCE_LAST,
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
    },
    "timeseries": {
        "legend": {**_LEGEND, "calcs": ["sum"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "bargauge": {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "reduceOptions": _REDUCE_LAST,
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    },
    "barchart": {
        "orientation": "vertical",
        "showValue": "never",
        "stacking": "none",
        "groupWidth": 0.7,
        "barWidth": 0.9,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    },
    "table": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
    "text": {"mode": "markdown", "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False}},
}
_KIND_CUSTOM: dict[str, dict[str, Any]] = {
    "timeseries": {
        "drawStyle": "bars",
        "fillOpacity": 80,
        "lineWidth": 1,
        "stacking": {"group": "A", "mode": "normal"},
        "showPoints": "never",
        "axisSoftMin": 0,
    },
    "barchart": {"fillOpacity": 80, "lineWidth": 1, "axisSoftMin": 0},
}


def _target(query: Query, ref: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "instant": query.instant,
        "range": not query.instant,
        "format": "table" if query.table else "time_series",
    }


def panel_json(panel: Panel, panel_id: int, grid: Mapping[str, int]) -> dict[str, Any]:
    """Return the Grafana JSON of *panel* at *grid* (``x``, ``y``, ``w``, ``h``)."""
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.question,
        "gridPos": dict(grid),
    }
    if panel.kind == "text":
        out["options"] = _merge(_KIND_OPTIONS["text"], {"content": panel.text})
        return out
    out["datasource"] = dict(DATASOURCE)
    out["targets"] = [_target(q, chr(ord("A") + n)) for n, q in enumerate(panel.queries)]
    defaults: dict[str, Any] = {"unit": panel.unit, "color": {"mode": "palette-classic"}}
    if panel.kind in _KIND_CUSTOM:
        defaults["custom"] = dict(_KIND_CUSTOM[panel.kind])
    out["fieldConfig"] = {"defaults": _merge(defaults, panel.defaults), "overrides": list(panel.overrides)}
    out["options"] = _merge(_KIND_OPTIONS[panel.kind], panel.options)
    if panel.transformations:
        out["transformations"] = list(panel.transformations)
    if panel.time_from:
        out["timeFrom"] = panel.time_from
        out["hideTimeOverride"] = False
    if panel.interval:
        out["interval"] = panel.interval
    if panel.max_data_points:
        out["maxDataPoints"] = panel.max_data_points
    return out


def layout(items: Sequence[Panel | Row], render: Any) -> list[dict[str, Any]]:
    """Place *items* on the grid and return their JSON; ``render(panel)`` gives the panel to place.

    Args:
        items: panels and rows in reading order.
        render: maps a panel spec to the spec actually drawn (e.g. a "not enabled" text panel).
    """
    out: list[dict[str, Any]] = []
    x = y = band = 0
    next_id = 1
    for item in items:
        if isinstance(item, Row):
            y += band
            x = band = 0
            out.append(
                {
                    "id": next_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"x": 0, "y": y, "w": _GRID_WIDTH, "h": 1},
                }
            )
            next_id += 1
            y += 1
            continue
        panel = render(item)
        if x + item.width > _GRID_WIDTH:
            y += band
            x = band = 0
        out.append(panel_json(panel, next_id, {"x": x, "y": y, "w": item.width, "h": item.height}))
        next_id += 1
        x += item.width
        band = max(band, item.height)
    return out
