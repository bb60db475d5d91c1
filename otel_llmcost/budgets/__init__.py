"""Budgets: the budgets file, the Prometheus rules and alerts generated from it, and spend guards.

See :mod:`otel_llmcost.budgets.spec` for the file's schema, :mod:`otel_llmcost.budgets.rules`
for what ``otel-llmcost rules`` writes, and :mod:`.limits`, :mod:`.guard`, :mod:`.runtime`,
:mod:`.state` and :mod:`.redis_state` for the guards ``configure(budgets=...)`` installs.
Importing this package loads neither YAML nor the OpenTelemetry SDK; loading a file or
generating rules does.
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
