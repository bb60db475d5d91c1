"""otel-llmcost's own SDK instrumentation: every LLM call a priced GenAI span, counted at the call site.

One module per SDK, each a ``BaseInstrumentor`` registered under the ``opentelemetry_instrumentor``
entry-point group (so ``opentelemetry-instrument`` loads it) and enabled by
:func:`otel_llmcost.configure` for whichever SDKs are installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterable
from typing import Any

from ..config import ConfigError

__all__ = ["INSTRUMENTORS", "instrument_installed"]

_log = logging.getLogger(__name__)

INSTRUMENTORS: dict[str, tuple[str, str]] = {
    # SDK import name: (our module, instrumentor class)
    "openai": ("otel_llmcost.instrumentation.openai", "OpenAIInstrumentor"),
    "anthropic": ("otel_llmcost.instrumentation.anthropic", "AnthropicInstrumentor"),
    "google.genai": ("otel_llmcost.instrumentation.google_genai", "GoogleGenAIInstrumentor"),
    "botocore": ("otel_llmcost.instrumentation.bedrock", "BedrockInstrumentor"),
}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def instrument_installed(only: Iterable[str] | None = None, **kwargs: Any) -> list[Any]:
    """Instrument every supported SDK that is installed; return the instrumentors now active.

    An SDK whose version is outside the supported range is skipped with a log line, as
    ``opentelemetry-instrument`` does; keyword arguments (``tracer_provider=``) go to each instrumentor.

    Args:
        only: SDK names (keys of :data:`INSTRUMENTORS`) to consider; default all of them.
    """
    wanted = set(INSTRUMENTORS) if only is None else set(only)
    unknown = wanted - set(INSTRUMENTORS)
    if unknown:
        raise ConfigError("instrument", ",".join(sorted(unknown)), f"known SDKs: {', '.join(INSTRUMENTORS)}")
    done = []
    for sdk, (module, cls_name) in INSTRUMENTORS.items():
        if sdk not in wanted or not _installed(sdk):
            continue
        try:
            instrumentor = getattr(importlib.import_module(module), cls_name)()
        except ImportError as exc:
            _log.info("otel-llmcost: %s instrumentation unavailable: %s", sdk, exc)
            continue
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**kwargs)
        if instrumentor.is_instrumented_by_opentelemetry:
            done.append(instrumentor)
    return done
