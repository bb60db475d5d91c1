"""PromQL names and the text of the generated alerts, shared by the rules and their promtool tests.

The Prometheus names of our metrics are derived from the semantic-convention constants the way
the OpenTelemetry Prometheus exporter writes them; the alert annotations are Go templates that
Prometheus expands (``$value``, ``$labels``, ``humanizePercentage``, ``query``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from .. import semconv as sc
from .spec import LABEL_BUDGET, LABEL_USER, METRIC_BUDGET_USERS_OVER_THRESHOLD, Budget, ErrorRateAlert, Threshold

__all__ = [
    "ALERT_BUDGET",
    "ALERT_ERROR_RATE",
    "ALERT_METRICS_ABSENT",
    "ALERT_USERS_OVER",
    "ALERT_USER_BUDGET",
    "HOURLY_RECORD",
    "LABEL_LLM_ALERT",
    "METRICS_ABSENT_FOR",
    "PROM_CATALOG_INFO",
    "PROM_COST",
    "PROM_REQUESTS",
    "SPEND_RECORD",
    "budget_annotations",
    "error_rate_annotations",
    "matchers",
    "metrics_absent_annotations",
    "number",
    "quote",
    "spend_query",
    "template_text",
    "usd",
    "user_budget_annotations",
    "users_over_annotations",
]


def _prometheus_name(otel_name: str, *, counter: bool = False) -> str:
    # The OpenTelemetry Prometheus exporter's translation for our names: dots become underscores,
    # {annotation} units add no suffix, monotonic sums get _total.
    return otel_name.replace(".", "_") + ("_total" if counter else "")


PROM_COST: Final = _prometheus_name(sc.METRIC_LLM_COST_USD, counter=True)
PROM_REQUESTS: Final = _prometheus_name(sc.METRIC_LLM_REQUESTS, counter=True)
PROM_CATALOG_INFO: Final = _prometheus_name(sc.METRIC_LLM_COST_CATALOG_INFO)
SPEND_RECORD: Final = sc.METRIC_BUDGET_LLM_COST_USD_SPEND
"""Spend of each budget over its window (recording rule); labels budget, window."""
HOURLY_RECORD: Final = sc.METRIC_BUDGET_LLM_COST_USD_INCREASE1H
"""Spend of a calendar-month budget in the last hour (recording rule), summed into month-to-date."""

ALERT_BUDGET: Final = "LLMBudgetThresholdReached"
ALERT_USER_BUDGET: Final = "LLMUserBudgetThresholdReached"
ALERT_USERS_OVER: Final = "LLMUsersOverBudgetThreshold"
ALERT_ERROR_RATE: Final = "LLMErrorRateHigh"
ALERT_METRICS_ABSENT: Final = "LLMCostMetricsAbsent"
LABEL_LLM_ALERT: Final = "llm_alert"
METRICS_ABSENT_FOR: Final = "10m"


def usd(amount: Decimal) -> str:
    """Format dollars for people: ``$100``, ``$12.50``, ``$20,000``, ``$0.005``."""
    if amount == amount.to_integral_value():
        return f"${int(amount):,}"
    if amount == amount.quantize(Decimal("0.01")):
        return f"${amount:,.2f}"
    return f"${format(amount.normalize(), 'f')}"


def quote(value: str) -> str:
    """A PromQL double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def _re2(value: str) -> str:
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in value)


def matchers(flt: Mapping[str, tuple[str, ...]], extra: Sequence[str] = ()) -> str:
    parts = list(extra)
    for label, values in flt.items():
        if len(values) == 1:
            parts.append(f"{label}={quote(values[0])}")
        else:
            parts.append(f"{label}=~{quote('|'.join(_re2(v) for v in values))}")
    return "{" + ",".join(parts) + "}" if parts else ""


def template_text(text: str) -> str:
    """User text inside a Go template: a literal '{{' would start an action."""
    return text.replace("{{", '{{ "{{" }}')


def spend_query(budget: Budget) -> str:
    return f"{SPEND_RECORD}{{{LABEL_BUDGET}={quote(budget.name)}}}"


