"""The public surface is exactly __all__, sorted, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import otel_llmcost


def test_all_is_sorted_and_complete() -> None:
    names = otel_llmcost.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(otel_llmcost, name) is not None
    public = {n for n in dir(otel_llmcost) if not n.startswith("_")}
    assert public <= set(names)


def test_import_is_light() -> None:
    # Importing the package loads neither the OpenTelemetry SDK nor the catalog.
    code = "import sys, otel_llmcost; print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'yaml'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pricing_core_does_not_import_opentelemetry() -> None:
    code = "import sys, otel_llmcost.pricing, otel_llmcost.calls; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_guard_api_is_exported_and_light() -> None:
    # The guard functions and error need neither the OpenTelemetry SDK nor YAML (a budgets file does).
    code = (
        "import sys; from otel_llmcost import BudgetExceededError, Permit, guard, record_spend; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'yaml'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {"BudgetExceededError", "Permit", "guard", "record_spend"} <= set(otel_llmcost.__all__)
    assert issubclass(otel_llmcost.BudgetExceededError, Exception)
    assert otel_llmcost.guard().done  # no guard installed: a no-op permit
