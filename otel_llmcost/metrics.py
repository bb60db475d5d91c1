"""The cost recorder: aggregates priced calls into the metrics of DESIGN.md, cheaply and bounded.

The OpenTelemetry SDK's synchronous instruments cost ~8 us per ``add``/``record`` here, and one
call feeds a dozen series, so the recorder aggregates in plain dictionaries under one lock (about
a microsecond a call) and hands finished points to OpenTelemetry readers at collection time (see
:mod:`otel_llmcost.export`). Money is summed as :class:`~decimal.Decimal`, so a counter equals
the exact sum of the span attributes; it becomes a float only when exported.

Label cardinality is bounded: every label value passes a per-label cap, and values past the cap
fold into ``other``, counted in ``llm_cost_dimension_overflow_total``. Session ids, user ids,
trace ids and prompt text are never labels.

Sessions are counted (``llm_sessions_total``, by the configured dimensions) the first time a
session id is seen. The recorder remembers at most ``max_sessions`` recent ids (two generations of
hashes, about 80 bytes an id), so memory stays flat however many sessions there are; the price is
an approximation: a session whose id was forgotten and comes back is counted again, and every
process (or collector instance) counts each session it sees.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from . import semconv as sc
from ._series import (
    COST_BUCKETS_USD,
    DURATION_BUCKETS_S,
    OTHER,
    TOKEN_BUCKETS,
    Capped,
    HistogramPoint,
    Route,
    Series,
    Snapshot,
)
from .calls import LLMCall
from .config import ConfigError
from .pricing import Cost, canonical_provider, semconv_provider_name

__all__ = [
    "COST_BUCKETS_USD",
    "DEFAULT_MAX_SESSIONS",
    "DURATION_BUCKETS_S",
    "FORBIDDEN_DIMENSIONS",
    "OTHER",
    "TOKEN_BUCKETS",
    "HistogramPoint",
    "Recorder",
    "Route",
    "Snapshot",
]

DEFAULT_MAX_SESSIONS = 100_000
"""How many recent session ids a recorder remembers by default (see :class:`Recorder`)."""
_MAX_ROUTES = 8192
UNKNOWN = "unknown"
_ZERO = Decimal(0)
_TOKEN_BOUNDS = tuple(4**n for n in range(14))  # the same as int: int counts compare faster with them
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


class Recorder:
    """Aggregates priced calls into cost, request and token metrics with bounded labels."""

    def __init__(
        self,
        dimensions: Sequence[str] = (),
        *,
        max_values_per_dimension: int = 50,
        max_models: int = 500,
        max_providers: int = 50,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        """Create a recorder.

        Args:
            dimensions: extra labels, each read from the custom property of that name
                (``session_name`` reads the session name). An allow-list: nothing else becomes a label.
            max_values_per_dimension: distinct values kept per dimension; the rest fold into ``other``.
            max_models: distinct ``model`` label values kept.
            max_providers: distinct ``provider`` label values kept.
            max_sessions: recent session ids remembered to count each session once; between
                half and all of them are kept (memory: about 80 bytes an id). A session whose id
                was forgotten is counted again when it comes back.

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
        for name, value in (
            ("max_values_per_dimension", max_values_per_dimension),
            ("max_models", max_models),
            ("max_sessions", max_sessions),
        ):
            if value < 1:
                raise ConfigError(name, str(value), "must be at least 1")
        self.dimensions = dims
        self._lock = threading.Lock()
        self._caps: dict[str, Capped] = {d: Capped(max_values_per_dimension) for d in dims}
        self._provider_cap = self._caps["provider"] = Capped(max_providers)
        self._model_cap = self._caps["model"] = Capped(max_models)
        self._operation_cap = self._caps["operation"] = Capped(50)
        self._error_cap = self._caps["error_type"] = Capped(50)
        self._dim_caps = tuple((dim, self._caps[dim]) for dim in dims)
        self._session_name_at = dims.index("session_name") if "session_name" in dims else -1
        self._series: dict[tuple[str, ...], Series] = {}
        # raw label values -> (series, caps that folded a value): one lookup per call once seen
        self._routes: dict[tuple[str, ...], Route] = {}
        self._skipped: dict[str, int] = {}
        # session ids seen lately, as hashes: two generations of at most max_sessions // 2 each
        self._sessions_half = max(1, max_sessions // 2)
        self._sessions_now: set[int] = set()
        self._sessions_before: set[int] = set()
        self._sessions: dict[tuple[str, ...], int] = {}  # dimension values -> sessions started

    # --- recording --------------------------------------------------------------------------

    def record(self, call: LLMCall, cost: Cost, *, duration_s: float | None = None, error: bool = False) -> None:
        """Count one call: requests always; money and tokens when priced or usage is known.

        Args:
            call: the call as extracted from the span.
            cost: its price (any status).
            duration_s: how long the call took, for ``gen_ai.client.operation.duration``.
            error: whether the call failed.
        """
        status = cost.status
        if cost.provider and cost.model:  # the catalog entry, priced or not: one model, one series
            provider, model = cost.provider, cost.model
        else:
            raw = call.provider or ""
            provider = canonical_provider(raw) or raw.lower() or UNKNOWN
            model = (call.model or "").lower() or UNKNOWN
        route = self.route(self.label_key(provider, model, call))
        usage = call.usage
        total = cost.total_usd
        saved = cost.cache_savings_usd
        premium = cost.cache_write_premium_usd
        self.add(
            route,
            (sc.STATUS_ERROR if error else sc.STATUS_OK, status),
            total,
            float(total) if total is not None else 0.0,
            None
            if usage is None or status == sc.LLM_COST_STATUS_INVALID_USAGE
            else (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.cache_write_1h_tokens,
                usage.reasoning_tokens,
            ),
            duration_s,
            call.error_type or ("_OTHER" if error else ""),
            None if saved is None and premium is None else (saved or _ZERO, premium or _ZERO),
            call.session_id,
        )

    def label_key(self, provider: str, model: str, call: LLMCall) -> tuple[str, ...]:
        """Return the raw label values of *call* (before the caps): provider, model, operation, dimensions."""
        operation = call.operation or UNKNOWN
        if not self._dim_caps:
            return (provider, model, operation)
        props = call.properties
        values = [props.get(dim) or "" for dim in self.dimensions]
        if self._session_name_at >= 0:
            values[self._session_name_at] = call.session_name or ""
        return (provider, model, operation, *values)

    def route(self, raw_key: tuple[str, ...]) -> Route:
        """Return the series of *raw_key* (raw label values, see :meth:`label_key`) after the caps.

        The answer is stable: a value admitted under a cap stays admitted and one folded into
        ``other`` stays folded, so callers may keep it; :meth:`add` counts the folds every time.
        """
        route = self._routes.get(raw_key)
        if route is None:
            with self._lock:
                route = self._route(raw_key)
        return route

    def add(
        self,
        route: Route,
        request_key: tuple[str, str],
        total: Decimal | None,
        total_float: float,
        tokens: tuple[int, int, int, int, int, int] | None,
        duration_s: float | None,
        error_type: str,
        saved: tuple[Decimal, Decimal] | None = None,
        session: Any = None,
    ) -> None:
        """Count one call into the series of *route*: the aggregation behind :meth:`record`.

        Args:
            route: from :meth:`route`.
            request_key: ``(status, cost status)`` of ``llm_requests_total``.
            total: the exact cost, ``None`` when the call was not priced.
            total_float: ``float(total)`` (computed once by callers that need it anyway).
            tokens: input, output, cache read, cache write, one-hour cache write and reasoning
                tokens (:class:`~otel_llmcost.pricing.Usage`'s order and semantics), ``None`` for
                none (invalid usage is not counted).
            duration_s: the call's duration, ``None`` when unknown.
            error_type: the ``error.type`` label of the duration (``""`` for a success).
            saved: the call's cache savings and cache-write premium (see
                :func:`~otel_llmcost.pricing.compute.cache_savings`), ``None`` for none.
            session: the call's session id (``None`` or ``""``: none); a session is counted in
                ``llm_sessions_total`` the first time its id is seen (see the class).
        """
        series, folded = route
        # The histograms' observations are written out here, and their counts left to snapshot():
        # this runs for every call, and each saved step is a few percent of it.
        lock = self._lock
        lock.acquire()  # not "with": half the cost
        try:
            if folded:
                for cap in folded:  # values folded into "other" are counted every time they occur
                    cap.overflow += 1
            requests = series.requests
            requests[request_key] = requests.get(request_key, 0) + 1
            if total is not None:
                series.cost += total
                hist = series.cost_hist
                hist.counts[bisect_left(COST_BUCKETS_USD, total_float)] += 1
                hist.total += total_float
                if total_float < hist.minimum:
                    hist.minimum = total_float
                if total_float > hist.maximum:
                    hist.maximum = total_float
            if tokens is not None:
                inp, out, cache_read, cache_write, _, reasoning = tokens
                sums = series.tokens
                sums[0] += inp - cache_read - cache_write
                sums[1] += out
                if cache_read:
                    sums[2] += cache_read
                if cache_write:
                    sums[3] += cache_write
                if reasoning:
                    sums[4] += reasoning
                hist = series.input_hist
                hist.counts[bisect_left(_TOKEN_BOUNDS, inp)] += 1
                hist.total += inp
                if inp < hist.minimum:
                    hist.minimum = inp
                if inp > hist.maximum:
                    hist.maximum = inp
                hist = series.output_hist
                hist.counts[bisect_left(_TOKEN_BOUNDS, out)] += 1
                hist.total += out
                if out < hist.minimum:
                    hist.minimum = out
                if out > hist.maximum:
                    hist.maximum = out
            if duration_s is not None:
                if error_type not in self._error_cap.seen:
                    error_type = self._error_cap.admit(error_type)
                hist = series.durations.get(error_type)  # type: ignore[assignment]
                if hist is None:
                    hist = series.durations[error_type] = HistogramPoint.empty(DURATION_BUCKETS_S)
                hist.counts[bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
                hist.total += duration_s
                if duration_s < hist.minimum:
                    hist.minimum = duration_s
                if duration_s > hist.maximum:
                    hist.maximum = duration_s
            if saved is not None:
                series.saved += saved[0]
                series.premium += saved[1]
            if session is not None and session != "":
                key = hash(session if type(session) is str else str(session))
                if key not in self._sessions_now and key not in self._sessions_before:
                    if len(self._sessions_now) >= self._sessions_half:
                        self._sessions_before, self._sessions_now = self._sessions_now, set()
                    self._sessions_now.add(key)
                    sessions = self._sessions
                    sessions[series.dims] = sessions.get(series.dims, 0) + 1
        finally:
            lock.release()

    def _route(self, raw_key: tuple[str, ...]) -> Route:
        """Apply the label caps to *raw_key* and return its series (memoised while there is room)."""
        route = self._routes.get(raw_key)  # another thread may have routed it meanwhile
        if route is not None:
            return route
        caps = (self._provider_cap, self._model_cap, self._operation_cap, *(cap for _, cap in self._dim_caps))
        labels: list[str] = []
        folded: list[Capped] = []
        for cap, value in zip(caps, raw_key, strict=True):
            if value and value not in cap.seen:
                admitted = cap.admit(value)
                if admitted is OTHER:
                    cap.overflow -= 1  # counted by add(), on every occurrence
                    folded.append(cap)
                value = admitted
            labels.append(value)
        key = tuple(labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(key[3:])
        route = (series, tuple(folded))
        if len(self._routes) < _MAX_ROUTES:
            self._routes[raw_key] = route
        return route

    def record_skip(self, reason: str) -> None:
        """Count a GenAI span that could not be priced because its data was bad or pricing failed."""
        with self._lock:
            self._skipped[reason] = self._skipped.get(reason, 0) + 1

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Return a consistent copy of every series, histograms merged per label set."""
        dims = self.dimensions
        cost_usd: list[tuple[dict[str, str], Decimal]] = []
        saved: list[tuple[dict[str, str], Decimal]] = []
        premium: list[tuple[dict[str, str], Decimal]] = []
        requests: list[tuple[dict[str, str], int]] = []
        tokens: list[tuple[dict[str, str], int]] = []
        request_cost: dict[tuple[str, str], HistogramPoint] = {}
        token_usage: dict[tuple[str, str, str, str], HistogramPoint] = {}
        duration: dict[tuple[str, str, str, str], HistogramPoint] = {}

        def add(into: dict[Any, HistogramPoint], key: Any, hist: HistogramPoint) -> None:
            count = sum(hist.counts)  # add() leaves the series' counts to this
            if count:
                hist = HistogramPoint(hist.bounds, list(hist.counts), hist.total, count, hist.minimum, hist.maximum)
                if key in into:
                    into[key].merge(hist)
                else:
                    into[key] = hist

        with self._lock:
            for key, s in self._series.items():
                provider, model, operation = key[0], key[1], key[2]
                labels = {sc.PROVIDER: provider, sc.MODEL: model, sc.OPERATION: operation}
                labels.update(zip(dims, key[3:], strict=True))
                if s.cost:
                    cost_usd.append((labels, s.cost))
                if s.saved:
                    saved.append((labels, s.saved))
                if s.premium:
                    premium.append((labels, s.premium))
                for (status, cost_status), n in s.requests.items():
                    requests.append(({**labels, sc.STATUS: status, sc.COST_STATUS: cost_status}, n))
                for token_type, n in zip(_TOKEN_TYPES, s.tokens, strict=True):
                    if n:
                        tokens.append(({**labels, sc.TOKEN_TYPE: token_type}, n))
                add(request_cost, (provider, model), s.cost_hist)
                sem = semconv_provider_name(provider)
                add(token_usage, (sem, model, operation, sc.TOKEN_TYPE_INPUT), s.input_hist)
                add(token_usage, (sem, model, operation, sc.TOKEN_TYPE_OUTPUT), s.output_hist)
                for error_type, hist in s.durations.items():
                    add(duration, (sem, model, operation, error_type), hist)
            skipped = list(self._skipped.items())
            sessions = [(dict(zip(dims, key, strict=True)), n) for key, n in self._sessions.items()]
            overflow = [(name, cap.overflow) for name, cap in self._caps.items() if cap.overflow]
        return Snapshot(
            cost_usd=cost_usd,
            requests=requests,
            tokens=tokens,
            request_cost=[({sc.PROVIDER: p, sc.MODEL: m}, h) for (p, m), h in request_cost.items()],
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
                for (p, m, o, t), h in token_usage.items()
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
                for (p, m, o, e), h in duration.items()
            ],
            skipped=[({sc.REASON: r}, n) for r, n in skipped],
            overflow=[({sc.DIMENSION: d}, n) for d, n in overflow],
            cache_savings=saved,
            cache_write_premium=premium,
            sessions=sessions,
        )

    def total_cost(self) -> Decimal:
        """Return the exact sum of every cost recorded."""
        with self._lock:
            return sum((s.cost for s in self._series.values()), Decimal(0))

    def sessions_remembered(self) -> int:
        """Return how many session ids the recorder remembers now (at most ``max_sessions``)."""
        with self._lock:
            return len(self._sessions_now) + len(self._sessions_before)

    def series_count(self) -> int:
        """Return how many label combinations the cost/request/token series use."""
        with self._lock:
            return len(self._series)
