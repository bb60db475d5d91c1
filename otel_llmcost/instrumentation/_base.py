"""The common base of our SDK instrumentors: tracer set-up, wrapping and unwrapping methods."""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Tracer
from wrapt import wrap_function_wrapper

from .._state import configure_if_needed, ensure_covered_stamp
from ..version import __version__
from ._wrap import CallHooks, Wrapper, async_wrapper, sync_wrapper

__all__ = ["LLMCostInstrumentor", "Target"]

SCOPE = "otel_llmcost.instrumentation"


@dataclass(frozen=True)
class Target:
    """One SDK method to wrap: ``module``, ``"Class.method"``, and whether it is ``async``."""

    module: str
    name: str
    is_async: bool = False


class LLMCostInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of otel-llmcost's instrumentors; a subclass lists its targets and builds their hooks.

    Subclasses set ``_instruments`` (requirement strings) and implement :meth:`targets`. Passing
    ``tracer_provider=`` to :meth:`instrument` uses that provider; without it the global one is used
    and, unless :func:`otel_llmcost.configure` already ran, it is run with its defaults (the
    ``opentelemetry-instrument`` path), so cost metrics are exported. An SDK provider without our
    :class:`~otel_llmcost.processor.CostSpanProcessor` gets a
    :class:`~otel_llmcost._state.CoveredSpanStamp`, so that the spans other instrumentations start
    inside our calls are marked as covered by ours.
    """

    _instruments: ClassVar[Collection[str]] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        """Return the package versions this instrumentor supports."""
        return self._instruments

    def targets(self, tracer: Tracer, **kwargs: Any) -> Sequence[tuple[Target, CallHooks]]:
        """Return the methods to wrap, each with the hooks that trace it."""
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        if kwargs.get("tracer_provider") is None:
            # loaded by opentelemetry-instrument (or called bare): make sure money reaches metrics
            configure_if_needed()
        provider = kwargs.get("tracer_provider")
        # spans other instrumentations start inside our calls get llm.cost.covered_by on this
        # provider even without our span processor (one call, one cost, also at a collector)
        ensure_covered_stamp(provider if provider is not None else trace.get_tracer_provider())
        tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=provider)
        self._wrapped: list[Target] = []
        for target, hooks in self.targets(tracer, **kwargs):
            try:
                importlib.import_module(target.module)
            except ImportError:  # an optional part of the SDK that this version lacks
                continue
            wrapper: Wrapper = async_wrapper(hooks) if target.is_async else sync_wrapper(hooks)
            wrap_function_wrapper(target.module, target.name, wrapper)
            self._wrapped.append(target)

    def _uninstrument(self, **kwargs: Any) -> None:
        for target in getattr(self, "_wrapped", []):
            owner_name, _, method = target.name.rpartition(".")
            owner: Any = importlib.import_module(target.module)
            for part in owner_name.split(".") if owner_name else []:
                owner = getattr(owner, part)
            unwrap(owner, method)
        self._wrapped = []
