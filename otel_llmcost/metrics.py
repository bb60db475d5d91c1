"""The cost recorder: aggregates priced calls into the metrics of DESIGN.md, cheaply and bounded.

The OpenTelemetry SDK's synchronous instruments cost ~8 us per ``add``/``record`` here, and one
call feeds a dozen series, so the recorder aggregates in plain dictionaries under one lock (about
a microsecond a call) and hands finished points to OpenTelemetry readers at collection time (see
:mod:`otel_llmcost.export`). Money is summed as :class:`~decimal.Decimal`, so a counter equals
the exact sum of the span attributes; it becomes a float only when exported.

Label cardinality is bounded: every label value passes a per-label cap, and values past the cap
fold into ``other``, counted in ``llm_cost_dimension_overflow_total``. Session ids, user ids,
trace ids and prompt text are never labels.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from . import semconv as sc
from .calls import LLMCall
from .config import ConfigError
from .pricing import STATUS_PRICED, Cost, canonical_provider

__all__ = [
    "COST_BUCKETS_USD",
    "DURATION_BUCKETS_S",
    "FORBIDDEN_DIMENSIONS",
    "OTHER",
    "TOKEN_BUCKETS",
    "HistogramPoint",
    "Recorder",
    "Snapshot",
]

OTHER = "other"
UNKNOWN = "unknown"
COST_BUCKETS_USD = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# Bucket boundaries advised by the GenAI semantic conventions for these two histograms.
TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))  # 1, 4, 16, ... 67108864
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
FORBIDDEN_DIMENSIONS = frozenset(
    {"session_id", "session", "user_id", "user", "enduser_id", "trace_id", "span_id", "prompt", "completion"}
)
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED = {
    sc.PROVIDER,
    sc.MODEL,
    sc.OPERATION,
    sc.STATUS,
    sc.COST_STATUS,
    sc.TOKEN_TYPE,
    sc.REASON,
    sc.DIMENSION,
    "le",
}
_TOKEN_TYPES = (
    sc.TOKEN_TYPE_INPUT,
    sc.TOKEN_TYPE_OUTPUT,
    sc.TOKEN_TYPE_CACHE_READ,
    sc.TOKEN_TYPE_CACHE_WRITE,
    sc.TOKEN_TYPE_REASONING,
)


@dataclass(slots=True)
class HistogramPoint:
    """Cumulative explicit-bucket histogram state of one series."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0
    count: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> HistogramPoint:
        """Return a histogram with no observations."""
        return cls(bounds=bounds, counts=[0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def copy(self) -> HistogramPoint:
        """Return an independent copy."""
        return HistogramPoint(self.bounds, list(self.counts), self.total, self.count, self.minimum, self.maximum)


@dataclass(slots=True)
class _Series:
    cost: Decimal = Decimal(0)
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    requests: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of every series, label names included, taken at one instant.

    Each list holds ``(labels, value)`` pairs; labels are dicts of label name to value.
    """

    cost_usd: list[tuple[dict[str, str], Decimal]]
    requests: list[tuple[dict[str, str], int]]
    tokens: list[tuple[dict[str, str], int]]
    request_cost: list[tuple[dict[str, str], HistogramPoint]]
    token_usage: list[tuple[dict[str, str], HistogramPoint]]
    duration: list[tuple[dict[str, str], HistogramPoint]]
    skipped: list[tuple[dict[str, str], int]]
    overflow: list[tuple[dict[str, str], int]]


class _Capped:
    """Admits up to ``cap`` distinct values of one label; the rest become ``other``."""

    __slots__ = ("cap", "overflow", "seen")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()
        self.overflow = 0

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) < self.cap:
            self.seen.add(value)
            return value
        self.overflow += 1
        return OTHER


class Recorder:
    """Aggregates priced calls into cost, request and token metrics with bounded labels."""

    def __init__(
        self,
        dimensions: Sequence[str] = (),
        *,
        max_values_per_dimension: int = 50,
        max_models: int = 500,
        max_providers: int = 50,
    ) -> None:
        """Create a recorder.

        Args:
            dimensions: extra labels, each read from the custom property of that name
                (``session_name`` reads the session name). An allow-list: nothing else becomes a label.
            max_values_per_dimension: distinct values kept per dimension; the rest fold into ``other``.
            max_models: distinct ``model`` label values kept.
            max_providers: distinct ``provider`` label values kept.

        Raises:
            ConfigError: a dimension is not a valid label name, is reserved, or would carry
                high-cardinality identifiers (session or user ids).
        """
        dims = tuple(dimensions)
        for dim in dims:
            if not _LABEL.match(dim):
                raise ConfigError(
                    "dimensions", dim, "a dimension must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                )
            if dim in FORBIDDEN_DIMENSIONS:
                raise ConfigError("dimensions", dim, "ids and prompt text are never labels (unbounded cardinality)")
            if dim in _RESERVED:
                raise ConfigError("dimensions", dim, "this label name is already used by the metrics")
        if len(set(dims)) != len(dims):
            raise ConfigError("dimensions", ",".join(dims), "a dimension is listed twice")
        for name, value in (("max_values_per_dimension", max_values_per_dimension), ("max_models", max_models)):
            if value < 1:
                raise ConfigError(name, str(value), "must be at least 1")
        self.dimensions = dims
        self._lock = threading.Lock()
        self._caps: dict[str, _Capped] = {d: _Capped(max_values_per_dimension) for d in dims}
        self._caps["model"] = _Capped(max_models)
        self._caps["provider"] = _Capped(max_providers)
        self._caps["operation"] = _Capped(50)
        self._caps["error_type"] = _Capped(50)
        self._series: dict[tuple[str, ...], _Series] = {}
        self._request_cost: dict[tuple[str, str], HistogramPoint] = {}
        self._token_usage: dict[tuple[str, str, str, str], HistogramPoint] = {}
        self._duration: dict[tuple[str, str, str, str], HistogramPoint] = {}
        self._skipped: dict[str, int] = {}

    # --- recording --------------------------------------------------------------------------

    def record(self, call: LLMCall, cost: Cost, *, duration_s: float | None = None, error: bool = False) -> None:
        """Count one call: requests always; money and tokens when priced or usage is known.

        Args:
            call: the call as extracted from the span.
            cost: its price (any status).
            duration_s: how long the call took, for ``gen_ai.client.operation.duration``.
            error: whether the call failed.
        """
        priced = cost.status == STATUS_PRICED
        raw_provider = call.provider or ""
        provider = (
            cost.provider if priced and cost.provider else (canonical_provider(raw_provider) or raw_provider.lower())
        )
        model = cost.model if priced and cost.model else (call.model or "").lower()
        operation = call.operation or UNKNOWN
        usage = call.usage
        props = call.properties
        caps = self._caps
        status = sc.STATUS_ERROR if error else sc.STATUS_OK
        with self._lock:
            provider = caps["provider"](provider or UNKNOWN)
            model = caps["model"](model or UNKNOWN)
            operation = caps["operation"](operation)
            key: tuple[str, ...] = (provider, model, operation)
            if self.dimensions:
                values = []
                for dim in self.dimensions:
                    value = call.session_name if dim == "session_name" else props.get(dim)
                    values.append(caps[dim](value) if value else "")
                key = key + tuple(values)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            rkey = (status, cost.status)
            series.requests[rkey] = series.requests.get(rkey, 0) + 1
            if priced and cost.total_usd is not None:
                series.cost += cost.total_usd
                hist = self._request_cost.get((provider, model))
                if hist is None:
                    hist = self._request_cost[(provider, model)] = HistogramPoint.empty(COST_BUCKETS_USD)
                hist.observe(float(cost.total_usd))
            if usage is not None and cost.status != sc.LLM_COST_STATUS_INVALID_USAGE:
                tokens = series.tokens
                uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
                tokens[0] += uncached
                tokens[1] += usage.output_tokens
                tokens[2] += usage.cache_read_tokens
                tokens[3] += usage.cache_write_tokens
                tokens[4] += usage.reasoning_tokens
                sem_provider = raw_provider or provider
                for token_type, count in (
                    (sc.TOKEN_TYPE_INPUT, usage.input_tokens),
                    (sc.TOKEN_TYPE_OUTPUT, usage.output_tokens),
                ):
                    tkey = (sem_provider, model, operation, token_type)
                    thist = self._token_usage.get(tkey)
                    if thist is None:
                        thist = self._token_usage[tkey] = HistogramPoint.empty(TOKEN_BUCKETS)
                    thist.observe(count)
            if duration_s is not None:
                error_type = caps["error_type"](call.error_type or ("_OTHER" if error else ""))
                dkey = (raw_provider or provider, model, operation, error_type)
                dhist = self._duration.get(dkey)
                if dhist is None:
                    dhist = self._duration[dkey] = HistogramPoint.empty(DURATION_BUCKETS_S)
                dhist.observe(duration_s)

    def record_skip(self, reason: str) -> None:
        """Count a GenAI span that could not be priced because its data was bad or pricing failed."""
        with self._lock:
            self._skipped[reason] = self._skipped.get(reason, 0) + 1

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Return a consistent copy of every series."""
        dims = self.dimensions
        with self._lock:
            series = [(k, s.cost, list(s.tokens), dict(s.requests)) for k, s in self._series.items()]
            request_cost = [(k, h.copy()) for k, h in self._request_cost.items()]
            token_usage = [(k, h.copy()) for k, h in self._token_usage.items()]
            duration = [(k, h.copy()) for k, h in self._duration.items()]
            skipped = list(self._skipped.items())
            overflow = [(name, cap.overflow) for name, cap in self._caps.items() if cap.overflow]
        cost_usd, requests, tokens = [], [], []
        for key, cost, token_counts, reqs in series:
            labels = {sc.PROVIDER: key[0], sc.MODEL: key[1], sc.OPERATION: key[2]}
            labels.update(zip(dims, key[3:], strict=True))
            if cost:
                cost_usd.append((labels, cost))
            for (status, cost_status), n in reqs.items():
                requests.append(({**labels, sc.STATUS: status, sc.COST_STATUS: cost_status}, n))
            for token_type, n in zip(_TOKEN_TYPES, token_counts, strict=True):
                if n:
                    tokens.append(({**labels, sc.TOKEN_TYPE: token_type}, n))
        return Snapshot(
            cost_usd=cost_usd,
            requests=requests,
            tokens=tokens,
            request_cost=[({sc.PROVIDER: p, sc.MODEL: m}, h) for (p, m), h in request_cost],
            token_usage=[
                (
                    {
                        sc.GEN_AI_PROVIDER_NAME: p,
                        sc.GEN_AI_REQUEST_MODEL: m,
                        sc.GEN_AI_OPERATION_NAME: o,
                        sc.GEN_AI_TOKEN_TYPE: t,
                    },
                    h,
                )
                for (p, m, o, t), h in token_usage
            ],
            duration=[
                (
                    {
                        sc.GEN_AI_PROVIDER_NAME: p,
                        sc.GEN_AI_REQUEST_MODEL: m,
                        sc.GEN_AI_OPERATION_NAME: o,
                        **({sc.ERROR_TYPE: e} if e else {}),
                    },
                    h,
                )
                for (p, m, o, e), h in duration
            ],
            skipped=[({sc.REASON: r}, n) for r, n in skipped],
            overflow=[({sc.DIMENSION: d}, n) for d, n in overflow],
        )

    def total_cost(self) -> Decimal:
        """Return the exact sum of every cost recorded."""
        with self._lock:
            return sum((s.cost for s in self._series.values()), Decimal(0))

    def series_count(self) -> int:
        """Return how many label combinations the cost/request/token series use."""
        with self._lock:
            return len(self._series)
