"""Prometheus rules, an Alertmanager example and promtool tests, generated from a budgets file.

``generate(budgets, out_dir)`` writes:

- ``prometheus-rules.yml``: per budget, a recording rule of its spend over its window
  (``budget:llm_cost_usd:spend{budget,window}``) and one alert per threshold
  (``LLMBudgetThresholdReached{budget,window,severity,threshold}``); the limits as recording rules
  (``llm_budget_limit_usd{budget,window}``); per-user budgets alert on the in-process tracker's
  gauges; error-rate alerts (``LLMErrorRateHigh``); and ``LLMCostMetricsAbsent``.
- ``alertmanager.yml``: routing by severity: critical to Slack, warning to email, info to a webhook.
- ``prometheus-rules.test.yml``: ``promtool test rules`` cases for every threshold, a counter
  reset and an absent series of every budget, and for every alert (see :mod:`._ruletests`).

Why the limits are recording rules and not a gauge of the application: the budgets file is the
one source of the rules and the limits, so they cannot disagree; the series exists once (not once
per scraped process, which dashboards would have to de-duplicate), also in collector mode and for
applications in other languages, and it stays while the application is down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from .. import semconv as sc
from ._promql import (
    ALERT_BUDGET,
    ALERT_ERROR_RATE,
    ALERT_METRICS_ABSENT,
    ALERT_USER_BUDGET,
    ALERT_USERS_OVER,
    HOURLY_RECORD,
    LABEL_LLM_ALERT,
    METRICS_ABSENT_FOR,
    PROM_CATALOG_INFO,
    PROM_COST,
    PROM_REQUESTS,
    SPEND_RECORD,
    budget_annotations,
    error_rate_annotations,
    matchers,
    metrics_absent_annotations,
    number,
    quote,
    spend_query,
    user_budget_annotations,
    users_over_annotations,
)
from ._ruletests import render_tests
from .spec import (
    LABEL_BUDGET,
    LABEL_SEVERITY,
    LABEL_THRESHOLD,
    LABEL_USER,
    LABEL_WINDOW,
    METRIC_BUDGET_LIMIT_USD,
    METRIC_BUDGET_USER_UTILIZATION,
    METRIC_BUDGET_USERS_OVER_THRESHOLD,
    Budget,
    BudgetsFile,
    ErrorRateAlert,
)

__all__ = [
    "ALERTMANAGER_FILE",
    "RULES_FILE",
    "TESTS_FILE",
    "alertmanager_config",
    "dump_yaml",
    "generate",
    "rules_document",
]

RULES_FILE: Final = "prometheus-rules.yml"
TESTS_FILE: Final = "prometheus-rules.test.yml"
ALERTMANAGER_FILE: Final = "alertmanager.yml"


_MONTH_NOTE = """\
# Calendar month (window: month, UTC). A PromQL range is a constant, and "since the 1st" is not, so
# month-to-date is summed from fixed pieces:
#   1. budget:llm_cost_usd:increase1h records the budget's spend over the last hour, every evaluation.
#   2. A subquery [31d:1h] reads that record at each hour mark (Prometheus aligns subquery steps to
#      multiples of the step: whole UTC hours), keeping the marks whose hour began in the month of
#      the evaluation: month(step - 1h) == month(now). Inside a subquery time() is the step's time,
#      so "now" is last_over_time(vector(time())[1m:1m] @ end()): "@ end()" pins it to the rule's
#      evaluation time.
#   3. The current hour so far is added the same way from 5-minute increases of the raw counter
#      ([1h:5m], marks whose 5 minutes began in the current hour).
# Exact at hour boundaries and at most 5 minutes behind the raw counter; each evaluation reads 744
# points of one recorded series instead of 31 days of raw samples. Rejected: a sum of daily
# increases (misses today's partial day, or counts whole days of last month), increase() over 31
# day-count branches (scans up to 31 days of raw data every evaluation), and a self-referencing
# accumulator rule (loses or double-counts across Prometheus restarts). The hourly record exists
# from when these rules are loaded: in the first month, spend before that is not counted; and an
# outage of Prometheus longer than its 5m lookback around an hour mark drops that hour from the sum.
# Rolling windows (1h, 1d, 7d, 30d) use increase() over the raw counter.
#"""


