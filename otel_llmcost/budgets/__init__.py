"""Budgets: the budgets file, and the Prometheus rules and alerts generated from it.

See :mod:`otel_llmcost.budgets.spec` for the file's schema and :mod:`otel_llmcost.budgets.rules`
for what ``otel-llmcost rules`` writes. Importing this package loads neither YAML nor the
OpenTelemetry SDK; loading a file or generating rules does.
"""

from __future__ import annotations

from pathlib import Path

from .spec import (
    Budget,
    BudgetsError,
    BudgetsFile,
    ErrorRateAlert,
    RateLimit,
    Threshold,
    Window,
    load_budgets,
    parse_budgets,
    parse_rate_limit_policy,
    threshold_label,
)

__all__ = [
    "Budget",
    "BudgetsError",
    "BudgetsFile",
    "ErrorRateAlert",
    "RateLimit",
    "Threshold",
    "Window",
    "generate",
    "load_budgets",
    "parse_budgets",
    "parse_rate_limit_policy",
    "threshold_label",
]


def generate(budgets: BudgetsFile, out_dir: str | Path) -> list[Path]:
    """Write the Prometheus rules, their promtool tests and the Alertmanager example into *out_dir*.

    See :func:`otel_llmcost.budgets.rules.generate`.

    Args:
        budgets: a loaded budgets file (:func:`load_budgets`).
        out_dir: the directory (created if missing).

    Returns:
        The paths written: rules, tests, Alertmanager example.
    """
    from .rules import generate as _generate

    return _generate(budgets, out_dir)
