"""`otel-llmcost rules`: the generated Prometheus rules, their promtool tests, the Alertmanager example."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llmcost.budgets import generate, load_budgets, parse_budgets
from otel_llmcost.budgets._promql import budget_annotations, usd
from otel_llmcost.budgets._ruletests import humanize, render_template
from otel_llmcost.budgets.rules import ALERTMANAGER_FILE, RULES_FILE, TESTS_FILE, rules_document

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "budgets.yaml"
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
INSTALL = "scripts/install-observability.sh installs Debian's prometheus and prometheus-alertmanager"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool is not installed ({INSTALL})")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason=f"amtool is not installed ({INSTALL})")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd, check=False)


def promtool_ok(*args: str, cwd: Path | None = None) -> None:
    assert PROMTOOL is not None
    result = run(PROMTOOL, *args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr


def budgets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def rules_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in doc["groups"] for rule in group["rules"]]


def of_budget(rules: list[dict[str, Any]], kind: str, name: str, budget: str) -> list[dict[str, Any]]:
    """The rules with `record: name` or `alert: name` (kind) labelled with this budget."""
    return [r for r in rules if r.get(kind) == name and r["labels"].get("budget") == budget]


def test_generate_writes_three_generated_files_deterministically(tmp_path: Path) -> None:
    budgets = load_budgets(EXAMPLE)
    paths = generate(budgets, tmp_path / "a")
    assert [p.name for p in paths] == [RULES_FILE, TESTS_FILE, ALERTMANAGER_FILE]
    for p in paths:
        text = p.read_text()
        assert "GENERATED from budgets.yaml by `otel-llmcost rules --budgets" in text
        assert "do not edit" in text
    again = generate(budgets, tmp_path / "b")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


def test_rules_for_a_filtered_daily_budget() -> None:
    doc = rules_document(load_budgets(EXAMPLE))
    rules = rules_of(doc)
    (spend,) = of_budget(rules, "record", "budget:llm_cost_usd:spend", "production-daily")
    assert spend["expr"] == 'sum(increase(llm_cost_usd_total{environment="production"}[1d])) or on() vector(0)'
    assert spend["labels"] == {"budget": "production-daily", "window": "1d"}
    (limit,) = of_budget(rules, "record", "llm_budget_limit_usd", "production-daily")
    assert limit["expr"] == "vector(500)"
    alerts = of_budget(rules, "alert", "LLMBudgetThresholdReached", "production-daily")
    assert [(a["expr"], a["for"], a["labels"]["severity"], a["labels"]["threshold"]) for a in alerts] == [
        ('budget:llm_cost_usd:spend{budget="production-daily"} / 500 >= 0.5', "5m", "info", "0.5"),
        ('budget:llm_cost_usd:spend{budget="production-daily"} / 500 >= 0.8', "5m", "warning", "0.8"),
        ('budget:llm_cost_usd:spend{budget="production-daily"} / 500 >= 0.95', "5m", "critical", "0.95"),
    ]
    (search,) = of_budget(rules, "record", "budget:llm_cost_usd:spend", "search-weekly")
    assert '{feature="search",environment=~"production|staging"}[7d]' in search["expr"]


def test_rules_for_per_user_budgets_and_error_rates() -> None:
    rules = rules_of(rules_document(load_budgets(EXAMPLE)))
    user = [r for r in rules if r.get("alert") == "LLMUserBudgetThresholdReached"]
    assert [r["expr"] for r in user][1] == (
        'max by (budget, user) (llm_budget_user_utilization_ratio{budget="per-user-daily"}) >= 0.8'
    )
    count = [r for r in rules if r.get("alert") == "LLMUsersOverBudgetThreshold"]
    assert [r["expr"] for r in count][2] == (
        'max by (budget, threshold) (llm_budget_users_over_threshold{budget="per-user-daily",threshold="0.95"}) > 0'
    )
    assert not any("per-user-daily" in r.get("expr", "") and "llm_cost_usd_total" in r["expr"] for r in rules)
    (errors,) = [r for r in rules if r.get("alert") == "LLMErrorRateHigh"]
    assert 'sum(increase(llm_requests_total{status="error",environment="production"}[15m]))' in errors["expr"]
    assert "or on() vector(0)" in errors["expr"] and ">= 20" in errors["expr"]
    assert errors["labels"] == {"llm_alert": "production-errors", "severity": "critical"}
    (absent,) = [r for r in rules if r.get("alert") == "LLMCostMetricsAbsent"]
    assert absent["expr"] == "absent(llm_cost_catalog_info)"


def test_the_summary_reads_at_3am() -> None:
    budget = parse_budgets(
        "dimensions: [environment]\n"
        "budgets: [{name: production-daily, title: production, filter: {environment: production},"
        " window: 1d, limit_usd: 100}]\n"
    ).budgets[0]
    notes = budget_annotations(budget, budget.thresholds[1])
    labels = {"budget": "production-daily"}
    assert render_template(notes["summary"], value=0.821, labels=labels, query=82.1) == (
        "Daily LLM spend for production is at 82.1% of its $100 budget ($82.10 spent)"
    )
    assert render_template(notes["description"], value=0.821, labels=labels, query=82.1) == (
        "Budget production-daily: $82.10 spent in the last 24 hours against a limit of $100 (82.1%)."
        ' This alert fires at 80% (warning). Spend is the increase of llm_cost_usd_total{environment="production"}'
        " over the window."
    )


def test_money_and_number_formatting() -> None:
    assert [usd(Decimal(x)) for x in ("100", "20000", "12.5", "0.25", "0.005")] == [
        "$100",
        "$20,000",
        "$12.50",
        "$0.25",
        "$0.005",
    ]
    assert [humanize(v) for v in (0, 3, 1234, 0.5, 2e6)] == ["0", "3", "1.234k", "500m", "2M"]


@needs_promtool
def test_example_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    generate(load_budgets(EXAMPLE), tmp_path)
    promtool_ok("check", "rules", str(tmp_path / RULES_FILE))
    promtool_ok("test", "rules", str(tmp_path / TESTS_FILE))


@needs_amtool
def test_alertmanager_example_passes_amtool(tmp_path: Path) -> None:
    generate(load_budgets(EXAMPLE), tmp_path)
    assert AMTOOL is not None
    result = run(AMTOOL, "check-config", str(tmp_path / ALERTMANAGER_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((tmp_path / ALERTMANAGER_FILE).read_text())
    routes = {r["matchers"][0]: r["receiver"] for r in config["route"]["routes"]}
    assert routes == {
        'severity="critical"': "llm-costs-slack",
        'severity="warning"': "llm-costs-email",
        'severity="info"': "llm-costs-webhook",
    }
    kinds = {r["name"]: next(k for k in r if k.endswith("_configs")) for r in config["receivers"]}
    assert kinds == {
        "llm-costs-slack": "slack_configs",
        "llm-costs-email": "email_configs",
        "llm-costs-webhook": "webhook_configs",
    }


VARIED = """
dimensions: [environment, feature]
budgets:
  - {name: odd-limit, window: 1d, limit_usd: 12.34, for: 90s}
  - {name: tiny, window: 30m, limit_usd: 0.3, thresholds: [1], for: 0s}
  - name: four-levels
    window: 7d
    limit_usd: 1000000
    thresholds: [0.25, 0.5, 0.75, {at: 0.9, severity: warning}]
    filter: {provider: [openai, anthropic], operation: chat}
  - name: "weird.values"
    window: 2h
    limit_usd: 7
    for: 1h
    filter: {feature: ["a.b|c", 'say "hi" {{x}}'], environment: prod}
  - {name: monthly-feature, window: month, limit_usd: 250, filter: {feature: search}, thresholds: [0.5, 0.9]}
  - {name: users, per: user, window: 1h, limit_usd: 0.5, thresholds: [0.9], for: 0s}
