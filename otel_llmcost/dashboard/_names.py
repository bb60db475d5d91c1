"""The metric names and labels the dashboard may use, read from the real export path.

Rather than restating how the OpenTelemetry Prometheus exporter spells our metrics (``_total``
for counters, ``_seconds`` for durations, dots to underscores), a probe feeds a real
:class:`~otel_llmcost.metrics.Recorder` with a few calls of every kind (priced, failed, folded
into ``other``, skipped) and reads what a :class:`~otel_llmcost.export.PrometheusCostMetricReader`
exposes. What it exposes is exactly what ``/metrics`` carries, so a name the dashboard uses is
known if and only if the application emits it. The spend guard's series come the same way: the
probe runs a real :class:`~otel_llmcost.budgets.guard.Guard` (a per-user budget overspent, a
breach, a state failure) whose series the reader adds. The budget rules' series (spend recording
rule, limits) are added from :mod:`otel_llmcost.budgets`, which generates them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .. import semconv as sc
from ..budgets import state as guard_state
from ..budgets._promql import SPEND_RECORD
from ..budgets.guard import Guard
from ..budgets.limits import GuardBudget
from ..budgets.spec import LABEL_BUDGET, LABEL_WINDOW, METRIC_BUDGET_LIMIT_USD

__all__ = ["LABEL_PER", "DashboardError", "Family", "MetricNames", "label_name", "probe_names"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
# The label the limit rules add to per-user budgets' limits (their spend is not a Prometheus series).
LABEL_PER = "per"


class DashboardError(ValueError):
    """The dashboard cannot be generated: an unknown metric, label or variable, named in the message."""


def label_name(attribute: str) -> str:
    """Return the Prometheus label name of an attribute: ``gen_ai.request.model`` -> ``gen_ai_request_model``."""
    return _INVALID.sub("_", attribute)


@dataclass(frozen=True)
class Family:
    """One exposed metric family: its Prometheus type and the label names of each sample name."""

    name: str
    type: str
    samples: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class MetricNames:
    """Every series the dashboard may query, with its label names.

    Attributes:
        families: exposed families by OpenTelemetry metric name (``llm.cost.usd``).
        rules: series recorded by the generated budget rules, by name.
        dimensions: the configured dimensions (extra labels of the cost, request and token counters).
    """

    families: Mapping[str, Family]
    rules: Mapping[str, frozenset[str]] = field(default_factory=dict)
    dimensions: tuple[str, ...] = ()

    def exposes(self, otel_name: str | None) -> bool:
        """Whether the export path emits the metric (``None``: a metric that does not exist yet)."""
        return otel_name is not None and otel_name in self.families

    def _family(self, otel_name: str, kind: str) -> Family:
        family = self.families.get(otel_name)
        if family is None:
            raise DashboardError(f"unknown metric {otel_name!r}: the recorder does not export it")
        if family.type != kind:
            raise DashboardError(f"metric {otel_name!r} is a {family.type}, not a {kind}")
        return family

    def counter(self, otel_name: str) -> str:
        """Return the Prometheus sample name of a counter (the exporter appends ``_total``)."""
        family = self._family(otel_name, "counter")
        (sample,) = family.samples
        return sample

    def gauge(self, otel_name: str) -> str:
        """Return the Prometheus name of a gauge."""
        family = self._family(otel_name, "gauge")
        (sample,) = family.samples
        return sample

    def histogram(self, otel_name: str) -> str:
        """Return the Prometheus base name of a histogram (append ``_bucket``, ``_sum``, ``_count``)."""
        return self._family(otel_name, "histogram").name

    def known(self) -> dict[str, frozenset[str]]:
        """Every queryable series name with its label names."""
        out: dict[str, frozenset[str]] = {}
        for family in self.families.values():
            out.update(family.samples)
        out.update(self.rules)
        return out


def _rule_series() -> dict[str, frozenset[str]]:
    # The labels the generated rules put on these series (see otel_llmcost.budgets.rules).
    return {
        SPEND_RECORD: frozenset({LABEL_BUDGET, LABEL_WINDOW}),
        METRIC_BUDGET_LIMIT_USD: frozenset({LABEL_BUDGET, LABEL_WINDOW, LABEL_PER}),
    }


def _otel_name(family_name: str, unit: str, otel_names: Sequence[str]) -> str | None:
    for otel in otel_names:
        base = label_name(otel)
        if family_name == base or (unit and family_name == f"{base}_{unit}"):
            return otel
    return None


class _ProbeState(guard_state.MemoryState):
    """The guard's memory, which can be made to fail (for the probe's guard error)."""

    broken = False

    def admit(self, checks: Sequence[guard_state.Check]) -> tuple[bool, list[guard_state.Seen]]:
        if self.broken:
            raise OSError("probe: the guard state is unreachable")
        return super().admit(checks)


def _probe_guard(user: str) -> Guard:
    """A guard that has every series: a per-user budget overspent by *user*, a breach, a state error."""
    state = _ProbeState()
    guard = Guard([GuardBudget("probe", "1d", Decimal(1), per_user=True, action="log")], state=state, expose_above=0)
    quiet = logging.getLogger("otel_llmcost.budgets")  # the guard's log: the breach and the failure are made up
    was = quiet.disabled
    quiet.disabled = True
    try:
        guard.admit(user=user).settle(Decimal(2))
        guard.admit(user=user)  # a breach (action log: counted, allowed)
        state.broken = True
        guard.admit(user=user)  # a state error (failure policy open: counted, allowed)
    finally:
        quiet.disabled = was
    return guard


def probe_names(dimensions: Sequence[str]) -> MetricNames:
    """Return what the export path exposes for a recorder with *dimensions*.

    Raises:
        ConfigError: a dimension is invalid (as the recorder would refuse it).
    """
    # Imported here: the OpenTelemetry SDK and prometheus_client load only for dashboard generation.
    from prometheus_client import CollectorRegistry

    from ..calls import LLMCall
    from ..export import PrometheusCostMetricReader, cost_meter_provider
    from ..metrics import Recorder
    from ..pricing import Cost, Usage

    dims = tuple(dimensions)
    recorder = Recorder(dims, max_values_per_dimension=1, max_models=1)  # a cap of 1: the 2nd call overflows
    registry = CollectorRegistry(auto_describe=False)
    guard = _probe_guard("probe-user")
    meter_provider = cost_meter_provider(
        [PrometheusCostMetricReader(recorder, registry=registry, guard=guard)], catalog_version=lambda: "probe"
    )
    try:
        usage = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=2, cache_write_tokens=2, reasoning_tokens=1)
        for n in range(2):
            model = f"probe-{n}"
            call = LLMCall(
                provider="probe",
                model=model,
                operation="chat",
                usage=usage,
                session_id=f"probe-session-{n}",
                session_name=f"probe-{n}",
                user_id="probe-user",
                properties={dim: f"probe-{n}" for dim in dims},
            )
            cost = Cost(
                status=sc.LLM_COST_STATUS_PRICED,
                total_usd=Decimal("0.001"),
                provider="probe",
                model=model,
                cache_savings_usd=Decimal("0.0001"),
                cache_write_premium_usd=Decimal("0.00005"),
            )
            recorder.record(call, cost, duration_s=0.5, error=n == 1)
        recorder.record_skip("probe")
        otel_names = [v for k, v in vars(sc).items() if k.startswith("METRIC_") and not k.endswith("_UNIT")]
        families: dict[str, Family] = {}
        for metric in registry.collect():
            otel = _otel_name(metric.name, metric.unit, otel_names)
            if otel is None:
                continue  # target_info and anything else that is not one of our metrics
            samples: dict[str, set[str]] = {}
            for sample in metric.samples:
                samples.setdefault(sample.name, set()).update(sample.labels)
            families[otel] = Family(metric.name, metric.type, {k: frozenset(v) for k, v in samples.items()})
    finally:
        meter_provider.shutdown()
    return MetricNames(families=families, rules=_rule_series(), dimensions=dims)
