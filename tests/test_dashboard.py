"""The dashboard generator: names from code, refusals with the name, "not enabled" panels, the committed JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from otel_llmcost import config
from otel_llmcost import semconv as sc
from otel_llmcost.budgets._promql import SPEND_RECORD
from otel_llmcost.budgets.spec import METRIC_BUDGET_LIMIT_USD
from otel_llmcost.dashboard import (
    DIMENSIONS_VARIABLE,
    DashboardError,
    Panel,
    build_dashboard,
    dashboard_items,
    probe_names,
    recorded_dimensions,
    render_dashboard,
    validate_expression,
)
from otel_llmcost.dashboard._grafana import Query
from otel_llmcost.dashboard._panels import ENVIRONMENT, FEATURE, SESSION_NAME

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "examples" / "grafana" / "otel-llmcost.json"
DEFAULT_DIMS = tuple(config.OTEL_LLMCOST_DIMENSIONS.default.split(","))


def targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", ())]


@pytest.fixture(scope="module")
def default_dashboard() -> dict[str, Any]:
    return build_dashboard(DEFAULT_DIMS)


def test_the_conventional_dimensions_are_the_default_allow_list() -> None:
    assert {ENVIRONMENT, FEATURE, SESSION_NAME} == set(DEFAULT_DIMS)


def test_names_come_from_the_export_path() -> None:
    names = probe_names(DEFAULT_DIMS)
    # What the OpenTelemetry Prometheus exporter writes for our instruments (see README "What it writes").
    assert names.counter(sc.METRIC_LLM_COST_USD) == "llm_cost_usd_total"
    assert names.counter(sc.METRIC_LLM_REQUESTS) == "llm_requests_total"
    assert names.histogram(sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION) == "gen_ai_client_operation_duration_seconds"
    known = names.known()
    assert {sc.STATUS, sc.COST_STATUS, *DEFAULT_DIMS} <= known["llm_requests_total"]
    assert SPEND_RECORD in known and METRIC_BUDGET_LIMIT_USD in known
    with pytest.raises(DashboardError, match="is a counter, not a histogram"):
        names.histogram(sc.METRIC_LLM_COST_USD)


def test_every_query_uses_only_exported_series(default_dashboard: dict[str, Any]) -> None:
    known = probe_names(DEFAULT_DIMS).known()
    variables = [v["name"] for v in default_dashboard["templating"]["list"]]
    used: set[str] = set()
    for title, expr in targets(default_dashboard):
        used |= validate_expression(expr, known, variables, where=title)
    # the money, requests, tokens, histograms, skip/overflow counters, catalog and budget series
    assert {
        "llm_cost_usd_total",
        "llm_requests_total",
        "llm_tokens_total",
        SPEND_RECORD,
        METRIC_BUDGET_LIMIT_USD,
    } <= used
    assert used <= set(known)


def test_no_metric_name_is_spelled_in_the_generator() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "otel_llmcost" / "dashboard").glob("*.py"))
    spelled = set(re.findall(r"\b(?:llm|gen_ai)_[a-z_]+(?:_total|_bucket|_usd|_seconds)\b", source))
    # only the two pending metrics, in the text that says they do not exist yet
    assert spelled <= {"llm_sessions_total", "llm_cost_cache_savings_usd_total"}, spelled


@pytest.mark.parametrize(
    ("expr", "named"),
    [
        ("sum(increase(llm_cost_dollars_total[$__range]))", "llm_cost_dollars_total"),
        ("sum(llm_cost_usd_totl)", "llm_cost_usd_totl"),
        ('sum(llm_cost_usd_total{team="a"})', "'team'"),
        ('sum(rate(llm_requests_total{model=~"$team"}[5m]))', "$team"),
        ("sum by (team) (llm_cost_usd_total)", "'team'"),
        ("sumz(llm_cost_usd_total)", "'sumz'"),
    ],
)
def test_unknown_names_are_refused_with_the_name(expr: str, named: str) -> None:
    panel = Panel("Broken", "Does it refuse?", "stat", (Query(expr),))
    with pytest.raises(DashboardError) as info:
        build_dashboard(DEFAULT_DIMS, items=[panel])
    assert named in str(info.value) and "'Broken'" in str(info.value)


def test_a_label_of_a_dimension_that_is_not_enabled_is_refused() -> None:
    panel = Panel("By feature", "?", "stat", (Query('sum(llm_cost_usd_total{feature="search"})'),))
    build_dashboard(DEFAULT_DIMS, items=[panel])  # fine while feature is enabled
    with pytest.raises(DashboardError, match="no label 'feature'"):
        build_dashboard((ENVIRONMENT,), items=[panel])


def test_a_panel_of_a_dimension_not_enabled_says_how_to_enable_it() -> None:
    dashboard = build_dashboard((ENVIRONMENT,))
    by_title = {p["title"]: p for p in dashboard["panels"]}
    for title, dim in [
        ("Spend by feature", FEATURE),
        ("Most expensive features", FEATURE),
        ("Spend by session type", SESSION_NAME),
        ("Calls by session type", SESSION_NAME),
    ]:
        panel = by_title[title]
        assert panel["type"] == "text" and "targets" not in panel, title
        assert f"Not enabled: add `{dim}` to OTEL_LLMCOST_DIMENSIONS" in panel["options"]["content"]
    assert by_title["Spend by environment"]["type"] == "timeseries"
    # nothing else asks for the missing labels, and there is no variable for them
    assert not any(re.search(r"\b(feature|session_name)\b", expr) for _, expr in targets(dashboard))
    assert [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"] == [
        "provider",
        "model",
        "environment",
    ]
    assert recorded_dimensions(dashboard) == (ENVIRONMENT,)


def test_enabled_dimensions_get_panels_and_variables(default_dashboard: dict[str, Any]) -> None:
    by_title = {p["title"]: p for p in default_dashboard["panels"]}
    assert by_title["Spend by feature"]["type"] == "timeseries"
    assert "sum by (session_name)" in by_title["Calls by session type"]["targets"][0]["expr"]
    variables = {v["name"]: v for v in default_dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("provider", "model", ENVIRONMENT, FEATURE):
        var = variables[name]
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".*", name
        assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert variables[DIMENSIONS_VARIABLE]["hide"] == 2


def test_structure_is_a_valid_grafana_dashboard(default_dashboard: dict[str, Any]) -> None:
    d = default_dashboard
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36 and d["timezone"] == "utc"
    assert "GENERATED" in d["description"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    kinds = {"row", "stat", "timeseries", "bargauge", "barchart", "table", "text"}
    for p in d["panels"]:
        assert p["type"] in kinds, p["type"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["description"].strip(), f"{p['title']} does not say what it answers"
        if p["type"] != "text":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"], p["title"]
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
            for t in p["targets"]:
                assert t["datasource"] == p["datasource"] and t["expr"].strip()
    json.dumps(d)  # serialisable


def test_the_issue_s_questions_have_panels(default_dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in default_dashboard["panels"]}
    for title in [
        "Spend today",
        "Spend this month",
        "Projected month-end spend",
        "Daily spend",
        "Spend by model",
        "Spend by provider",
        "Spend by feature",
        "Spend by environment",
        "Most expensive features",
        "Spend by session type",
        "Spend by hour of day (UTC)",
        "Spend by day of week (UTC)",
        "Tokens by type",
        "Unpriced calls by model",
        "Cache savings",
        "Budget burn",
        "Error rate by model",
        "Latency (p50, p95) by model",
    ]:
        assert title in titles, title
    tokens = next(p for p in default_dashboard["panels"] if p["title"] == "Tokens by type")
    assert f"sum by ({sc.TOKEN_TYPE})" in tokens["targets"][0]["expr"]


def test_the_committed_dashboard_is_not_stale() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    dims = recorded_dimensions(json.loads(committed))
    assert dims == DEFAULT_DIMS, "the committed dashboard is for the default dimensions"
    assert render_dashboard(build_dashboard(dims)) == committed, (
        "examples/grafana/otel-llmcost.json is stale: run `otel-llmcost dashboard --out examples/grafana/otel-llmcost.json`"
    )


def test_session_savings_and_guard_series_come_from_the_export_path() -> None:
    names = probe_names(DEFAULT_DIMS)
    known = names.known()
    cost_labels = known[names.counter(sc.METRIC_LLM_COST_USD)]
    # the savings counters carry the cost counter's labels; the session counter the dimensions only
    assert known[names.counter(sc.METRIC_LLM_COST_CACHE_SAVINGS_USD)] == cost_labels
    assert known[names.counter(sc.METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD)] == cost_labels
    sessions = known[names.counter(sc.METRIC_LLM_SESSIONS)]
    assert set(DEFAULT_DIMS) <= sessions and not {sc.PROVIDER, sc.MODEL, sc.OPERATION} & sessions
    # the guard's series, from a real guard's export
    assert {sc.BUDGET, sc.USER} <= known[names.gauge(sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO)]
    assert {sc.BUDGET, sc.THRESHOLD} <= known[names.gauge(sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD)]
    assert {sc.BUDGET, sc.ACTION} <= known[names.counter(sc.METRIC_LLM_BUDGET_GUARD_BREACHES)]
    assert {sc.POLICY, sc.REASON} <= known[names.counter(sc.METRIC_LLM_BUDGET_GUARD_ERRORS)]


def test_session_savings_and_guard_panels_query_their_series(default_dashboard: dict[str, Any]) -> None:
    names = probe_names(DEFAULT_DIMS)
    by_title = {p["title"]: p for p in default_dashboard["panels"]}
    assert not any("Pending" in p.get("options", {}).get("content", "") for p in default_dashboard["panels"])
    sessions = names.counter(sc.METRIC_LLM_SESSIONS)
    for title in ("Average cost per session by session type", "Calls per session by session type"):
        expr = by_title[title]["targets"][0]["expr"]
        # the sessions counter has no provider/model label: it is filtered by the dimensions only
        assert f"/ sum by (session_name) (increase({sessions}{{" in expr, expr
        assert "model=~" not in expr.split(sessions)[1], expr
    savings = [t["expr"] for t in by_title["Cache savings"]["targets"]]
    saved, premium = (
        names.counter(m) for m in (sc.METRIC_LLM_COST_CACHE_SAVINGS_USD, sc.METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD)
    )
    assert saved in savings[0] and premium in savings[0] and " - " in savings[0]  # net = savings - premium
    assert saved in savings[1] and premium in savings[2]
    guards = {
        "Per-user budget utilisation (top users)": sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO,
        "Users over threshold": sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD,
        "Guard breaches": sc.METRIC_LLM_BUDGET_GUARD_BREACHES,
        "Guard state errors": sc.METRIC_LLM_BUDGET_GUARD_ERRORS,
    }
    families = names.known()
    for title, metric in guards.items():
        family = names.families[metric]
        (sample,) = family.samples
        assert sample in families and sample in by_title[title]["targets"][0]["expr"], title
    # the demo runs no guard: those panels are flagged as empty for it, and only those with the overflow one
    flagged = {p.title for p in dashboard_items(names) if isinstance(p, Panel) and p.empty_for_demo}
    assert flagged == {*guards, "Label values folded into other"}


def test_invalid_dimensions_are_refused_like_the_recorder_does() -> None:
    with pytest.raises(config.ConfigError, match="user_id"):
        build_dashboard(("environment", "user_id"))


def test_the_readme_lists_every_panel_with_its_question() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Grafana dashboard") : readme.index("## Examples")]
    for panel in json.loads(COMMITTED.read_text())["panels"]:
        if panel["type"] != "row":
            row = f"| {panel['title']} | {panel['description'].replace('|', '/')} |"
            assert row in section, f"README's dashboard table lacks: {row}"
