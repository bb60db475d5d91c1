"""End to end: every query of the committed dashboard, evaluated by a real Prometheus scraping the demo.

Debian's `prometheus`, started here on 127.0.0.1 with a 1 s scrape and evaluation interval,
scrapes `otel-llmcost demo --serve` (a live session every 0.2 s) and loads the committed budget
rules (examples/prometheus/rules/). Each panel's PromQL, with Grafana's variables substituted
(filters = `.*`, `$__range` = 2m, `$__interval` = `$__rate_interval` = 5s), goes through the HTTP
API: it must parse, and return data unless its panel is documented as empty for the demo. A few
answers are checked for meaning too: today's spend is positive, the unpriced model is the
demo's fine-tune, budget burn lists every budget of the file, the peak panels name this hour,
sessions and cache savings add up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llmcost.budgets import load_budgets
from otel_llmcost.dashboard import Panel, dashboard_items, probe_names, recorded_dimensions, variable_expression

from ._prom import PROMETHEUS, free_port, processes, query_response, start_prometheus

__all__ = ["processes"]  # the fixture, imported for pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (scripts/install-observability.sh)"),
]

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "examples" / "grafana" / "otel-llmcost.json"
RULES = ROOT / "examples" / "prometheus" / "rules" / "prometheus-rules.yml"
BUDGETS = ROOT / "examples" / "budgets.yaml"
RANGE_S = 120
BUILTINS = {
    "__range": f"{RANGE_S}s",
    "__range_s": str(RANGE_S),
    "__range_ms": str(RANGE_S * 1000),
    "__interval": "5s",
    "__interval_ms": "5000",
    "__rate_interval": "5s",
}
DEADLINE_S = 45.0
DEMO = [sys.executable, "-m", "otel_llmcost", "demo", "--serve"]


def substitute(expr: str, variables: set[str]) -> str:
    """What Grafana sends to Prometheus: built-in intervals, and All (`.*`) for every filter."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        assert name in variables, f"undefined variable ${name} in {expr}"
        return ".*"

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", one, expr)


def wait_metrics(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the demo exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                if b"llm_cost_usd_total" in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo's /metrics did not come up:\n{log.read_text()[-3000:]}")


def test_every_panel_query_parses_and_returns_data(tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    dims = recorded_dimensions(dashboard)
    assert dims is not None
    # the generator's flag per panel: None, or why the panel is empty for the demo
    empty_for_demo = {p.title: p.empty_for_demo for p in dashboard_items(probe_names(dims)) if isinstance(p, Panel)}
    assert any(empty_for_demo.values())  # the flag is read from the generator (one panel has it)
    variables = {v["name"] for v in dashboard["templating"]["list"]}

    demo_port = free_port()
    demo_log = tmp_path / "demo.log"
    with demo_log.open("wb") as out:
        processes.append(
            subprocess.Popen(
                [*DEMO, "--port", str(demo_port), "--sessions", "20", "--every", "0.2"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONWARNINGS": "error"},
            )
        )
    wait_metrics(demo_port, processes[-1], demo_log)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [f"127.0.0.1:{demo_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = start_prometheus(tmp_path / "prometheus.yml", tmp_path, processes)

    # (panel, ref, PromQL) for every query, and the variables' label_values() as PromQL
    checks = [
        (p["title"], t["refId"], substitute(t["expr"], variables))
        for p in dashboard["panels"]
        for t in p.get("targets", ())
    ]
    checks += [
        (f"variable {v['name']}", "-", substitute(variable_expression(v["definition"]), variables))
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    assert len(checks) >= 30
    start = time.monotonic()
    pending = list(checks)
    while pending:
        still = []
        for title, ref, promql in pending:
            answer = query_response(port, promql)
            assert answer["status"] == "success", f"{title} ({ref}): Prometheus refused {promql!r}: {answer}"
            if not answer["data"]["result"] and empty_for_demo.get(title) is None:
                still.append((title, ref, promql))
        pending = still
        if pending:
            assert time.monotonic() - start < DEADLINE_S, (
                f"no data within {DEADLINE_S:g} s for: {[(t, r) for t, r, _ in pending]}\n{log.read_text()[-2000:]}"
            )
            time.sleep(1)

    promql_of = {(title, ref): promql for title, ref, promql in checks}

    def fresh(title: str, ref: str = "A") -> list[dict[str, Any]]:
        """The query's answer now (rule groups start evaluating at different moments of the first second)."""
        result: list[dict[str, Any]] = query_response(port, promql_of[(title, ref)])["data"]["result"]
        return result

    def values(title: str, ref: str = "A") -> dict[str, float]:
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in fresh(title, ref)}

    # Money flowed during the run (the live sessions), so today's spend is above zero.
    (today,) = values("Spend today").values()
    assert today > 0
    # The demo's fine-tuned model is the unpriced one.
    unpriced = [r["metric"]["model"] for r in fresh("Unpriced calls by model")]
    assert unpriced and all(m.startswith("ft:") for m in unpriced), unpriced
    # Budget burn: one bar per budget that has a spend series (per-user budgets are alerted on, not shown).
    budgets = load_budgets(BUDGETS)
    expected = {b.name for b in budgets.budgets if not b.per_user}
    while (burned := {r["metric"]["budget"] for r in fresh("Budget burn")}) != expected:
        assert time.monotonic() - start < DEADLINE_S, f"budget burn shows {burned}, expected {expected}"
        time.sleep(0.5)
    assert {r["metric"]["budget"] for r in fresh("Budget spend and limit", "B")} == expected
    # The peaks are labelled with the hour / weekday (UTC) the run happened in.
    now = dt.datetime.now(dt.timezone.utc)
    hours = {str(h.hour) for h in (now, now - dt.timedelta(seconds=RANGE_S))}
    assert {r["metric"]["hour"] for r in fresh("Spend by hour of day (UTC)")} <= hours
    weekdays = {str((d.weekday() + 1) % 7) for d in (now, now - dt.timedelta(seconds=RANGE_S))}  # 0 = Sunday
    assert {r["metric"]["day"] for r in fresh("Spend by day of week (UTC)")} <= weekdays
    # Ratios are ratios.
    assert all(0 <= v <= 1 for v in values("Cache hit ratio by model").values())
    # The cache-using models of the demo read from the cache.
    assert any(v > 0 for v in values("Cache hit ratio by model").values())
    # Sessions are counted: a document analysis (8-14 calls in the demo) makes more calls than a quick
    # query (1 call); increase() extrapolates at the range's edges, so the averages are not exact.
    per_session = {json.loads(k)["session_name"]: v for k, v in values("Calls per session by session type").items()}
    assert per_session["document-analysis"] > per_session["quick-query"] > 0, per_session
    # Caching saved money on the demo's cache reads; the net figure is reads' savings minus the write premium.
    (saved,) = values("Cache savings", "B").values()
    (premium,) = values("Cache savings", "C").values()
    assert saved > 0 and premium >= 0
    # the three figures evaluated at one instant (the live demo keeps adding to them)
    net, read, write = (promql_of[("Cache savings", ref)] for ref in "ABC")
    (difference,) = query_response(port, f"({net}) - (({read}) - ({write}))")["data"]["result"]
    assert abs(float(difference["value"][1])) < 1e-9