# The evaluation time, usable inside a subquery (where time() is the time of each step): "@ end()"
# pins the inner subquery to the end of the (instant) rule query. Its 1m steps are aligned to whole
# minutes, and month and hour boundaries are whole minutes, so month() and hour() of it are exact.
_NOW = "last_over_time(vector(time())[1m:1m] @ end())"


def _spend_expr(budget: Budget) -> str:
    selector = PROM_COST + matchers(budget.filter)
    if not budget.window.calendar_month:
        return f"sum(increase({selector}[{budget.window.text}])) or on() vector(0)"
    hourly = f"{HOURLY_RECORD}{{{LABEL_BUDGET}={quote(budget.name)}}}"
    return (
        "# Month-to-date, UTC (see the note at the top of this file).\n"
        "# The hours of this month that are over (hour marks whose hour began in this month),\n"
        "# summed without the budget label so both parts add up:\n"
        "(\n"
        "  sum(sum_over_time(\n"
        "    (\n"
        f"      {hourly}\n"
        f"      and on() month(vector(time() - 3600)) == on() month({_NOW})\n"
        "    )[31d:1h]\n"
        "  ))\n"
        "  or on() vector(0)\n"
        ")\n"
        "+\n"
        "# plus the current hour so far, in 5-minute steps:\n"
        "(\n"
        "  sum_over_time(\n"
        "    (\n"
        f"      sum(increase({selector}[5m]))\n"
        f"      and on() hour(vector(time() - 300)) == on() hour({_NOW})\n"
        "    )[1h:5m]\n"
        "  )\n"
        "  or on() vector(0)\n"
        ")"
    )


def _budget_group(budget: Budget) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    labels = {LABEL_BUDGET: budget.name, LABEL_WINDOW: budget.window.text}
    if budget.per_user:
        for t in budget.thresholds:
            rules.append(
                {
                    "alert": ALERT_USER_BUDGET,
                    "expr": (
                        f"max by ({LABEL_BUDGET}, {LABEL_USER}) ({METRIC_BUDGET_USER_UTILIZATION}"
                        f"{{{LABEL_BUDGET}={quote(budget.name)}}}) >= {t.at!r}"
                    ),
                    "for": budget.for_,
                    "labels": {LABEL_BUDGET: budget.name, LABEL_SEVERITY: t.severity, LABEL_THRESHOLD: t.label},
                    "annotations": user_budget_annotations(budget, t),
                }
            )
        for t in budget.thresholds:
            rules.append(
                {
                    "alert": ALERT_USERS_OVER,
                    "expr": (
                        f"max by ({LABEL_BUDGET}, {LABEL_THRESHOLD}) ({METRIC_BUDGET_USERS_OVER_THRESHOLD}"
                        f"{{{LABEL_BUDGET}={quote(budget.name)},{LABEL_THRESHOLD}={quote(t.label)}}}) > 0"
                    ),
                    "for": budget.for_,
                    "labels": {LABEL_BUDGET: budget.name, LABEL_SEVERITY: t.severity, LABEL_THRESHOLD: t.label},
                    "annotations": users_over_annotations(budget, t),
                }
            )
        return {"name": f"llm-budget-{budget.name}", "rules": rules}
    if budget.window.calendar_month:
        rules.append(
            {
                "record": HOURLY_RECORD,
                "expr": f"sum(increase({PROM_COST}{matchers(budget.filter)}[1h])) or on() vector(0)",
                "labels": {LABEL_BUDGET: budget.name},
            }
        )
    rules.append({"record": SPEND_RECORD, "expr": _spend_expr(budget), "labels": labels})
    limit = number(budget.limit_usd)
    for t in budget.thresholds:
        rules.append(
            {
                "alert": ALERT_BUDGET,
                "expr": f"{spend_query(budget)} / {limit} >= {t.at!r}",
                "for": budget.for_,
                "labels": {LABEL_BUDGET: budget.name, LABEL_SEVERITY: t.severity, LABEL_THRESHOLD: t.label},
                "annotations": budget_annotations(budget, t),
            }
        )
    return {"name": f"llm-budget-{budget.name}", "rules": rules}


