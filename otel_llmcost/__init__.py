"""otel-llmcost: what your LLM calls cost, inside the OpenTelemetry stack you already run.

The public API is exactly ``__all__``. Names are imported on first use so that
``import otel_llmcost`` stays cheap (the OpenTelemetry SDK and the catalog load only when needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from ._configure import LLMCostSetup, configure
    from .budgets.guard import Permit
    from .budgets.limits import BudgetExceededError
    from .budgets.runtime import guard, record_spend
    from .calls import LLMCall, extract_call
    from .config import ConfigError
    from .context import properties, session, user
    from .metrics import Recorder
    from .pricing import CatalogError, Cost, Pricer, Usage, default_pricer, load_catalog
    from .processor import CostSpanProcessor

_EXPORTS = {
    "BudgetExceededError": ".budgets.limits",
    "CatalogError": ".pricing",
    "ConfigError": ".config",
    "Cost": ".pricing",
    "CostSpanProcessor": ".processor",
    "LLMCall": ".calls",
    "LLMCostSetup": "._configure",
    "Permit": ".budgets.guard",
    "Pricer": ".pricing",
    "Recorder": ".metrics",
    "Usage": ".pricing",
    "configure": "._configure",
    "default_pricer": ".pricing",
    "extract_call": ".calls",
    "guard": ".budgets.runtime",
    "load_catalog": ".pricing",
    "properties": ".context",
    "record_spend": ".budgets.runtime",
    "session": ".context",
    "user": ".context",
}

__all__ = [
    "BudgetExceededError",
    "CatalogError",
    "ConfigError",
    "Cost",
    "CostSpanProcessor",
    "LLMCall",
    "LLMCostSetup",
    "Permit",
    "Pricer",
    "Recorder",
    "Usage",
    "__version__",
    "configure",
    "default_pricer",
    "extract_call",
    "guard",
    "load_catalog",
    "properties",
    "record_spend",
    "session",
    "user",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_llmcost' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