alerts:
  - {name: all-errors, error_rate_above: 0.1, window: 5m, for: 0s}
  - {name: busy-errors, error_rate_above: 0, window: 30m, min_requests: 100, filter: {environment: prod}, severity: info}
rate_limits:
  - "10;w=1"
"""


@needs_promtool
def test_varied_budgets_pass_their_generated_tests(tmp_path: Path) -> None:
    generate(load_budgets(budgets_file(tmp_path, VARIED)), tmp_path / "out")
    promtool_ok("check", "rules", str(tmp_path / "out" / RULES_FILE))
    promtool_ok("test", "rules", str(tmp_path / "out" / TESTS_FILE))
    rules = (tmp_path / "out" / RULES_FILE).read_text()
    # regex metacharacters escaped inside the matcher, quotes escaped in the PromQL string
    assert 'feature=~"a\\\\.b\\\\|c|say \\"hi\\" \\\\{\\\\{x\\\\}\\\\}"' in rules
    # a literal "{{" of user text cannot open a template action
    assert '{{ "{{" }}x}}' in rules


@needs_promtool
def test_only_rate_limits_still_yield_valid_rules(tmp_path: Path) -> None:
    generate(load_budgets(budgets_file(tmp_path, 'rate_limits: ["10;w=60;s=user"]\n')), tmp_path / "out")
    promtool_ok("check", "rules", str(tmp_path / "out" / RULES_FILE))
    promtool_ok("test", "rules", str(tmp_path / "out" / TESTS_FILE))


@needs_promtool
def test_month_to_date_across_the_month_boundary(tmp_path: Path) -> None:
    """The calendar-month spend restarts at 00:00 UTC on the 1st, and counts partial hours.

    promtool time starts at 1970-01-01 00:00 UTC; 744h is February 1st. The counter in scope rises
    by $1 every 5 minutes; one out of scope by $7. Rules are evaluated hourly, so the hourly
    record is read exactly at its marks; the last query keeps samples loaded past every eval time.
    """
    budgets = load_budgets(
        budgets_file(
            tmp_path,
            "dimensions: [environment]\n"
            "budgets: [{name: monthly, window: month, limit_usd: 1000000, filter: {environment: production}}]\n",
        )
    )
    generate(budgets, tmp_path)
    spend = next(r for r in rules_of(rules_document(budgets)) if r.get("record") == "budget:llm_cost_usd:spend")

    def value(hours: int, minutes: int = 0) -> int:  # the counter at that time
        return (hours * 60 + minutes) // 5

    feb = value(744)
    cases = [
        (2 * 60 + 30, value(2, 30)),  # Jan 1 02:30: two full hours and half an hour
        (743 * 60 + 59, value(743, 55)),  # Jan 31 23:59: the month so far, 5-minute steps
        (744 * 60, 0),  # Feb 1 00:00: a new month
        (745 * 60 + 2, value(745) - feb),  # Feb 1 01:02
        (746 * 60 + 30, value(746, 30) - feb),  # Feb 1 02:30
        (750 * 60, value(750) - feb),
    ]
    doc = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1h",
        "tests": [
            {
                "interval": "5m",
                "input_series": [
                    {
                        "series": 'llm_cost_usd_total{environment="production",provider="openai",model="m",operation="chat"}',
                        "values": "0+1x9000",
                    },
                    {
                        "series": 'llm_cost_usd_total{environment="staging",provider="openai",model="m",operation="chat"}',
                        "values": "0+7x9000",
                    },
                ],
                "promql_expr_test": [
                    {"expr": spend["expr"], "eval_time": f"{t}m", "exp_samples": [{"labels": "{}", "value": v}]}
                    for t, v in cases
                ],
            }
        ],
    }
    (tmp_path / "month.test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    promtool_ok("test", "rules", "month.test.yml", cwd=tmp_path)


SMALL = """
dimensions: [environment]
budgets:
  - {name: daily, window: 1d, limit_usd: 100, filter: {environment: production}}
  - {name: monthly, window: month, limit_usd: 1000}
"""


@pytest.fixture(scope="module")
def small_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate(load_budgets(budgets_file(out, SMALL)), out)
    promtool_ok("test", "rules", TESTS_FILE, cwd=out)
    return out


@needs_promtool
@pytest.mark.parametrize(
    ("mistake", "old", "new"),
    [
        ("delta() ignores counter resets", "increase(", "delta("),
        ("no spend series without traffic", " or on() vector(0)", ""),
        ("a threshold off by 10 points", ">= 0.8", ">= 0.9"),
        ("severities swapped", "severity: warning", "severity: info"),
    ],
)
def test_the_generated_tests_catch_wrong_rules(
    small_rules: Path, tmp_path: Path, mistake: str, old: str, new: str
) -> None:
    for name in (RULES_FILE, TESTS_FILE):
        shutil.copy(small_rules / name, tmp_path / name)
    rules = tmp_path / RULES_FILE
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new))
    assert PROMTOOL is not None
    result = run(PROMTOOL, "test", "rules", TESTS_FILE, cwd=tmp_path)
    assert result.returncode != 0, f"the tests did not notice: {mistake}"