def budget_annotations(budget: Budget, threshold: Threshold) -> dict[str, str]:
    """Return the summary and description templates of one budget threshold alert.

    ``$value`` is spend / limit; the spend itself is read with the template ``query`` function.
    """
    limit = usd(budget.limit_usd)
    spent = f'${{{{ with query `{spend_query(budget)}` }}}}{{{{ . | first | value | printf "%.2f" }}}}{{{{ end }}}}'
    scope = template_text(budget.scope_text())
    selector = template_text(PROM_COST + matchers(budget.filter))
    return {
        "summary": (
            f"{budget.window.adjective()} LLM spend for {scope} is at {{{{ $value | humanizePercentage }}}}"
            f" of its {limit} budget ({spent} spent)"
        ),
        "description": (
            f"Budget {budget.name}: {spent} spent {budget.window.phrase()} against a limit of {limit}"
            f" ({{{{ $value | humanizePercentage }}}}). This alert fires at {threshold.percent}"
            f" ({threshold.severity}). Spend is the increase of {selector} over the window."
        ),
    }


def user_budget_annotations(budget: Budget, threshold: Threshold) -> dict[str, str]:
    """Summary and description of the per-user utilisation alert (``$value`` is the user's spend / limit)."""
    limit = usd(budget.limit_usd)
    adjective = budget.window.adjective().lower()
    return {
        "summary": (
            f"User {{{{ $labels.{LABEL_USER} }}}} is at {{{{ $value | humanizePercentage }}}} of their"
            f" {adjective} {limit} LLM budget ({budget.name})"
        ),
        "description": (
            f"Per-user budget {budget.name} ({template_text(budget.scope_text())}): user {{{{ $labels.{LABEL_USER} }}}}"
            f" has spent {{{{ $value | humanizePercentage }}}} of {limit} {budget.window.phrase()}. This alert"
            f" fires at {threshold.percent} ({threshold.severity}). Only the users closest to their limit are"
            f" exported; {METRIC_BUDGET_USERS_OVER_THRESHOLD} counts them all."
        ),
    }


def users_over_annotations(budget: Budget, threshold: Threshold) -> dict[str, str]:
    """Summary and description of the per-user count alert (``$value`` is the number of users)."""
    limit = usd(budget.limit_usd)
    adjective = budget.window.adjective().lower()
    return {
        "summary": (
            f"{{{{ $value | humanize }}}} users are over {threshold.percent} of their {adjective} {limit}"
            f" LLM budget ({budget.name})"
        ),
        "description": (
            f"Per-user budget {budget.name} ({template_text(budget.scope_text())}, {limit} per user"
            f" {budget.window.phrase()}): {{{{ $value | humanize }}}} users have spent {threshold.percent} or more"
            f" ({threshold.severity})."
        ),
    }


def error_rate_annotations(alert: ErrorRateAlert) -> dict[str, str]:
    """Summary and description of an error-rate alert (``$value`` is errors / requests)."""
    above = format((Decimal(repr(alert.error_rate_above)) * 100).normalize(), "f") + "%"
    matching = f" matching {template_text(matchers(alert.filter))}" if alert.filter else ""
    return {
        "summary": (
            f"LLM error rate for {template_text(alert.scope_text())} is {{{{ $value | humanizePercentage }}}}"
            f" {alert.window.phrase()} (alerting above {above})"
        ),
        "description": (
            f"Error-rate alert {alert.name}: {{{{ $value | humanizePercentage }}}} of the LLM calls{matching}"
            f" failed {alert.window.phrase()};"
            f" the limit is {above}. Failed calls are {PROM_REQUESTS}{{{sc.STATUS}={quote(sc.STATUS_ERROR)}}}."
        ),
    }


def number(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def metrics_absent_annotations() -> dict[str, str]:
    """Summary and description of the alert that no otel-llmcost metrics are scraped."""
    return {
        "summary": f"No otel-llmcost metrics scraped for {METRICS_ABSENT_FOR}: LLM budget alerts cannot fire",
        "description": (
            f"{PROM_CATALOG_INFO} is absent: no process exporting otel-llmcost metrics is being scraped"
            " (application or collector down, or the scrape config lost it). Budget spend reads as $0 meanwhile."
        ),
    }