def _error_rate_rule(alert: ErrorRateAlert) -> dict[str, Any]:
    w = alert.window.text
    total = f"sum(increase({PROM_REQUESTS}{matchers(alert.filter)}[{w}]))"
    errors = f"sum(increase({PROM_REQUESTS}{matchers(alert.filter, [f'{sc.STATUS}={quote(sc.STATUS_ERROR)}'])}[{w}]))"
    expr = (
        "# no error series yet means 0 errors; no requests at all means no rate (and no alert)\n"
        f"(\n  {errors}\n  or on() vector(0)\n)\n/\n{total}\n> {alert.error_rate_above!r}"
    )
    if alert.min_requests:
        expr += f"\nand on()\n{total} >= {alert.min_requests}"
    return {
        "alert": ALERT_ERROR_RATE,
        "expr": expr,
        "for": alert.for_,
        "labels": {LABEL_LLM_ALERT: alert.name, LABEL_SEVERITY: alert.severity},
        "annotations": error_rate_annotations(alert),
    }


def rules_document(budgets: BudgetsFile) -> dict[str, Any]:
    """Return the Prometheus rule-file document for *budgets* (before YAML serialisation)."""
    groups: list[dict[str, Any]] = []
    if budgets.budgets:
        limits = []
        for b in budgets.budgets:
            labels = {LABEL_BUDGET: b.name, LABEL_WINDOW: b.window.text}
            if b.per_user:
                labels["per"] = "user"
            limits.append(
                {"record": METRIC_BUDGET_LIMIT_USD, "expr": f"vector({number(b.limit_usd)})", "labels": labels}
            )
        groups.append({"name": "llm-budget-limits", "rules": limits})
    groups.extend(_budget_group(b) for b in budgets.budgets)
    if budgets.alerts:
        groups.append({"name": "llm-error-rates", "rules": [_error_rate_rule(a) for a in budgets.alerts]})
    groups.append(
        {
            "name": "llm-cost-health",
            "rules": [
                {
                    "alert": ALERT_METRICS_ABSENT,
                    "expr": f"absent({PROM_CATALOG_INFO})",
                    "for": METRICS_ABSENT_FOR,
                    "labels": {LABEL_SEVERITY: "warning"},
                    "annotations": metrics_absent_annotations(),
                }
            ],
        }
    )
    return {"groups": groups}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (PromQL), so the generated file reads like a hand-written one."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(document: Any) -> str:
    """Serialise a generated document (stable key order, no line folding)."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)


def _header(budgets: BudgetsFile, what: str) -> str:
    dims = ", ".join(budgets.dimensions) or "(none)"
    return (
        f"# {what}\n"
        f"# GENERATED from {Path(budgets.source).name} by `otel-llmcost rules --budgets {budgets.source} --out DIR`:\n"
        "# do not edit; change the budgets file and regenerate.\n"
        "#\n"
        f"# Label allow-list assumed: {dims}. The application (OTEL_LLMCOST_DIMENSIONS) must record every\n"
        "# label a filter names, or that budget's spend stays at $0.\n"
    )


def _rules_header(budgets: BudgetsFile) -> str:
    text = _header(budgets, "Prometheus recording and alerting rules for LLM budgets (otel-llmcost).")
    text += (
        "#\n"
        f"# Spend of a budget = sum(increase({PROM_COST}{{filter}}[window])) or on() vector(0):\n"
        "#  - increase() counts across counter resets (a restarted process starts again at 0);\n"
        "#  - 'or on() vector(0)': a budget without traffic spends $0 rather than having no series, so\n"
        "#    its alerts evaluate and dashboards show 0 (plain 'or vector(0)' would add a second series\n"
        "#    whenever the left side has labels);\n"
        "#  - Prometheus must keep data longer than the longest window (default retention is 15d: a 30d\n"
        "#    window needs --storage.tsdb.retention.time=31d or more).\n"
        f"# Limits are recording rules ({METRIC_BUDGET_LIMIT_USD}{{budget,window}}), so a dashboard shows burn as\n"
        f"#   {SPEND_RECORD} / on(budget, window) {METRIC_BUDGET_LIMIT_USD}\n"
        "# Severities follow the thresholds' rank: highest critical, next warning, the rest info.\n"
        "# Per-user budgets alert on gauges the in-process tracker exports (user ids never become labels\n"
        f"# of the cost metrics): {METRIC_BUDGET_USER_UTILIZATION}{{budget,user}} for the users closest\n"
        f"# to their limit, {METRIC_BUDGET_USERS_OVER_THRESHOLD}{{budget,threshold}} for the count.\n"
        "#\n"
    )
    if any(b.window.calendar_month for b in budgets.budgets):
        text += _MONTH_NOTE + "\n"
    return text


def alertmanager_config() -> dict[str, Any]:
    """Return the example Alertmanager configuration (routing by severity; placeholder receivers)."""
    group_by = ["alertname", LABEL_BUDGET, LABEL_LLM_ALERT]
    return {
        "global": {
            "resolve_timeout": "5m",
            "smtp_smarthost": "smtp.example.com:587",
            "smtp_from": "alertmanager@example.com",
            "smtp_auth_username": "alertmanager@example.com",
            "smtp_auth_password": "REPLACE-ME",
            "smtp_require_tls": True,
        },
        "route": {
            "receiver": "llm-costs-webhook",
            "group_by": group_by,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"matchers": [f'{LABEL_SEVERITY}="critical"'], "receiver": "llm-costs-slack", "repeat_interval": "1h"},
                {"matchers": [f'{LABEL_SEVERITY}="warning"'], "receiver": "llm-costs-email"},
                {"matchers": [f'{LABEL_SEVERITY}="info"'], "receiver": "llm-costs-webhook", "repeat_interval": "24h"},
            ],
        },
        # At 95% the 80% and 50% notifications of the same budget only repeat what is known.
        "inhibit_rules": [
            {
                "source_matchers": [f'{LABEL_SEVERITY}="critical"'],
                "target_matchers": [f'{LABEL_SEVERITY}=~"warning|info"'],
                "equal": ["alertname", LABEL_BUDGET, LABEL_USER],
            },
            {
                "source_matchers": [f'{LABEL_SEVERITY}="warning"'],
                "target_matchers": [f'{LABEL_SEVERITY}="info"'],
                "equal": ["alertname", LABEL_BUDGET, LABEL_USER],
            },
        ],
        "receivers": [
            {
                "name": "llm-costs-slack",
                "slack_configs": [
                    {
                        "api_url": "https://hooks.slack.com/services/T00000000/B00000000/REPLACE-ME",
                        "channel": "#llm-costs",
                        "send_resolved": True,
                        "title": "{{ .Status | toUpper }}: {{ .CommonAnnotations.summary }}",
                        "text": "{{ range .Alerts }}{{ .Annotations.description }}\n{{ end }}",
                    }
                ],
            },
            {
                "name": "llm-costs-email",
                "email_configs": [{"to": "llm-costs@example.com", "send_resolved": True}],
            },
            {
                "name": "llm-costs-webhook",
                "webhook_configs": [{"url": "http://127.0.0.1:9099/llm-cost-alerts", "send_resolved": True}],
            },
        ],
    }


def _alertmanager_text(budgets: BudgetsFile) -> str:
    header = _header(budgets, "Example Alertmanager configuration for the LLM budget alerts (otel-llmcost).")
    header += (
        "#\n"
        "# Routes by severity: critical (95%) to Slack, warning (80%) to email, info (50%) to a webhook.\n"
        "# Replace the placeholder URL, addresses and password; check with `amtool check-config`.\n"
        "# Alerts are grouped per budget, so one notification carries a budget's alerts together.\n"
    )
    return header + dump_yaml(alertmanager_config())


def generate(budgets: BudgetsFile, out_dir: str | Path) -> list[Path]:
    """Write the rules, the Alertmanager example and the promtool tests into *out_dir*.

    Args:
        budgets: a loaded budgets file (:func:`~otel_llmcost.budgets.load_budgets`).
        out_dir: the directory (created if missing).

    Returns:
        The paths written: rules, tests, Alertmanager example.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / RULES_FILE
    tests = out / TESTS_FILE
    am = out / ALERTMANAGER_FILE
    rules.write_text(_rules_header(budgets) + dump_yaml(rules_document(budgets)), encoding="utf-8")
    tests_header = _header(budgets, f"promtool unit tests of {RULES_FILE}: `promtool test rules {TESTS_FILE}`.")
    tests.write_text(tests_header + dump_yaml(render_tests(budgets, RULES_FILE)), encoding="utf-8")
    am.write_text(_alertmanager_text(budgets), encoding="utf-8")
    return [rules, tests, am]
